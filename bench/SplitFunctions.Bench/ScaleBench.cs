using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// scale: one vanilla run trained by 1, 3 and 10 hospitals at once against the function as its own process (server steps/s,
/// per-hospital step p50/p99, busy fraction, bytes per sample, the function's resident memory); then two runs at once on
/// two function instances sharing the `features` queue: which instance held each run, and whether every step of both runs
/// was applied exactly once.
/// </summary>
public static class ScaleBench
{
    public const string Key = "scale";

    private static readonly string[] PairRuns = ["scale-pair-a", "scale-pair-b"];

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        // --smoke: the small tabular model, so the test that runs it spends its time on the processes, not on compute.
        var model = ModelCatalog.Get(options.Get("model", options.Smoke ? "ldl-mlp" : "covid-ct-cnn"));
        var counts = options.Get("hospitals", options.Smoke ? "1,2" : "1,3,10").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var steps = Math.Max(2, options.GetInt("steps", 8, 2)); // the first step of each hospital is left out of the figures
        var pairHospitals = options.GetInt("pair-hospitals", 2, 1);
        var latency = HospitalLatency.Parse(options);
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;
        var batch = options.Smoke && model.BatchSize > 256 ? 256 : model.BatchSize;
        // The wire type of a run created with the defaults (`run create` without --feature-type).
        var wire = WireTypes.Parse(options.Get("wire", WireTypes.Name(RunRequest.DefaultFeatureType)));
        var load = Load();

