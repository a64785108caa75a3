using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// wire_bytes_per_sample_ratio_{fp32,fp16,bf16,int8} and _narrow_{fp32,fp16,int8}: bytes that cross the wire per training
/// sample in vanilla mode (the sealed features frame + its queue message, and the sealed gradient frame + its reply
/// message) over the raw input bytes of the sample; and the accuracy effect on PneumoniaMNIST, training pneumonia-cnn
/// (or pneumonia-cnn-narrow) split in process with the cut-layer activations and gradients rounded through a TensorFrame
/// encode/decode round trip. Target: at most 2x the raw bytes at a test AUC within 0.01 of fp32 pneumonia-cnn, the
/// baseline trained in the same run.
/// </summary>
public static class WireBytesBench
{
    private const double TargetRatio = 2.0;
    private const double TargetAucDrop = 0.01;
    private const int RawBytesPerImage = 28 * 28;

    private static ulong seed = 7;

    public static Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var epochs = options.GetInt("epochs", 6, 1);
        // `--seed 7`: the run's seed (client and server initial weights, batch order); several seeds are several runs.
        seed = (ulong)options.GetInt("seed", 7);
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;
        // fp32 pneumonia-cnn is the baseline every other configuration's AUC is compared with.
        var arms = Arms(ModelCatalog.PneumoniaCnn, "", options.Get("wire", "fp32,fp16,bf16,int8"))
            .Concat(Arms(ModelCatalog.PneumoniaCnnNarrow, "narrow_", options.Get("narrow-wire", "fp32,fp16,int8")))
            .ToArray();

        // `--parallel N` trains N configurations at once, each in its own process on `--threads` libtorch threads: on a
        // shared machine N single-threaded processes waste less in thread synchronisation than one on N threads. Processes,
        // not threads: TorchSharp 0.107's optimizers fail when two threads step at once ("Unknown scalar type"). Each
        // configuration is seeded alike, so its figures do not depend on what runs beside it.
        var parallel = options.GetInt("parallel", 1);
        var (train, validation, test, source) = LoadPneumonia(options);
        if (options.Get("arm", "") is { Length: > 0 } only)
        {
            // One configuration for a parent run: its accuracy goes to --arm-out, the parent merges the results.
            var arm = arms.FirstOrDefault(a => a.Key == only);
            if (arm.Model is null) throw new ArgumentException($"--arm {only} is not one of {string.Join(", ", arms.Select(a => a.Key))}");
            var (accuracy, seconds) = TrainTimed(arm, train, validation, test, epochs);
            File.WriteAllText(options.Get("arm-out", only + ".json"), new JsonObject { ["accuracy"] = accuracy, ["seconds"] = seconds }.ToJsonString());
            return Task.FromResult(0);
        }

        Console.WriteLine($"PneumoniaMNIST: {train.Count} train, {validation.Count} validation, {test.Count} test ({source}); {arms.Length} configurations, "
            + $"{parallel} at a time");
        var trained = parallel > 1
            ? TrainInProcesses(arms, options, epochs, threads, parallel)
            : [.. arms.Select(arm => TrainTimed(arm, train, validation, test, epochs))];
        var baselineAuc = arms.Select((arm, i) => (arm, i)).Where(a => a.arm.Model == ModelCatalog.PneumoniaCnn && a.arm.Wire == ElementType.Float32)
            .Select(a => (double?)trained[a.i].Accuracy["test_auc"]!.GetValue<double>()).FirstOrDefault();

