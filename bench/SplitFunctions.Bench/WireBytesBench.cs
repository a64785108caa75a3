using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Models;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Core.Training;
using SplitFunctions.Functions.Training;

namespace SplitFunctions.Bench;

/// <summary>
/// wire_bytes_per_sample_ratio_{fp32,fp16,bf16}: bytes that cross the wire per training sample in vanilla mode (the
/// sealed features frame + its queue message, and the sealed gradient frame + its reply message) over the raw input
/// bytes of the sample; and the accuracy effect of the wire type on PneumoniaMNIST, training pneumonia-cnn split in
/// process with the cut-layer activations and gradients rounded through a TensorFrame encode/decode round trip.
/// </summary>
public static class WireBytesBench
{
    public static Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var epochs = options.GetInt("epochs", 6, 1);
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;
        // --wire fp32,fp16,bf16 (the default): the accuracy runs are long on a small machine, so one type can be measured alone.
        var wires = options.Get("wire", "fp32,fp16,bf16").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(WireTypes.Parse).ToArray();

        var (train, validation, test, source) = LoadPneumonia(options);
        Console.WriteLine($"PneumoniaMNIST: {train.Count} train, {validation.Count} validation, {test.Count} test ({source})");
        foreach (var wire in wires)
        {
            var name = WireTypes.Name(wire);
            var pneumonia = Bytes(ModelCatalog.PneumoniaCnn, wire, rawBytesPerSample: 28 * 28, "uint8 28x28 image");
            var ldl = Bytes(ModelCatalog.LdlMlp, wire, rawBytesPerSample: 7 * sizeof(float), "7 float32 features");
            var clock = Stopwatch.StartNew();
            var accuracy = TrainWithWire(train, validation, test, wire, epochs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wire_bytes_per_sample_ratio_{name} = {pneumonia["ratio"]!.GetValue<double>():F2} (pneumonia-cnn batch 64: {pneumonia["bytes_per_sample"]!.GetValue<double>():F0} B/sample over 784 B raw; " +
                $"ldl-mlp batch 2048: {ldl["ratio"]!.GetValue<double>():F2}); test accuracy {accuracy["test_accuracy"]!.GetValue<double>():F4}, AUC {accuracy["test_auc"]!.GetValue<double>():F4} " +
                $"at epoch {accuracy["chosen_epoch"]} (chosen on validation AUC of {epochs}); {clock.Elapsed.TotalSeconds:F0} s training; {BenchStats.Machine(threads)}"));
            BenchResults.Merge($"wire_bytes_per_sample_ratio_{name}", new JsonObject
            {
                ["ratio"] = pneumonia["ratio"]!.GetValue<double>(),
                ["what"] = "per training sample: sealed features frame (activations in this wire type + fp32 labels, AES-GCM envelope) + its queue message (base64 as queued), " +
                           "and the sealed gradient frame (this wire type) + its reply message, over the raw input bytes; HTTP/XML framing not counted",
                ["pneumonia-cnn"] = pneumonia,
                ["ldl-mlp"] = ldl,
                ["accuracy"] = accuracy,
                ["threads"] = threads,
            }, options.ResultsPath);
        }
        return Task.FromResult(0);
    }

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
        var key = new HospitalKey("hospital-a", "k1", RandomNumberGenerator.GetBytes(Envelope.KeySize));
        const long sequence = 123_456;
        var features = SecureFrameCodec.Seal(key, new EnvelopeContext(manifest.RunId, key.HospitalId, sequence, PayloadKind.Features, key.KeyId),
            new FrameTensor(wire, shape, values), new FrameTensor(ElementType.Float32, [batch, 1], labels));
        var frameMessage = MessageAuthentication.Sign(new FrameMessage
        {
            RunId = manifest.RunId, HospitalId = key.HospitalId, Sequence = sequence, Kind = FrameKind.Train,
            Blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, sequence), Length = features.Length, Sha256 = features.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(key.HospitalId), KeyId = key.KeyId,
        }, key);
        var message = MessageCodec.Serialize(frameMessage);
        var gradient = SecureFrameCodec.Seal(key, new EnvelopeContext(manifest.RunId, key.HospitalId, sequence, PayloadKind.Gradients, key.KeyId), new FrameTensor(wire, shape, values));
        var reply = MessageCodec.Serialize(new ReplyMessage
        {
            RunId = manifest.RunId, HospitalId = key.HospitalId, Sequence = sequence, Kind = ReplyKind.Gradients, KeyId = key.KeyId,
            Blob = StorageNames.FrameBlob(StorageNames.GradientsFolder, manifest.RunId, sequence), Length = gradient.Length, Sha256 = gradient.Sha256, Loss = 0.6931,
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
    private static JsonObject TrainWithWire(TrainingSet train, TrainingSet validation, TrainingSet test, ElementType wire, int epochs)
    {
        var model = ModelCatalog.PneumoniaCnn;
        var manifest = RunManifest.ForModel("wire-accuracy", model, TrainingMode.Vanilla, ["hospital-a"], seed: 7) with { FeatureType = wire };
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var server = new ServerModel(manifest, TorchSharp.torch.CPU);
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

    private static float[] Predict(ClientLayer client, ServerModel server, TrainingSet data, ElementType wire)
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

    private static (TrainingSet Train, TrainingSet Validation, TrainingSet Test, string Source) LoadPneumonia(BenchOptions options)
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
            (train, validation, test) = (all.Subset([.. Enumerable.Range(0, 800)]), all.Subset([.. Enumerable.Range(800, 200)]), all.Subset([.. Enumerable.Range(1000, 200)]));
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
