using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Bench;

/// <summary>
/// engine_vs_pytorch: centralised training samples/s of covid-ct-cnn (batch 64, 64x64x1) through TorchSharp
/// (libtorch 2.10) and through PyTorch 1.13.1, same machine, same run, same threads. Rounds alternate so
/// drift in the machine's speed hits both sides alike; the median round counts.
/// </summary>
public static class EngineVsPyTorchBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var model = ModelCatalog.Get(options.Get("model", "covid-ct-cnn"));
        var batch = options.GetInt("batch", model.BatchSize);
        var steps = options.GetInt("steps", 30, 2);
        var warmup = options.GetInt("warmup", 5, 1);
        var rounds = options.GetInt("rounds", 3, 1);
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;

        var ours = new List<double>();
        var theirs = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            ours.Add(MeasureOurs(model, batch, steps, warmup));
            theirs.Add(await MeasurePyTorchAsync(model.Name, batch, steps, warmup, threads));
            Console.WriteLine($"  round {round + 1}/{rounds}: TorchSharp {ours[^1]:F1} samples/s, PyTorch {theirs[^1]:F1} samples/s");
        }

        var oursMedian = Median(ours);
        var theirsMedian = Median(theirs);
        var ratio = oursMedian / theirsMedian;
        Console.WriteLine($"engine_vs_pytorch = {ratio:F3}  (TorchSharp {oursMedian:F1} / PyTorch {theirsMedian:F1} samples/s; {model.Name}, batch {batch}, "
            + $"{threads} threads, {Environment.ProcessorCount} cores; target >= 1.0)");
        BenchResults.Merge("engine_vs_pytorch", new JsonObject
        {
            ["ratio"] = ratio,
            ["target"] = ">= 1.0",
            ["model"] = model.Name,
            ["batch"] = batch,
            ["threads"] = threads,
            ["torchsharp_samples_per_s"] = oursMedian,
            ["pytorch_samples_per_s"] = theirsMedian,
            ["rounds"] = rounds,
            ["steps_per_round"] = steps,
        }, options.ResultsPath);
        return 0;
    }

    private static double MeasureOurs(ModelDefinition model, int batch, int steps, int warmup)
    {
        TorchRuntime.Seed(0);
        // Centralised: the client and server layers as one network, one optimizer, no cut.
        using var net = model.BuildWhole();
        using var optimizer = Optimizer.Create(net, OptimizerSettings.Adam(1e-3));
        var random = new Random(0);
        var inputCount = batch * model.InputShape.Aggregate(1L, (a, b) => a * b);
        var x = new float[inputCount];
        for (var i = 0; i < x.Length; i++) x[i] = random.NextSingle();
        var y = Enumerable.Range(0, batch).Select(_ => random.Next(2) * 1f).ToArray();
        using var input = TensorData.FromFloats(x, [batch, .. model.InputShape]);
        using var target = TensorData.FromFloats(y, [batch, 1]);

        void Step()
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            optimizer.ZeroGrad();
            var prediction = net.Forward(input, train: true);
            Loss.Compute(model.Loss, prediction, target, backward: true);
            optimizer.Step();
        }

        for (var i = 0; i < warmup; i++) Step();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++) Step();
        return batch * steps / clock.Elapsed.TotalSeconds;
    }

    private static async Task<double> MeasurePyTorchAsync(string model, int batch, int steps, int warmup, int threads)
    {
        var script = Path.Combine(RepoPaths.Root, "bench", "pytorch_baseline.py");
        var info = new ProcessStartInfo(RepoPaths.DebianPython) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new object[] { script, model, batch, steps, warmup, threads }) info.ArgumentList.Add(a.ToString()!);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("cannot start " + RepoPaths.DebianPython);
        var stdout = await process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"PyTorch baseline failed ({process.ExitCode}). Is python3-torch installed? Run SPLITFN_WITH_PYTORCH=1 "
                + $"scripts/setup.sh.\n{stderr}");
        using var doc = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        return doc.RootElement.GetProperty("samples_per_s").GetDouble();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