        var summary = new List<string>();
        for (var i = 0; i < arms.Length; i++)
        {
            var (model, wire, key) = arms[i];
            var name = WireTypes.Name(wire);
            var pneumonia = Bytes(model, wire, RawBytesPerImage, "uint8 28x28 image");
            var (accuracy, seconds) = trained[i];
            var ratio = pneumonia["ratio"]!.GetValue<double>();
            var auc = accuracy["test_auc"]!.GetValue<double>();
            var result = new JsonObject
            {
                ["ratio"] = ratio,
                ["what"] = $"{model.Name}, per training sample: sealed features frame (activations in {name} + fp32 labels, AES-GCM envelope) + its queue "
                    + $"message (base64 as queued), " +
                           $"and the sealed gradient frame ({name}) + its reply message, over the raw input bytes; HTTP/XML framing not counted",
                ["target"] = $"<= {TargetRatio} at test AUC >= fp32 pneumonia-cnn's - {TargetAucDrop} (same run)",
                [model.Name] = pneumonia,
                ["accuracy"] = accuracy,
                ["threads"] = threads,
                ["parallel"] = parallel,
                ["training_seconds"] = seconds,
            };
            if (model == ModelCatalog.PneumoniaCnn) result["ldl-mlp"] = Bytes(ModelCatalog.LdlMlp, wire, rawBytesPerSample: 7 * sizeof(float),
                "7 float32 features");
            var verdict = "no fp32 pneumonia-cnn baseline in this run";
            if (baselineAuc is { } baseline)
            {
                var meets = ratio <= TargetRatio && auc >= baseline - TargetAucDrop;
                result["baseline_fp32_test_auc"] = baseline;
                result["test_auc_minus_fp32"] = auc - baseline;
                result["meets_target"] = meets;
                verdict = string.Create(CultureInfo.InvariantCulture, $"AUC {auc - baseline:+0.0000;-0.0000} vs fp32; target {(meets ? "met" : "not met")}");
            }
            var line = string.Create(CultureInfo.InvariantCulture,
                $"wire_bytes_per_sample_ratio_{key} = {ratio:F2} ({model.Name} {pneumonia["cut_shape"]} batch 64: "
                    + $"{pneumonia["bytes_per_sample"]!.GetValue<double>():F0} B/sample over {RawBytesPerImage} B raw); " +
                $"test accuracy {accuracy["test_accuracy"]!.GetValue<double>():F4}, AUC {auc:F4} at epoch {accuracy["chosen_epoch"]} (chosen on validation "
                    + $"AUC of {epochs}); {verdict}; " +
                $"{seconds:F0} s training ({parallel} configurations at a time); {BenchStats.Machine(threads)}");
            summary.Add(line);
            BenchResults.Merge($"wire_bytes_per_sample_ratio_{key}", result, options.ResultsPath);
        }
        Console.WriteLine();
        foreach (var line in summary) Console.WriteLine(line);
        return Task.FromResult(0);
    }

    private static (JsonObject Accuracy, double Seconds) TrainTimed((ModelDefinition Model, ElementType Wire, string Key) arm, TrainingSet train,
        TrainingSet validation, TrainingSet test, int epochs)
    {
        var clock = Stopwatch.StartNew();
        var accuracy = TrainWithWire(arm.Model, train, validation, test, arm.Wire, epochs, arm.Key);
        return (accuracy, clock.Elapsed.TotalSeconds);
    }

    // Runs this benchmark once per configuration (--arm), at most `parallel` at a time; their epoch lines go to this console.
    private static (JsonObject Accuracy, double Seconds)[] TrainInProcesses((ModelDefinition Model, ElementType Wire, string Key)[] arms,
        BenchOptions options, int epochs, int threads, int parallel)
    {
        var folder = Directory.CreateTempSubdirectory("splitfn-wire-");
        try
        {
            var trained = new (JsonObject Accuracy, double Seconds)[arms.Length];
            Parallel.For(0, arms.Length, new ParallelOptions { MaxDegreeOfParallelism = parallel }, i =>
            {
                var output = Path.Combine(folder.FullName, arms[i].Key + ".json");
                var host = Environment.ProcessPath!;
                var start = new ProcessStartInfo(host) { UseShellExecute = false };
                if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(WireBytesBench).Assembly.Location);
                string[] childArgs = ["wire", "--arm", arms[i].Key, "--arm-out", output, "--epochs", $"{epochs}", "--threads", $"{threads}",
                    "--seed", $"{seed}"];
                foreach (var a in childArgs) start.ArgumentList.Add(a);
                if (options.Get("data", "") is { Length: > 0 } data)
                {
                    start.ArgumentList.Add("--data");
                    start.ArgumentList.Add(data);
                }
                if (options.Smoke) start.ArgumentList.Add("--smoke");
                using var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {host}");
                child.WaitForExit();
                if (child.ExitCode != 0) throw new InvalidOperationException($"configuration {arms[i].Key} failed (exit code {child.ExitCode}); its output is "
                    + $"above");
                var result = JsonNode.Parse(File.ReadAllText(output))!.AsObject();
                trained[i] = (result["accuracy"]!.DeepClone().AsObject(), result["seconds"]!.GetValue<double>());
            });
            return trained;
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    // Each wire type of `list` on `model`, keyed `<prefix><wire>`.
    private static IEnumerable<(ModelDefinition Model, ElementType Wire, string Key)> Arms(ModelDefinition model, string prefix, string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(WireTypes.Parse)
            .Select(wire => (model, wire, prefix + WireTypes.Name(wire)));

    // Seals a real batch frame and its messages as the hospital and the function do, and counts their bytes.
    private static JsonObject Bytes(ModelDefinition model, ElementType wire, int rawBytesPerSample, string raw)
    {
        var batch = model.BatchSize;
        var manifest = RunManifest.ForModel("wire-bytes", model, TrainingMode.Vanilla, ["hospital-a"], seed: 7) with { FeatureType = wire };
        long[] shape = [batch, .. manifest.CutShape];
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        var random = new Random(5);
        for (var i = 0; i < values.Length; i++) values[i] = random.NextSingle();
        var labels = new float[batch];
        var key = new HospitalKey("hospital-a", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
        const long sequence = 123_456;
        var features = SecureFrameCodec.Seal(key, new CipherContext(manifest.RunId, key.HospitalId, sequence, PayloadKind.Features, key.KeyId),
            new FrameTensor(wire, shape, values), new FrameTensor(ElementType.Float32, [batch, 1], labels));
        var frameMessage = MessageAuthentication.Sign(new FrameMessage
        {
            RunId = manifest.RunId,
            HospitalId = key.HospitalId,
            Sequence = sequence,
            Kind = FrameKind.Train,
            Blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, sequence),
            Length = features.Length,
            Sha256 = features.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(key.HospitalId),
            KeyId = key.KeyId,
        }, key);
        var message = MessageCodec.Serialize(frameMessage);
        var gradient = SecureFrameCodec.Seal(key, new CipherContext(manifest.RunId, key.HospitalId, sequence, PayloadKind.Gradients, key.KeyId),
            new FrameTensor(wire, shape, values));
        var reply = MessageCodec.Serialize(new ReplyMessage
        {
            RunId = manifest.RunId,
            HospitalId = key.HospitalId,
            Sequence = sequence,
            Kind = ReplyKind.Gradients,
            KeyId = key.KeyId,
            Blob = StorageNames.FrameBlob(StorageNames.GradientsFolder, manifest.RunId, sequence),
            Length = gradient.Length,
            Sha256 = gradient.Sha256,
            Loss = 0.6931,
            Answers = frameMessage.Mac,
        });
        var up = features.Length + BenchHospital.QueueBytes(message);
        var down = gradient.Length + BenchHospital.QueueBytes(reply);
        var perSample = (double)(up + down) / batch;
        return new JsonObject
        {
            ["ratio"] = perSample / rawBytesPerSample,
            ["bytes_per_sample"] = perSample,
            ["upload_bytes_per_sample"] = (double)up / batch,
            ["download_bytes_per_sample"] = (double)down / batch,
            ["raw_bytes_per_sample"] = rawBytesPerSample,
            ["raw"] = raw,
            ["batch"] = batch,
            ["cut_shape"] = string.Join("x", manifest.CutShape),
        };
    }

    // Split training in process with the agent's ClientLayer and the function's ServerModel; only the wire is left out,
    // and the activations and gradients are rounded exactly as a frame of this type would carry them.
    private static JsonObject TrainWithWire(ModelDefinition model, TrainingSet train, TrainingSet validation, TrainingSet test, ElementType wire, int epochs,
        string label)
    {
        var manifest = RunManifest.ForModel("wire-accuracy", model, TrainingMode.Vanilla, ["hospital-a"], seed: seed) with { FeatureType = wire };
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var server = new ServerModel(manifest, TorchSharp.torch.CPU);
        var clock = Stopwatch.StartNew();
        var history = new JsonArray();
        var best = (Epoch: 0, Validation: double.NegativeInfinity, Accuracy: double.NaN, Auc: double.NaN);
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            double lossSum = 0;
            var order = BatchOrder.Shuffle(train.Count, manifest.Seed, epoch);
            foreach (var batch in BatchOrder.Batches(order, manifest.BatchSize))
            {
                using var activations = client.Forward(train, batch, train: true, out var targets);
                var sent = RoundTrip(wire, activations.shape, activations.ToFloats());
                var (loss, gradient) = server.TrainStep(sent, targets, batch.Count);
                client.ApplyGradient(activations, RoundTrip(wire, activations.shape, gradient));
                lossSum += loss * batch.Count;
            }
            var validationAuc = ClassificationMetrics.RocAuc(Predict(client, server, validation, wire), validation.Targets);
            var testScores = Predict(client, server, test, wire);
            var accuracy = ClassificationMetrics.Accuracy(testScores, test.Targets);
            var auc = ClassificationMetrics.RocAuc(testScores, test.Targets);
            history.Add(new JsonObject { ["epoch"] = epoch + 1, ["train_loss"] = lossSum / train.Count, ["validation_auc"] = validationAuc });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {label} epoch {epoch + 1}/{epochs}: train loss {lossSum / train.Count:F4}, validation AUC {validationAuc:F4} "
                    + $"({clock.Elapsed.TotalSeconds:F0} s)"));
            // The epoch is chosen on validation only; the test figures of other epochs are never looked at.
            if (validationAuc > best.Validation) best = (epoch + 1, validationAuc, accuracy, auc);
        }
        return new JsonObject
        {
            ["model"] = model.Name,
            ["epochs_trained"] = epochs,
            ["chosen_epoch"] = best.Epoch,
            ["validation_auc"] = best.Validation,
            ["test_accuracy"] = best.Accuracy,
            ["test_auc"] = best.Auc,
            ["history"] = history,
        };
    }

    private static float[] RoundTrip(ElementType wire, long[] shape, float[] values) =>
        TensorFrame.Decode(TensorFrame.Encode(new FrameTensor(wire, shape, values)))[0].Values;

    internal static float[] Predict(ClientLayer client, ServerModel server, TrainingSet data, ElementType wire)
    {
        var scores = new float[data.Count];
        const int size = 256;
        for (var start = 0; start < data.Count; start += size)
        {
            var n = Math.Min(size, data.Count - start);
            using var activations = client.Forward(data, Enumerable.Range(start, n).ToArray(), train: false, out _);
            server.Predict(RoundTrip(wire, activations.shape, activations.ToFloats()), n).CopyTo(scores, start);
        }
        return scores;
    }

    internal static (TrainingSet Train, TrainingSet Validation, TrainingSet Test, string Source) LoadPneumonia(BenchOptions options)
    {
        var path = options.Get("data", Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared", "data", "pneumoniamnist", "pneumoniamnist_28.npz")));
        TrainingSet train, validation, test;
        string source;
        if (File.Exists(path))
        {
            var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(28, 28) { Normalize = false });
            TrainingSet Load(string split)
            {
                var images = ImageArchive.LoadSplit(path, split, preprocessor);
                return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
            }
            (train, validation, test) = (Load("train"), Load("val"), Load("test"));
            source = "../shared/data/pneumoniamnist/pneumoniamnist_28.npz (MedMNIST splits)";
        }
        else
        {
            // Without the shared data the byte counts still hold; the accuracy figures are then on synthetic images.
            var images = SyntheticImages.Generate(1200, 28, 28, seed: 3);
            var all = new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
            (train, validation, test) = (all.Subset([.. Enumerable.Range(0, 800)]), all.Subset([.. Enumerable.Range(800, 200)]),
                all.Subset([.. Enumerable.Range(1000, 200)]));
            source = "synthetic images: ../shared/data/pneumoniamnist not found, accuracy figures mean little";
        }
        if (options.Smoke)
        {
            train = train.Subset([.. Enumerable.Range(0, Math.Min(192, train.Count))]);
            validation = validation.Subset([.. Enumerable.Range(0, Math.Min(64, validation.Count))]);
            test = test.Subset([.. Enumerable.Range(0, Math.Min(64, test.Count))]);
        }
        return (train, validation, test, source);
    }
}
