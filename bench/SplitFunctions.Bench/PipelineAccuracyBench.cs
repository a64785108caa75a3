using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Bench;

/// <summary>
/// pipelined_auc_delta: the accuracy price of pipelined vanilla training (manifest pipelineDepth) on PneumoniaMNIST, in
/// process with the agent's ClientLayer and the function's ServerModel, in the order the real system runs a pipelined
/// hospital: the server steps each batch as it arrives (its weights see every batch in order, as in synchronous
/// training), the client applies each batch's gradient through the weights its forward used (weight stashing) up to
/// depth - 1 steps after later forwards, and drains at each epoch's end. Per seed and depth: the epoch chosen on
/// validation AUC, test AUC at that epoch; then mean and standard deviation over seeds, and the mean difference to depth 1.
/// </summary>
public static class PipelineAccuracyBench
{
    public const string Key = "pipelined_auc_delta";

    public static Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var model = ModelCatalog.Get(options.Get("model", "pneumonia-cnn"));
        var epochs = options.GetInt("epochs", 5, 1);
        var seeds = Ints(options.Get("seeds", options.Smoke ? "1" : "1,2,3"));
        var depths = Ints(options.Get("pipeline-depth", "1,4"));
        if (!depths.Contains(1)) depths = [1, .. depths];
        var (train, validation, test, source) = WireBytesBench.LoadPneumonia(options);
        var maxTrain = options.GetInt("max-train", 0);
        // A fixed random subset (the archive's rows are grouped by class: its first rows are one class), the same for every seed and depth.
        if (maxTrain > 0 && maxTrain < train.Count) train = train.Subset([.. BatchOrder.Shuffle(train.Count, 0, 0).Take(maxTrain)]);
        TorchRuntime.Threads = options.GetInt("threads", Environment.ProcessorCount);
        Console.WriteLine($"  {model.Name}, {train.Count} training / {validation.Count} validation / {test.Count} test images ({source}); epochs up to "
            + $"{epochs}, seeds {string.Join(",", seeds)}, depths {string.Join(",", depths)}; load {ScaleBench.Load()}");

        var perDepth = new JsonObject();
        var aucs = new Dictionary<int, List<double>>();
        foreach (var depth in depths)
        {
            var runs = new JsonArray();
            aucs[depth] = [];
            foreach (var seed in seeds)
            {
                var run = Train(model, train, validation, test, epochs, depth, (ulong)seed);
                aucs[depth].Add(run["test_auc"]!.GetValue<double>());
                runs.Add(run);
            }
            perDepth["k" + depth.ToString(CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["pipeline_depth"] = depth,
                ["test_auc_mean"] = aucs[depth].Average(),
                ["test_auc_sd"] = StandardDeviation(aucs[depth]),
                ["runs"] = runs,
            };
        }
        var deepest = depths.Max();
        var delta = aucs[deepest].Average() - aucs[1].Average();
        foreach (var depth in depths)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  depth {depth}: test AUC mean {aucs[depth].Average():F4} sd {StandardDeviation(aucs[depth]):F4} over seeds {string.Join(",", seeds)} "
                    + $"({string.Join(", ", aucs[depth].Select(a => a.ToString("F4", CultureInfo.InvariantCulture)))})"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Key} = {delta:+0.0000;-0.0000} (depth {deepest} - depth 1, mean test AUC; target within 0.01; load {ScaleBench.Load()})"));
        BenchResults.Merge(Key, new JsonObject
        {
            ["value"] = delta,
            ["target"] = "|delta| <= 0.01",
            ["model"] = model.Name,
            ["data"] = source,
            ["train_samples"] = train.Count,
            ["epochs_max"] = epochs,
            ["seeds"] = new JsonArray([.. seeds.Select(s => JsonValue.Create(s))]),
            ["depths"] = perDepth,
            ["load"] = ScaleBench.Load(),
            ["what"] = "split training in process (agent ClientLayer, function ServerModel, fp32, no noise) in the pipelined order; epoch chosen on "
                + "validation AUC; test AUC at that epoch",
        }, options.ResultsPath);
        return Task.FromResult(0);
    }

    private static JsonObject Train(ModelDefinition model, TrainingSet train, TrainingSet validation, TrainingSet test, int epochs, int depth, ulong seed)
    {
        var manifest = RunManifest.ForModel("pipeline-accuracy", model, TrainingMode.Vanilla, ["hospital-a"], seed) with { PipelineDepth = depth };
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var server = new ServerModel(manifest, TorchSharp.torch.CPU);
        var clock = Stopwatch.StartNew();
        var history = new JsonArray();
        var best = (Epoch: 0, Validation: double.NegativeInfinity, Auc: double.NaN);
        var inFlight = new Queue<(StashedForward Stash, float[] Gradient)>();
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            double lossSum = 0;
            var order = BatchOrder.Shuffle(train.Count, manifest.Seed, epoch);
            foreach (var batch in BatchOrder.Batches(order, manifest.BatchSize))
            {
                if (depth == 1)
                {
                    // Synchronous: the agent's path as it is, forward and backward of one batch around its server step.
                    using var activations = client.Forward(train, batch, train: true, out var targets);
                    var (loss, gradient) = server.TrainStep(activations.ToFloats(), targets, batch.Count);
                    client.ApplyGradient(activations, gradient);
                    lossSum += loss * batch.Count;
                    continue;
                }
                // The forward of this batch runs after the gradient of the batch depth earlier was applied; the server steps it on arrival.
                var stash = client.ForwardStashed(train, batch, out var batchTargets);
                var (batchLoss, batchGradient) = server.TrainStep(stash.Activations.ToFloats(), batchTargets, batch.Count);
                lossSum += batchLoss * batch.Count;
                inFlight.Enqueue((stash, batchGradient));
                if (inFlight.Count == depth)
                {
                    var (oldest, g) = inFlight.Dequeue();
                    client.ApplyStashedGradient(oldest, g);
                }
            }
            // The pipeline drains at the epoch's end, as the agent's does.
            while (inFlight.TryDequeue(out var left)) client.ApplyStashedGradient(left.Stash, left.Gradient);
            var validationAuc = ClassificationMetrics.RocAuc(WireBytesBench.Predict(client, server, validation, ElementType.Float32), validation.Targets);
            var testAuc = ClassificationMetrics.RocAuc(WireBytesBench.Predict(client, server, test, ElementType.Float32), test.Targets);
            history.Add(new JsonObject { ["epoch"] = epoch + 1, ["train_loss"] = lossSum / train.Count, ["validation_auc"] = validationAuc });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  depth {depth} seed {seed} epoch {epoch + 1}/{epochs}: train loss {lossSum / train.Count:F4}, validation AUC {validationAuc:F4} "
                    + $"({clock.Elapsed.TotalSeconds:F0} s; load {ScaleBench.Load()})"));
            // The epoch is chosen on validation only; the test figures of other epochs are never looked at.
            if (validationAuc > best.Validation) best = (epoch + 1, validationAuc, testAuc);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  depth {depth} seed {seed}: epoch {best.Epoch} chosen on validation (AUC {best.Validation:F4}); test AUC {best.Auc:F4}"));
        return new JsonObject
        {
            ["seed"] = seed,
            ["chosen_epoch"] = best.Epoch,
            ["validation_auc"] = best.Validation,
            ["test_auc"] = best.Auc,
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["history"] = history,
        };
    }

    private static int[] Ints(string list) =>
        [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))];

    private static double StandardDeviation(List<double> values)
    {
        if (values.Count < 2) return 0;
        var mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }
}
