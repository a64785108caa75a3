using System.Diagnostics;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// native_rss: the process's resident memory over a long run of the function's compute (ServerModel.TrainStep, a
/// checkpoint's weights and optimizer state every 25 steps) and of the agent's (ClientLayer forward, dL/dA applied,
/// weights and optimizer state saved every step, as the agent commits them). Each side runs in its own child process;
/// RSS at step 100 and at the last step shows whether tensors are freed every step (dispose scopes) or leak.
/// `--model` (default pneumonia-cnn), `--steps` (2000), `--batch` (32).
/// </summary>
public static class NativeMemoryBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var steps = options.GetInt("steps", 2000, 120);
        var batch = options.GetInt("batch", 32, 8);
        var side = options.Get("side", "");
        // --smoke: the small MLP, so the smoke test stays short; the figures then mean nothing.
        var modelName = options.Get("model", options.Smoke ? ModelCatalog.LdlMlp.Name : ModelCatalog.PneumoniaCnn.Name);
        if (side is "function" or "agent") return Measure(side, ModelCatalog.Get(modelName), steps, batch);

        var results = new JsonObject();
        foreach (var child in new[] { "function", "agent" })
        {
            // The apphost runs itself; anywhere else (dotnet splitfn-bench.dll, a test host) run the dll with dotnet.
            var apphost = Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "splitfn-bench";
            var info = new ProcessStartInfo(apphost ? Environment.ProcessPath! : "dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
            if (!apphost) info.ArgumentList.Add(typeof(NativeMemoryBench).Assembly.Location);
            foreach (var a in new[] { "memory", "--side", child, "--model", modelName, "--steps",
                steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--batch",
                batch.ToString(System.Globalization.CultureInfo.InvariantCulture) })
                info.ArgumentList.Add(a);
            using var process = Process.Start(info)!;
            string? last = null;
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                Console.WriteLine(line);
                last = line;
            }
            await process.WaitForExitAsync();
            if (process.ExitCode != 0) return process.ExitCode;
            results[child] = JsonNode.Parse(last!);
        }
        results["steps"] = steps;
        results["batch"] = batch;
        results["model"] = modelName;
        BenchResults.Merge("native_rss", results, options.ResultsPath);
        return 0;
    }

    private static int Measure(string side, ModelDefinition model, int steps, int batch)
    {
        var manifest = RunManifest.ForModel("memory", model, TrainingMode.Vanilla, ["h"], seed: 1) with { BatchSize = batch };
        var random = new Random(1);
        var sampleSize = (int)model.InputShape.Aggregate(1L, (a, b) => a * b);
        var data = new TrainingSet([.. Enumerable.Range(0, batch * 4 * sampleSize).Select(_ => random.NextSingle())],
            [.. Enumerable.Range(0, batch * 4).Select(i => (float)(i % 2))], model.InputShape);
        var labels = Enumerable.Range(0, batch).Select(i => (float)(i % 2)).ToArray();
        var cut = (int)manifest.CutShape.Aggregate(1L, (a, b) => a * b);
        var activations = Enumerable.Range(0, batch * cut).Select(_ => random.NextSingle()).ToArray();
        var gradient = Enumerable.Range(0, batch * cut).Select(_ => (random.NextSingle() - 0.5f) * 1e-3f).ToArray();
        var indices = Enumerable.Range(0, batch).ToArray();
        long at100 = 0, last = 0;
        var clock = Stopwatch.StartNew();
        using var server = side == "function" ? new ServerModel(manifest, TorchSharp.torch.CPU) : null;
        using var client = side == "agent" ? ClientLayer.Create(manifest, trainable: true, secret: null) : null;
        for (var step = 1; step <= steps; step++)
        {
            if (server is not null)
            {
                server.TrainStep(activations, labels, batch);
                if (step % 25 == 0) { server.SaveWeights(); server.SaveOptimizer(); }
            }
            else
            {
                var rows = indices.Select(i => (i + step * batch) % data.Count).ToArray();
                using var a = client!.Forward(data, rows, train: true, out _);
                _ = a.ToFloats();
                client.ApplyGradient(a, gradient);
                client.Network.SaveState();
                client.Optimizer!.SaveState();
            }
            if (step == 100 || step == steps || step % 500 == 0)
            {
                var rss = Rss();
                if (step == 100) at100 = rss;
                last = rss;
                Console.WriteLine($"  {side} step {step}: RSS {rss / 1048576.0:F1} MiB, managed heap {GC.GetTotalMemory(false) / 1048576.0:F1} MiB");
            }
        }
        Console.WriteLine($"{side}: RSS {at100 / 1048576.0:F1} MiB at step 100, {last / 1048576.0:F1} MiB at step {steps} "
            + $"({(last - at100) / 1048576.0:+0.0;-0.0} MiB); {steps / clock.Elapsed.TotalSeconds:F0} steps/s, batch {batch}, {TorchRuntime.Threads} threads");
        Console.WriteLine(new JsonObject
        {
            ["rss_mib_step_100"] = Math.Round(at100 / 1048576.0, 1),
            ["rss_mib_last_step"] = Math.Round(last / 1048576.0, 1)
        }.ToJsonString());
        return 0;
    }

    // Resident set size: VmRSS on Linux (what the kernel charges the process, native allocations included).
    private static long Rss()
    {
        if (File.Exists("/proc/self/status"))
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            if (line is not null) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
                System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }
}
