using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Bench;

/// <summary>
/// server_busy_fraction_3h: three hospitals train one vanilla run concurrently (three hospital loops in this process)
/// against the function's drain loop; the fraction of wall time the server spends in TrainStep over a window in which
/// all three are past their first step and none has finished. Rounds alternate the drain loop's prefetch off and on.
/// </summary>
public static class ServerBusyBench
{
    public const string Key = "server_busy_fraction_3h";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var model = ModelCatalog.Get(options.Get("model", "covid-ct-cnn"));
        var hospitals = options.GetInt("hospitals", 3);
        var steps = options.GetInt("steps", 25, 3);
        var rounds = options.GetInt("rounds", 6, 3);
        var replyPoll = TimeSpan.FromMilliseconds(options.GetDouble("reply-poll-ms", 2));
        var serverPoll = TimeSpan.FromMilliseconds(options.GetDouble("server-poll-ms", 5));
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;
        var batch = options.Smoke && model.BatchSize > 256 ? 256 : model.BatchSize;
        // The wire type of a run created with the defaults (`run create` without --feature-type).
        var wire = WireTypes.Parse(options.Get("wire", WireTypes.Name(RunRequest.DefaultFeatureType)));

        await using var rig = await SplitRig.StartAsync().ConfigureAwait(false);
        var manifest = RunManifest.ForModel("busy-3h", model, TrainingMode.Vanilla, [.. Enumerable.Range(1, hospitals).Select(i => $"busy-h{i}")],
            seed: 7) with
        { BatchSize = batch, FeatureType = wire };
        await rig.ProvisionAsync(manifest).ConfigureAwait(false);
        var loops = manifest.Hospitals.Select((h, i)
            => new BenchHospital(rig, manifest, h, BenchHospital.SyntheticData(manifest, batch * 4, salt: i + 1), replyPoll)).ToList();
        try
        {
            // Three drain-loop configurations in turn: one message at a time (before prefetch), prefetch only (the previous
            // release), prefetch with commits overlapping the next compute (the default).
            var modes = new (string Name, bool Prefetch, bool Overlap)[] { ("one at a time", false, false), ("prefetch", true, false),
                ("prefetch+overlap", true, true) };
            var windows = modes.Select(_ => new List<Window>()).ToArray();
            for (var round = 0; round < rounds; round++)
            {
                var m = (round + round / modes.Length) % modes.Length; // rotate which configuration goes first each cycle
                var window = await RoundAsync(rig, loops, steps, modes[m].Prefetch, modes[m].Overlap, serverPoll).ConfigureAwait(false);
                windows[m].Add(window);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round + 1}/{rounds} {modes[m].Name,-16}: busy {window.Busy:F3} ({window.ComputeSeconds:F2} s TrainStep in "
                        + $"{window.WallSeconds:F2} s, {window.Steps} steps, {window.SamplesPerSecond:F1} samples/s, " +
                    $"server not computing {window.IdleMsPerStep:F0} ms per step: {window.InStepMsPerStep:F0} inside steps ({window.ReadMsPerStep:F0} reading "
                        + $"the frame), {window.BetweenStepsMsPerStep:F0} between them; {BenchStats.Machine(threads)}; load {ScaleBench.Load()})"));
            }

            double Median(int m, Func<Window, double> f) => windows[m].Count == 0 ? double.NaN : BenchStats.Median(windows[m].Select(f));
            var before = Median(0, w => w.Busy);
            var prefetchOnly = Median(1, w => w.Busy);
            var after = Median(2, w => w.Busy);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Key} = {after:F3} with prefetch and overlapped commits, {prefetchOnly:F3} with prefetch only, {before:F3} one message at a time "
                    + $"({hospitals} hospitals, {model.Name} batch {batch}, {WireTypes.Name(wire)} frames; " +
                $"{BenchStats.Machine(threads)}; target >= 0.9; limit 1.0 = the server never waits: {1 - after:F3} short of it, "
                    + $"{Median(2, w => w.IdleMsPerStep):F0} ms per step not computing)"));
            BenchResults.Merge(Key, new JsonObject
            {
                ["fraction"] = after,
                ["fraction_prefetch_only"] = prefetchOnly,
                ["fraction_without_prefetch"] = before,
                ["target"] = ">= 0.9",
                ["limit"] = 1.0,
                ["server_not_computing_ms_per_step"] = Median(2, w => w.IdleMsPerStep),
                ["server_not_computing_ms_per_step_prefetch_only"] = Median(1, w => w.IdleMsPerStep),
                ["server_not_computing_inside_steps_ms"] = Median(2, w => w.InStepMsPerStep),
                ["server_not_computing_between_steps_ms"] = Median(2, w => w.BetweenStepsMsPerStep),
                ["server_reading_frame_ms"] = Median(2, w => w.ReadMsPerStep),
                ["server_compute_ms_per_step"] = Median(2, w => w.ComputeSeconds * 1000 / w.Steps),
                ["model"] = model.Name,
                ["batch"] = batch,
                ["wire"] = WireTypes.Name(wire),
                ["hospitals"] = hospitals,
                ["threads"] = threads,
                ["load_after"] = ScaleBench.Load(),
                ["steps_per_hospital_per_round"] = steps,
                ["server_samples_per_s"] = Median(2, w => w.SamplesPerSecond),
                ["server_samples_per_s_prefetch_only"] = Median(1, w => w.SamplesPerSecond),
                ["server_samples_per_s_without_prefetch"] = Median(0, w => w.SamplesPerSecond),
                ["rounds_with_prefetch_and_overlap"] = new JsonArray([.. windows[2].Select(w => JsonValue.Create(w.Busy))]),
                ["rounds_with_prefetch"] = new JsonArray([.. windows[1].Select(w => JsonValue.Create(w.Busy))]),
                ["rounds_without_prefetch"] = new JsonArray([.. windows[0].Select(w => JsonValue.Create(w.Busy))]),
                ["what"] = "sum of the server's step compute (ServerModel.TrainStep) over wall time, for steps ending in the window where all hospitals are "
                    + "past " +
                           "their first step of the round and none has finished; hospitals and server share this machine's cores",
            }, options.ResultsPath);
            return 0;
        }
        finally
        {
            foreach (var loop in loops) loop.Dispose();
        }
    }

    private sealed record Window(double Busy, double ComputeSeconds, double WallSeconds, int Steps, double SamplesPerSecond, double ApplySeconds,
        double ReadSeconds)
    {
        /// <summary>Wall time per step in which the server did not compute (storage, crypto, waiting for a message).</summary>
        public double IdleMsPerStep => Steps == 0 ? double.NaN : (WallSeconds - ComputeSeconds) * 1000 / Steps;

        /// <summary>
        /// Of that, inside a step: from its message's start to its step applied, less the compute (reading the frame, validating, a due checkpoint).
        /// </summary>
        public double InStepMsPerStep => Steps == 0 ? double.NaN : (ApplySeconds - ComputeSeconds) * 1000 / Steps;

        /// <summary>Of that, between steps: no step being applied (the loop's hand-over, waiting for a message to arrive).</summary>
        public double BetweenStepsMsPerStep => Steps == 0 ? double.NaN : (WallSeconds - ApplySeconds) * 1000 / Steps;

        /// <summary>Of the time inside steps: reading the frame, or waiting for what is left of its read-ahead.</summary>
        public double ReadMsPerStep => Steps == 0 ? double.NaN : ReadSeconds * 1000 / Steps;
    }

    private static async Task<Window> RoundAsync(SplitRig rig, List<BenchHospital> loops, int steps, bool prefetch, bool overlap, TimeSpan serverPoll)
    {
        var drain = await rig.StartDrainAsync(prefetch, serverPoll, overlap).ConfigureAwait(false);
        List<HospitalStep>[] records;
        try
        {
            // Each hospital on its own thread, as three hospitals would be three machines (here they share the cores).
            records = await Task.WhenAll(loops.Select(loop => Task.Run(async () =>
            {
                var done = new List<HospitalStep>();
                for (var i = 0; i < steps; i++) done.Add(await loop.StepAsync().ConfigureAwait(false));
                return done;
            }))).ConfigureAwait(false);
        }
        finally
        {
            await drain.StopAsync(CancellationToken.None).ConfigureAwait(false);
            drain.Dispose();
        }

        var start = records.Max(r => r[0].End);
        var end = records.Min(r => r[^1].End);
        var inWindow = records.SelectMany((r, i) => r.Select(s => rig.Processor.Find(loops[i].Hospital, s.Sequence)))
            .Where(s => s is not null && s.End > start && s.End <= end).Select(s => s!).ToList();
        var wall = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
        var compute = inWindow.Sum(s => s.Timings.ComputeMs) / 1000;
        var apply = inWindow.Sum(s => s.ApplyMs) / 1000;
        var read = inWindow.Sum(s => s.Timings.DownloadMs + s.Timings.DecryptMs) / 1000;
        var samples = inWindow.Count * loops.Count > 0 ? inWindow.Count * (double)records[0][0].Samples : 0;
        return new Window(wall > 0 ? compute / wall : double.NaN, compute, wall, inWindow.Count, wall > 0 ? samples / wall : double.NaN, apply, read);
    }
}
