using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Runs;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.Bench;

/// <summary>
/// pipelined_auc_delta (PneumoniaMNIST) and pipelined_auc_delta_covid_ct (COVID-CT, official split lists): the accuracy
/// price of pipelined vanilla training (manifest pipelineDepth), in process with the agent's ClientLayer and the
/// function's ServerModel, in the order the real system runs a pipelined hospital: the server steps each batch as it
/// arrives (its weights see every batch in order, as in synchronous training), the client applies each batch's gradient
/// through the weights its forward used (weight stashing) up to depth - 1 steps after later forwards, and drains at each
/// epoch's end. Arms are paired: for a seed every depth starts from the same weights and sees the same batches in the same
/// order. Each arm trains up to --epochs, keeps the state of its best validation epoch and scores the test split once,
/// on that state. Per depth: test AUC per seed, mean and SD; against depth 1 the paired difference per seed, its mean and SD.
/// --staleness-lr adds, beside each depth k > 1, an arm whose client learning rate is divided by k (staleness-aware
/// learning rate, Zhang et al. 2016): every backward stays exact; only the step size changes.
/// </summary>
public static class PipelineAccuracyBench
{
    public const string Key = "pipelined_auc_delta";

    private const string CovidCt = "covid-ct";

    /// <summary>One configuration trained for every seed: its pipeline depth and the divisor of the client's learning rate.</summary>
    private sealed record Arm(string Name, int Depth, int ClientLearningRateDivisor);

