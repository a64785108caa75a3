using System.CommandLine;
using System.Globalization;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>
/// `splitfn-local chaos`: the real three-hospital system under seeded faults (kill -9 of the function and the agents,
/// storage outages, duplicate and reordered deliveries, a storm of hostile messages), then the invariants checked end
/// to end. Exit 0 when every invariant held, 7 when one broke (docs/deploy.md, "Chaos run").
/// </summary>
public static class ChaosCommand
{
    private static readonly string[] Hospitals = ["hospital-a", "hospital-b", "hospital-c"];

    public static Command Create()
    {
        var mode = new Option<string?>("--mode")
        {
            Description = "vanilla, temporal or both (default both); with --insider also ushaped or all (its default: vanilla, temporal and ushaped)."
        };
        var insider = new Option<bool>("--insider")
        {
            Description = "Instead of the faults: per mode a run without and a run with an insider (a hospital with a valid key sending huge "
                + "values, infinities, oversized batches, huge or deleted blobs, legs out of order and forged replies); results in insider-results.*."
        };
        var insiderAttacks = new Option<int?>("--insider-attacks") { Description = "The insider's attacks per mode (default 24; --smoke 6, one of each)." };
        var kills = new Option<int?>("--kills") { Description = "kill -9 faults per mode, of the function or an agent (default 20; --smoke 2)." };
        var hostile = new Option<int?>("--hostile") { Description = "Hostile messages per mode (default 1000; --smoke 40)." };
        var outage = new Option<string?>("--outage-seconds")
        {
            Description = "Storage outage length range min,max in seconds (default 5,60; --smoke 2,4); one "
            + "outage per five kills, at least one."
        };
        var seed = new Option<long?>("--seed") { Description = "Seed of the fault plan (default: drawn, printed and recorded in results.json)." };
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "Output folder.",
            DefaultValueFactory = _
            => new DirectoryInfo(Path.Combine("artifacts", "chaos"))
        };
        var pipelineDepth = new Option<int?>("--pipeline-depth")
        {
            Description = "Vanilla: batches each hospital keeps in flight (2-16: pipelined training under the same faults; default synchronous)."
        };
        var smoke = new Option<bool>("--smoke") { Description = "Small data, few faults: well under 2 minutes on 2 cores." };
        var command = new Command("chaos", "Runs the real three-hospital system on Azurite under seeded faults and checks that no step is lost or doubled, "
            + "nothing crashes unplanned, every hostile message is poisoned with a reason and temporal weights equal an uninterrupted run's.")
        {
            mode, kills, hostile, outage, seed, output, smoke, pipelineDepth, insider, insiderAttacks,
        };
        command.SetAction(async (result, ct) =>
        {
            try
            {
                var isSmoke = result.GetValue(smoke);
                if (result.GetValue(insider))
                {
                    var insiderModes = (result.GetValue(mode) ?? "all") switch
                    {
                        "vanilla" => new[] { TrainingMode.Vanilla },
                        "temporal" => [TrainingMode.Temporal],
                        "ushaped" => [TrainingMode.UShaped],
                        "both" => [TrainingMode.Vanilla, TrainingMode.Temporal],
                        "all" => [TrainingMode.Vanilla, TrainingMode.Temporal, TrainingMode.UShaped],
                        var other => throw new StudyException(StudyExitCode.Usage, $"--mode '{other}' is not vanilla, temporal, ushaped, both or all"),
                    };
                    var attackCount = result.GetValue(insiderAttacks) ?? (isSmoke ? InsiderMessages.Kinds.Length : 24);
                    if (attackCount is < 1 or > 1000)
                        throw new StudyException(StudyExitCode.Usage, $"--insider-attacks {attackCount} is out of range (1 to 1000)");
                    return await InsiderChaos.RunAsync(insiderModes, attackCount, isSmoke, result.GetValue(output)!.FullName, ct).ConfigureAwait(false);
                }
                var modes = (result.GetValue(mode) ?? "both") switch
                {
                    "vanilla" => new[] { TrainingMode.Vanilla },
                    "temporal" => [TrainingMode.Temporal],
                    "both" => [TrainingMode.Vanilla, TrainingMode.Temporal],
                    var other => throw new StudyException(StudyExitCode.Usage, $"--mode '{other}' is not vanilla, temporal or both"),
                };
                var killCount = result.GetValue(kills) ?? (isSmoke ? 2 : 20);
                var hostileCount = result.GetValue(hostile) ?? (isSmoke ? 40 : 1000);
                var (min, max) = OutageRange(result.GetValue(outage) ?? (isSmoke ? "2,4" : "5,60"));
                if (killCount is < 0 or > 200) throw new StudyException(StudyExitCode.Usage, $"--kills {killCount} is out of range (0 to 200)");
                if (hostileCount is < 0 or > 100_000) throw new StudyException(StudyExitCode.Usage, $"--hostile {hostileCount} is out of range (0 to 100000)");
                var chosenSeed = result.GetValue(seed) ?? Random.Shared.NextInt64(1, 1_000_000_000);
                var settings = new ChaosSettings(killCount, hostileCount, min, max, chosenSeed);
                var depth = result.GetValue(pipelineDepth);
                if (depth is < 1 or > Core.Runs.RunManifest.MaxPipelineDepth)
                {
                    throw new StudyException(StudyExitCode.Usage, $"--pipeline-depth {depth} is out of range (1 to {Core.Runs.RunManifest.MaxPipelineDepth})");
                }
                return await RunAsync(settings, modes, isSmoke, result.GetValue(output)!.FullName, depth, ct).ConfigureAwait(false);
            }
            catch (StudyException e)
            {
                await Console.Error.WriteLineAsync($"splitfn-local: {e.Message} (exit code {(int)e.Code})").ConfigureAwait(false);
                return (int)e.Code;
            }
            catch (FileNotFoundException e)
            {
                await Console.Error.WriteLineAsync($"splitfn-local: {e.Message} (exit code {(int)StudyExitCode.Setup})").ConfigureAwait(false);
                return (int)StudyExitCode.Setup;
            }
            catch (OperationCanceledException)
            {
                await Console.Error.WriteLineAsync("chaos: stopped (Ctrl-C); Azurite, the function and every agent it started have been "
                    + "stopped.").ConfigureAwait(false);
                return (int)StudyExitCode.Cancelled;
            }
        });
        return command;
    }

    private static (int Min, int Max) OutageRange(string text)
    {
        var parts = text.Split(',');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var min)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var max)
            || min < 1 || max < min || max > 600)
        {
            throw new StudyException(StudyExitCode.Usage, $"--outage-seconds '{text}' is not min,max whole seconds with 1 <= min <= max <= 600 (e.g. 5,60)");
        }
        return (min, max);
    }

    private static async Task<int> RunAsync(ChaosSettings chaos, TrainingMode[] modes, bool smoke, string folder, int? pipelineDepth, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Say(string line) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}");
        Say($"chaos: seed {chaos.Seed} (rerun with --seed {chaos.Seed}); per mode {chaos.Kills} kills, {chaos.Outages} outages of "
            + $"{chaos.OutageMinSeconds}-{chaos.OutageMaxSeconds} s, {chaos.Rounds} duplicate and {chaos.Rounds} reorder rounds, {chaos.Hostile} hostile "
            + $"messages{(pipelineDepth is { } k ? $"; vanilla pipelined, up to {k} batches of each hospital in flight" : "")}");
        foreach (var sub in new[] { "vanilla", "temporal", "temporal-reference", "data" })
        {
            if (Directory.Exists(Path.Combine(folder, sub))) Directory.Delete(Path.Combine(folder, sub), recursive: true);
        }
        Directory.CreateDirectory(folder);
        // Built-in synthetic images: small enough for 2 cores, and vanilla's batch records stay far below the server's 2,000 kept.
        var model = ModelCatalog.Get("pneumonia-cnn");
        var images = SyntheticImages.Generate(smoke ? 360 : 3000, (int)model.InputShape[1], (int)model.InputShape[2], seed: 5);
        var data = Path.Combine(folder, "data", "synthetic.npz");
        Directory.CreateDirectory(Path.GetDirectoryName(data)!);
        ImageArchive.Save(data, [new("train", images)]);
        // One consortium secret for the faulted and the reference temporal run: the same fixed privacy layer, the same features.
        var secretPath = Path.Combine(folder, "data", "consortium.secret");
        ConsortiumSecret.Create().Save(secretPath);
        var deadline = smoke ? TimeSpan.FromMinutes(4) : TimeSpan.FromMinutes(40);

        ChaosRunSettings Settings(TrainingMode mode) =>
            new(mode, model, data, mode == TrainingMode.Temporal ? (smoke ? 2 : 10) : (smoke ? 1 : 3), Seed: 7, secretPath, Hospitals, deadline)
            {
                PipelineDepth = pipelineDepth,
            };
        // The temporal reference run (no faults, its own Azurite) runs beside the first faulted run: it shares nothing with it.
        var referenceRun = modes.Contains(TrainingMode.Temporal)
            ? ChaosRun.RunAsync(Settings(TrainingMode.Temporal), null, 0, Path.Combine(folder, "temporal-reference", "system"), Say, ct)
            : null;
        var figures = new List<ChaosModeFigures>();
        var runs = 0;
        var completed = 0;
        foreach (var mode in modes)
        {
            ChaosRunResult? reference = null;
            if (mode == TrainingMode.Temporal)
            {
                reference = await referenceRun!.ConfigureAwait(false);
                runs++;
                if (reference.Completed) completed++;
            }
            var run = await ChaosRun.RunAsync(Settings(mode), chaos, reference?.EpochSeconds ?? 0,
                Path.Combine(folder, mode.ToString().ToLowerInvariant(), "system"), Say, ct).ConfigureAwait(false);
            runs++;
            if (run.Completed) completed++;
            figures.Add(ChaosReport.Figures(run, reference, model));
        }
        var report = new ChaosFigures(chaos.Seed, smoke, chaos.Kills, chaos.Hostile, $"{chaos.OutageMinSeconds}-{chaos.OutageMaxSeconds}", completed, runs,
            figures);
        ChaosReport.Write(folder, report);
        Say($"chaos: seed {chaos.Seed}; results in {Path.Combine(folder, "results.json")} and results.md");
        return report.InvariantsHeld ? 0 : (int)StudyExitCode.InvariantBroken;
    }
}