        await using var rig = await SplitRig.StartAsync(latency.FunctionShape).ConfigureAwait(false);
        var result = new JsonObject
        {
            ["model"] = model.Name,
            ["batch"] = batch,
            ["wire"] = WireTypes.Name(wire),
            ["threads"] = threads,
            ["steps_per_hospital"] = steps,
            ["reply_poll"] = new JsonArray([.. latency.Polls.Select(p => JsonValue.Create(p.Name))]),
            ["hospital_rtt_ms"] = new JsonArray([.. latency.RoundTripsMs.Select(r => JsonValue.Create(r))]),
            ["function_rtt_ms"] = latency.FunctionRoundTripMs,
            ["load_before"] = load,
            ["what"] = "hospital loops (the agent's ClientLayer, encode + seal, upload, enqueue, reply, open, backward) in the benchmark process, the "
                + "function " +
                       "as its own `drain` process (default settings); the hospitals and the function share this machine's cores, so per-hospital figures " +
                       "fall with the hospital count on a small machine; window: every hospital past its first step, none finished",
        };
        // The ceiling beside each figure: centralised samples/s of the same network and batch, in this process, measured
        // before each round trip's hospital counts (the function process then only polls its queue).
        using var centralised = new CentralisedCeiling(model, BenchHospital.SyntheticData(
            RunManifest.ForModel("scale-ceiling", model, TrainingMode.Vanilla, ["c"], seed: 7) with { BatchSize = batch }, batch * 4, salt: 9), batch, 7);
        centralised.SamplesPerSecond(options.Smoke ? 1 : 2);
        var perRtt = new JsonObject();
        JsonObject? first = null;
        foreach (var rtt in latency.RoundTripsMs)
        {
            latency.Apply(rig, rtt);
            var perPoll = new JsonObject();
            foreach (var poll in latency.Polls)
            {
                var ceiling = centralised.SamplesPerSecond(options.Smoke ? 1 : Math.Max(4, steps));
                var perCount = new JsonObject();
                foreach (var count in counts)
                {
                    var figures = await HospitalsAsync(rig, model, wire, batch, count, steps, poll, threads, $"{rtt}ms-{poll.Name}").ConfigureAwait(false);
                    figures["centralized_samples_per_s"] = ceiling;
                    figures["vs_centralized"] = figures["server_samples_per_s"]!.GetValue<double>() / ceiling;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {count,2} hospitals at a {rtt} ms round trip ({poll.Name} polling): "
                            + $"{figures["vs_centralized"]!.GetValue<double>():F3} x centralised "
                            + $"{ceiling:F1} samples/s; storage round trips per server step: hospitals "
                            + $"{figures["hospital_round_trips_per_step"]!.GetValue<double>():F1}, function "
                            + $"{figures["function_round_trips_per_step"]!.GetValue<double>():F1}"));
                    perCount[$"{count}h"] = figures;
                }
                perPoll[poll.Name] = perCount;
                first ??= perCount;
            }
            perRtt[HospitalLatency.Key(rtt)] = perPoll;
        }
        result["hospitals"] = first!.DeepClone();
        result["at_hospital_rtt"] = perRtt;
        // Exactly once across two instances, at the last (longest) hospital round trip given.
        result["two_runs_two_instances"] = await TwoRunsAsync(rig, model, wire, batch, pairHospitals, steps, latency.Polls[0], threads).ConfigureAwait(false);
        result["two_runs_hospital_rtt_ms"] = latency.RoundTripsMs[^1];
        result["load_after"] = Load();
        BenchResults.Merge(Key, result, options.ResultsPath);
        return 0;
    }

    private static async Task<JsonObject> HospitalsAsync(SplitRig rig, ModelDefinition model, ElementType wire, int batch, int count, int steps,
        ReplyPoll replyPoll, int threads, string tag)
    {
        // A run (and function process) per hospital count, round trip and polling: each measurement starts from a fresh run.
        var manifest = RunManifest.ForModel($"scale-{count}h-{Sanitise(tag)}", model, TrainingMode.Vanilla,
            [.. Enumerable.Range(1, count).Select(i => $"scale{count}-h{i}")],
            seed: 7) with
        { BatchSize = batch, FeatureType = wire };
        await rig.ProvisionAsync(manifest).ConfigureAwait(false);
        var loops = manifest.Hospitals.Select((h, i)
            => new BenchHospital(rig, manifest, h, BenchHospital.SyntheticData(manifest, batch * 4, salt: i + 1), replyPoll)).ToList();
        await using var function = DrainProcess.Start(rig, $"scale-{count}h", threads);
        try
        {
            // Round trips are counted once every hospital has its first reply: the function process's start is not a step's cost.
            var firstSteps = await TrainAsync(loops, 1).ConfigureAwait(false);
            var before = RoundTrips.Count(rig);
            var rest = await TrainAsync(loops, steps - 1).ConfigureAwait(false);
            var trips = before.PerStep(RoundTrips.Count(rig), rest.Sum(r => r.Count));
            var records = firstSteps.Zip(rest, (f, r) => f.Concat(r).ToList()).ToArray();
            var memory = function.Memory();
            var applied = function.AppliedSteps();
            var start = records.Max(r => r[0].End);
            var end = records.Min(r => r[^1].End);
            var window = records.SelectMany((r, i) => r.Select(s => (Hospital: loops[i].Hospital, Step: s)))
                .Where(x => x.Step.End > start && x.Step.End <= end).ToList();
            var wall = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
            var compute = window.Sum(x => applied.GetValueOrDefault((x.Hospital, x.Step.Sequence))) / 1000;
            var samples = window.Sum(x => (double)x.Step.Samples);
            var totals = window.Select(x => x.Step.TotalMs).ToList();
            var figures = new JsonObject
            {
                ["hospitals"] = count,
                ["steps_in_window"] = window.Count,
                ["window_s"] = wall,
                ["server_steps_per_s"] = wall > 0 ? window.Count / wall : double.NaN,
                ["server_samples_per_s"] = wall > 0 ? samples / wall : double.NaN,
                ["hospital_step_p50_ms"] = BenchStats.Percentile(totals, 50),
                ["hospital_step_p99_ms"] = BenchStats.Percentile(totals, 99),
                ["busy_fraction"] = wall > 0 ? compute / wall : double.NaN,
                ["server_compute_p50_ms"] = BenchStats.Median(window.Select(x => applied.GetValueOrDefault((x.Hospital, x.Step.Sequence)))),
                // The limit: a server that did nothing but compute (busy 1.0) would manage 1000 / compute steps per second.
                ["server_steps_per_s_limit"] = 1000 / BenchStats.Median(window.Select(x => applied.GetValueOrDefault((x.Hospital, x.Step.Sequence)))),
                ["bytes_per_sample"] = samples > 0 ? window.Sum(x => (double)(x.Step.SentBytes + x.Step.ReceivedBytes)) / samples : double.NaN,
                ["function_rss_mib"] = memory.Rss / (1 << 20),
                ["function_peak_rss_mib"] = memory.Peak / (1 << 20),
                ["steps_applied_by_function"] = applied.Count,
                ["hospital_round_trips_per_step"] = trips.Hospital,
                ["function_round_trips_per_step"] = trips.Function,
                ["hospital_reply_looks_per_step"] = rest.SelectMany(r => r).Average(x => x.Looks),
            };
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {count,2} hospitals: {window.Count / wall:F2} server steps/s ({samples / wall:F1} samples/s), hospital step p50 "
                    + $"{BenchStats.Percentile(totals, 50):F0} ms p99 {BenchStats.Percentile(totals, 99):F0} ms, " +
                $"limit {figures["server_steps_per_s_limit"]!.GetValue<double>():F2} steps/s (compute only), busy {compute / wall:F3}, "
                    + $"{figures["bytes_per_sample"]!.GetValue<double>():F0} B/sample, function RSS {memory.Rss / (1 << 20):F0} MiB (peak "
                    + $"{memory.Peak / (1 << 20):F0}); " +
                $"{BenchStats.Machine(threads)}, hospitals and function share the cores; load {Load()}"));
            return figures;
        }
        finally
        {
            foreach (var loop in loops) loop.Dispose();
        }
    }

    // Two runs, each with its own hospitals, and two function instances pulling the one `features` queue.
    private static async Task<JsonObject> TwoRunsAsync(SplitRig rig, ModelDefinition model, ElementType wire, int batch, int hospitals, int steps,
        ReplyPoll replyPoll, int threads)
    {
        var manifests = PairRuns.Select(run =>
            RunManifest.ForModel(run, model, TrainingMode.Vanilla, [.. Enumerable.Range(1, hospitals).Select(i => $"{run}-h{i}")],
                seed: 7) with
            { BatchSize = batch, FeatureType = wire }).ToList();
        foreach (var m in manifests) await rig.ProvisionAsync(m).ConfigureAwait(false);
        var loops = manifests.SelectMany(m
            => m.Hospitals.Select((h, i) => new BenchHospital(rig, m, h, BenchHospital.SyntheticData(m, batch * 4, salt: i + 1), replyPoll))).ToList();
        var instances = new[] { DrainProcess.Start(rig, "scale-instance-1", threads), DrainProcess.Start(rig, "scale-instance-2", threads) };
        List<HospitalStep>[] records;
        var clock = Stopwatch.StartNew();
        try
        {
            records = await TrainAsync(loops, steps).ConfigureAwait(false);
        }
        finally
        {
            foreach (var loop in loops) loop.Dispose();
            // SIGTERM: each instance checkpoints what it holds and releases the leases, so the runs can be read back below.
            foreach (var instance in instances) await instance.DisposeAsync().ConfigureAwait(false);
        }
        var wall = clock.Elapsed.TotalSeconds;

        var runs = new JsonObject();
        var allExactlyOnce = true;
        var eachHeldByOne = true;
        foreach (var manifest in manifests)
        {
            var holders = instances.Where(i => i.OpenedRuns().Contains(manifest.RunId)).Select(i => i.InstanceId).ToList();
            var state = await ReadStateAsync(rig, manifest.RunId).ConfigureAwait(false);
            // Exactly once: every (hospital, sequence) the hospitals sent is in the run's record once, and nothing else is.
            var expected = manifest.Hospitals.SelectMany(h => Enumerable.Range(0, steps).Select(s => (h, (long)s))).ToHashSet();
            var recorded = state.RecentBatches.Select(b => (b.Hospital, b.Sequence)).ToList();
            var exactlyOnce = state.BatchesApplied == expected.Count && recorded.Count == expected.Count && recorded.ToHashSet().SetEquals(expected)
                              && manifest.Hospitals.All(h => state.Watermarks.GetValueOrDefault(h, -1) == steps - 1);
            allExactlyOnce &= exactlyOnce;
            eachHeldByOne &= holders.Count == 1;
            runs[manifest.RunId] = new JsonObject
            {
                ["held_by"] = new JsonArray([.. holders.Select(h => JsonValue.Create(h))]),
                ["steps_sent"] = expected.Count,
                ["batches_applied"] = state.BatchesApplied,
                ["exactly_once"] = exactlyOnce,
            };
            Console.WriteLine($"  2 runs on 2 instances: {manifest.RunId} held by {string.Join(", ", holders)}; {state.BatchesApplied} of {expected.Count} "
                + $"steps applied, exactly once: {exactlyOnce}");
        }
        var totals = records.SelectMany(r => r.Skip(1)).Select(s => s.TotalMs).ToList();
        var deferred = instances.Sum(i => i.Deferred());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  2 runs on 2 instances: {records.Sum(r => r.Count) / wall:F2} server steps/s overall, hospital step p50 {BenchStats.Percentile(totals, 50):F0} "
                + $"ms p99 {BenchStats.Percentile(totals, 99):F0} ms, " +
            $"{deferred} messages deferred (taken by the instance not holding their run); {BenchStats.Machine(threads)}"));
        return new JsonObject
        {
            ["hospitals_per_run"] = hospitals,
            ["steps_per_hospital"] = steps,
            ["runs"] = runs,
            ["each_run_held_by_one_instance"] = eachHeldByOne,
            ["every_step_applied_exactly_once"] = allExactlyOnce,
            ["instances_holding_a_run"] = instances.Count(i => i.OpenedRuns().Count > 0),
            ["server_steps_per_s"] = records.Sum(r => r.Count) / wall,
            ["hospital_step_p50_ms"] = BenchStats.Percentile(totals, 50),
            ["hospital_step_p99_ms"] = BenchStats.Percentile(totals, 99),
            ["messages_deferred"] = deferred,
        };
    }

    // Each hospital on its own thread, as hospitals would be separate machines (here they share the cores).
    private static Task<List<HospitalStep>[]> TrainAsync(List<BenchHospital> loops, int steps) =>
        Task.WhenAll(loops.Select(loop => Task.Run(async () =>
        {
            var done = new List<HospitalStep>();
            for (var i = 0; i < steps; i++) done.Add(await loop.StepAsync().ConfigureAwait(false));
            return done;
        })));

    // After both instances stopped (and released their leases): the run's durable state, the checkpoint plus the journal replayed.
    private static async Task<RunState> ReadStateAsync(SplitRig rig, string run)
    {
        var store = new RunStore(rig.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        await using var reader = new LeasedRuns(store, rig.Frames, TorchSharp.torch.CPU, "scale-reader", NullLogger<LeasedRuns>.Instance);
        var session = await reader.OpenAsync(run, CancellationToken.None).ConfigureAwait(false)
                      ?? throw new InvalidOperationException($"run '{run}' is still leased after both function instances stopped");
        return session.State;
    }

    // Run ids and hospital ids take lower-case letters, digits and hyphens.
    private static string Sanitise(string tag) =>
        string.Join('-', new string([.. tag.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')])
            .Split('-', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The load average (1, 5, 15 min) beside the figures: the machine is shared.</summary>
    public static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