    public static Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var dataset = options.Get("dataset", "pneumoniamnist");
        if (dataset is not ("pneumoniamnist" or CovidCt)) throw new ArgumentException($"--dataset is pneumoniamnist or {CovidCt}, got '{dataset}'");
        var covid = dataset == CovidCt;
        var model = ModelCatalog.Get(options.Get("model", covid ? ModelCatalog.CovidCtCnn.Name : ModelCatalog.PneumoniaCnn.Name));
        var epochs = options.GetInt("epochs", covid ? 40 : 15, 1);
        var seeds = Ints(options.Get("seeds", options.Smoke ? "1" : "1,2,3"));
        var depths = Ints(options.Get("pipeline-depth", "1,4"));
        if (!depths.Contains(1)) depths = [1, .. depths];
        List<Arm> arms = [.. depths.Select(d => new Arm("k" + Text(d), d, 1))];
        if (options.GetFlag("staleness-lr")) arms.AddRange(depths.Where(d => d > 1).Select(d => new Arm($"k{Text(d)}-lr/{Text(d)}", d, d)));
        // --arms runs some of them (an arm added after a run: the arms are deterministic per seed, so k1 of that run pairs with it).
        if (options.Get("arms", "") is { Length: > 0 } only)
        {
            var names = only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.FirstOrDefault(n => arms.All(a => a.Name != n)) is { } unknown)
                throw new ArgumentException($"--arms: '{unknown}' is not one of {string.Join(", ", arms.Select(a => a.Name))}");
            arms = [.. arms.Where(a => names.Contains(a.Name))];
        }
        var (train, validation, test, source) = covid ? LoadCovidCt(options, model) : WireBytesBench.LoadPneumonia(options);
        var maxTrain = options.GetInt("max-train", 0);
        // A fixed random subset (the archive's rows are grouped by class: its first rows are one class), the same for every seed and depth.
        if (maxTrain > 0 && maxTrain < train.Count) train = train.Subset([.. BatchOrder.Shuffle(train.Count, 0, 0).Take(maxTrain)]);
        TorchRuntime.Threads = options.GetInt("threads", Environment.ProcessorCount);
        var key = covid ? Key + "_covid_ct" : Key;
        var loadBefore = ScaleBench.Load();
        Console.WriteLine($"  {model.Name}, {train.Count} training / {validation.Count} validation / {test.Count} test images ({source}); epochs up to "
            + $"{epochs}, seeds {string.Join(",", seeds)}, arms {string.Join(", ", arms.Select(a => a.Name))}; {TorchRuntime.Threads} threads; "
            + $"load {loadBefore}");

        var aucs = arms.ToDictionary(a => a.Name, _ => new List<double>());
        var runs = arms.ToDictionary(a => a.Name, _ => new JsonArray());
        // Seed by seed, every arm of a seed in turn: a run cut short still holds complete pairs.
        foreach (var seed in seeds)
        {
            foreach (var arm in arms)
            {
                var run = Train(model, train, validation, test, epochs, arm, (ulong)seed);
                aucs[arm.Name].Add(run["test_auc"]!.GetValue<double>());
                runs[arm.Name].Add(run);
            }
        }
        var perArm = new JsonObject();
        foreach (var arm in arms)
        {
            perArm[arm.Name] = new JsonObject
            {
                ["pipeline_depth"] = arm.Depth,
                ["client_learning_rate"] = model.Optimizer.LearningRate / arm.ClientLearningRateDivisor,
                ["test_auc_mean"] = aucs[arm.Name].Average(),
                ["test_auc_sd"] = StandardDeviation(aucs[arm.Name]),
                ["runs"] = runs[arm.Name],
            };
        }

        var synchronous = aucs.GetValueOrDefault("k1") ?? [];
        Console.WriteLine($"  seeds {string.Join(", ", seeds)}; test AUC at the epoch chosen on validation:");
        foreach (var arm in arms)
        {
            var figures = aucs[arm.Name];
            var line = string.Create(CultureInfo.InvariantCulture,
                $"  {arm.Name,-9} {string.Join("  ", figures.Select(a => a.ToString("F4", CultureInfo.InvariantCulture)))}  mean {figures.Average():F4} "
                    + $"sd {StandardDeviation(figures):F4}");
            if (arm.Depth > 1 && synchronous.Count > 0)
            {
                var paired = Paired(figures, synchronous);
                perArm[arm.Name]!["paired_delta_mean"] = paired.Average();
                perArm[arm.Name]!["paired_delta_sd"] = StandardDeviation(paired);
                perArm[arm.Name]!["paired_deltas"] = new JsonArray([.. paired.Select(d => JsonValue.Create(d))]);
                line += string.Create(CultureInfo.InvariantCulture,
                    $"; paired delta to k1 {paired.Average():+0.0000;-0.0000} sd {StandardDeviation(paired):F4} "
                        + $"({string.Join(", ", paired.Select(d => d.ToString("+0.0000;-0.0000", CultureInfo.InvariantCulture)))})");
            }
            Console.WriteLine(line);
        }
        if (synchronous.Count == 0)
        {
            Console.WriteLine("  no k1 arm in this run: no paired differences, nothing merged into the results file");
            return Task.FromResult(0);
        }
        var deepest = arms.Where(a => a.ClientLearningRateDivisor == 1).MaxBy(a => a.Depth)!;
        var delta = Paired(aucs[deepest.Name], synchronous);
        var loadAfter = ScaleBench.Load();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{key} = {delta.Average():+0.0000;-0.0000} sd {StandardDeviation(delta):F4} ({deepest.Name} - k1, paired over {seeds.Length} seeds, test AUC; "
                + $"target within 0.01; load {loadAfter})"));
        BenchResults.Merge(key, new JsonObject
        {
            ["value"] = delta.Average(),
            ["paired_delta_sd"] = StandardDeviation(delta),
            ["target"] = "|mean paired delta| <= 0.01",
            ["model"] = model.Name,
            ["data"] = source,
            ["train_samples"] = train.Count,
            ["epochs_max"] = epochs,
            ["seeds"] = new JsonArray([.. seeds.Select(s => JsonValue.Create(s))]),
            ["arms"] = perArm,
            ["threads"] = TorchRuntime.Threads,
            ["load_before"] = loadBefore,
            ["load_after"] = loadAfter,
            ["what"] = "split training in process (agent ClientLayer, function ServerModel, fp32, no noise) in the pipelined order; per arm and seed the "
                + "state of the best validation-AUC epoch, test AUC scored once on it; arms paired (same seed: same initial weights, same batch order)",
        }, options.ResultsPath);
        return Task.FromResult(0);
    }

    private static JsonObject Train(ModelDefinition model, TrainingSet train, TrainingSet validation, TrainingSet test, int epochs, Arm arm, ulong seed)
    {
        var manifest = RunManifest.ForModel("pipeline-accuracy", model, TrainingMode.Vanilla, ["hospital-a"], seed) with { PipelineDepth = arm.Depth };
        manifest = manifest with
        {
            ClientOptimizer = manifest.ClientOptimizer with { LearningRate = manifest.ClientOptimizer.LearningRate / arm.ClientLearningRateDivisor },
        };
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var server = new ServerModel(manifest, TorchSharp.torch.CPU);
        var clock = Stopwatch.StartNew();
        var history = new JsonArray();
        var curve = new List<double>();
        var best = new BestEpoch<(byte[] Client, byte[] Server)>();
        var inFlight = new Queue<(StashedForward Stash, float[] Gradient)>();
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            double lossSum = 0;
            // The batch order depends on the seed and the epoch only: every arm of a seed sees the same batches in the same order.
            var order = BatchOrder.Shuffle(train.Count, manifest.Seed, epoch);
            foreach (var batch in BatchOrder.Batches(order, manifest.BatchSize))
            {
                if (arm.Depth == 1)
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
                if (inFlight.Count == arm.Depth)
                {
                    var (oldest, g) = inFlight.Dequeue();
                    client.ApplyStashedGradient(oldest, g);
                }
            }
            // The pipeline drains at the epoch's end, as the agent's does.
            while (inFlight.TryDequeue(out var left)) client.ApplyStashedGradient(left.Stash, left.Gradient);
            var validationAuc = ClassificationMetrics.RocAuc(WireBytesBench.Predict(client, server, validation, ElementType.Float32), validation.Targets);
            curve.Add(validationAuc);
            history.Add(new JsonObject { ["epoch"] = epoch + 1, ["train_loss"] = lossSum / train.Count, ["validation_auc"] = validationAuc });
            best.Offer(epoch + 1, validationAuc, () => (client.Network.SaveState(), server.Network.SaveState()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {arm.Name} seed {seed} epoch {epoch + 1}/{epochs}: train loss {lossSum / train.Count:F4}, validation AUC {validationAuc:F4} "
                    + $"({clock.Elapsed.TotalSeconds:F0} s)"));
        }
        // The test split is scored once, on the state of the epoch chosen on validation (the last one if no epoch had a finite score).
        var chosen = best.Epoch > 0 ? best.Epoch : epochs;
        if (best.Epoch > 0)
        {
            client.Network.LoadState(best.State.Client);
            server.Network.LoadState(best.State.Server);
        }
        var testAuc = ClassificationMetrics.RocAuc(WireBytesBench.Predict(client, server, test, ElementType.Float32), test.Targets);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {arm.Name} seed {seed}: validation AUC by epoch {string.Join(" ", curve.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))}; "
                + $"epoch {chosen} chosen (validation {best.Score:F4}{(chosen == epochs ? ", the last: still improving?" : "")}); test AUC {testAuc:F4} "
                + $"({clock.Elapsed.TotalSeconds:F0} s; load {ScaleBench.Load()})"));
        return new JsonObject
        {
            ["seed"] = seed,
            ["chosen_epoch"] = chosen,
            ["validation_auc"] = best.Score,
            ["test_auc"] = testAuc,
            ["seconds"] = clock.Elapsed.TotalSeconds,
            ["history"] = history,
        };
    }

    /// <summary>
    /// COVID-CT with its official lists: the manifest `splitfn-local experiments --split-lists` writes (SplitLists), read through
    /// the agent's image source (ImageSourceLoader, --split-column split): one hospital holding every training image,
    /// normalised with its training statistics, decoded on demand through the image cache.
    /// </summary>
    private static (TrainingSet Train, TrainingSet Validation, TrainingSet Test, string Source) LoadCovidCt(BenchOptions options, ModelDefinition model)
    {
        var data = Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared", "data", "covid-ct"));
        var images = options.Get("images", Path.Combine(data, "Images"));
        var lists = options.Get("split-lists", Path.Combine(data, "Data-split"));
        var classes = options.Get("classes", "CT_NonCOVID,CT_COVID").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var folder = Path.Combine(Path.GetTempPath(), $"splitfn-bench-covid-ct-{Guid.NewGuid():N}");
        try
        {
            var manifest = SplitLists.WriteManifest(images, lists, Path.Combine(folder, "manifest.csv"), classes);
            Console.WriteLine($"  split lists: {manifest}; classes {string.Join(", ", manifest.Classes)} (index order)");
            var source = ImageSourceLoader.Load(new ImageSourceOptions { Path = manifest.Path, SplitColumn = "split", Classes = manifest.Classes },
                new ImageSplitRule(0, [1.0], 0), (int)model.InputShape[0], (int)model.InputShape[1], (int)model.InputShape[2]);
            var (train, validation, test) = (source.Train, source.Validation, source.Test);
            if (options.Smoke)
            {
                train = train.Subset([.. Enumerable.Range(0, Math.Min(96, train.Count))]);
                validation = validation.Subset([.. Enumerable.Range(0, Math.Min(48, validation.Count))]);
                test = test.Subset([.. Enumerable.Range(0, Math.Min(48, test.Count))]);
            }
            // Decode every image once now (the cache keeps them all: a few MiB at 64x64), so the epochs time training alone.
            foreach (var set in new[] { train, validation, test }) Touch(set);
            return (train, validation, test, $"../shared/data/covid-ct with its official split lists, {model.InputShape[1]}x{model.InputShape[2]} grey");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private static void Touch(TrainingSet set)
    {
        var features = new float[set.SampleSize];
        var targets = new float[set.TargetWidth];
        for (var i = 0; i < set.Count; i++) set.Gather([i], features, targets);
    }

    private static List<double> Paired(List<double> arm, List<double> synchronous) => [.. arm.Zip(synchronous, (a, s) => a - s)];

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static int[] Ints(string list) =>
        [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))];

    // The studies' sample standard deviation; 0 (not NaN) for a single seed, so a one-seed run still prints a number.
    private static double StandardDeviation(List<double> values) => values.Count < 2 ? 0 : SeedArmSummary.MeanSd(values).Sd;
}
