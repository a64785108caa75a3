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
        var latency = HospitalLatency.Parse(options);
        var serverPoll = TimeSpan.FromMilliseconds(options.GetDouble("server-poll-ms", 5));
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;
        var batch = options.Smoke && model.BatchSize > 256 ? 256 : model.BatchSize;
        // The wire type of a run created with the defaults (`run create` without --feature-type).
        var wire = WireTypes.Parse(options.Get("wire", WireTypes.Name(RunRequest.DefaultFeatureType)));
        // Three drain-loop configurations: one message at a time (before prefetch), prefetch only (the previous release),
        // prefetch with commits overlapping the next compute (the default); --configs picks some.
        var allModes = new (string Name, bool Prefetch, bool Overlap)[] { ("one at a time", false, false), ("prefetch", true, false),
            ("prefetch+overlap", true, true) };
        var chosen = options.Get("configs", "serial,prefetch,overlap").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(c => c switch
            {
                "serial" => 0,
                "prefetch" => 1,
                "overlap" => 2,
                _ => throw new ArgumentException($"--configs takes serial, prefetch and overlap, got '{c}'"),
            }).Distinct().Order().ToArray();
        // Each round runs every configuration at every round trip and polling once.
        var rounds = options.GetInt("rounds", 2, 1);

        await using var rig = await SplitRig.StartAsync(latency.FunctionShape).ConfigureAwait(false);
        var manifest = RunManifest.ForModel("busy-3h", model, TrainingMode.Vanilla, [.. Enumerable.Range(1, hospitals).Select(i => $"busy-h{i}")],
            seed: 7) with
        { BatchSize = batch, FeatureType = wire };
        await rig.ProvisionAsync(manifest).ConfigureAwait(false);
        var loops = manifest.Hospitals.Select((h, i)
            => new BenchHospital(rig, manifest, h, BenchHospital.SyntheticData(manifest, batch * 4, salt: i + 1), latency.Polls[0])).ToList();
        using var centralised = new CentralisedCeiling(model, BenchHospital.SyntheticData(manifest, batch * 4, salt: 9), batch, manifest.Seed);
        centralised.SamplesPerSecond(options.Smoke ? 1 : 2);
        var ceilingSteps = options.Smoke ? 1 : Math.Max(4, steps / 2);
        try
        {
            // Every round measures the centralised ceiling once and then each (round trip, polling, configuration) once, in an
            // order that rotates round by round, so a change of the shared machine's load meets all of them.
            var combos = (from rtt in latency.RoundTripsMs from poll in latency.Polls from m in chosen select (Rtt: rtt, Poll: poll, Mode: m)).ToList();
            var windows = combos.Select(_ => new List<Window>()).ToArray();
            var vsCentral = combos.Select(_ => new List<double>()).ToArray();
            var vsFirst = combos.Select(_ => new List<double>()).ToArray();
            var ceiling = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                ceiling.Add(centralised.SamplesPerSecond(ceilingSteps));
                var samples = new double[combos.Count];
                foreach (var c in Enumerable.Range(0, combos.Count).Select(i => (i + round) % combos.Count))
                {
                    var (rtt, poll, m) = combos[c];
                    latency.Apply(rig, rtt);
                    foreach (var loop in loops) loop.Polling = poll;
                    var window = await RoundAsync(rig, loops, steps, allModes[m].Prefetch, allModes[m].Overlap, serverPoll).ConfigureAwait(false);
                    windows[c].Add(window);
                    samples[c] = window.SamplesPerSecond;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  round {round + 1}/{rounds} {rtt} ms {poll.Name} {allModes[m].Name,-16}: busy {window.Busy:F3} ({window.ComputeSeconds:F2} s "
                            + $"TrainStep in {window.WallSeconds:F2} s, {window.Steps} steps, {window.SamplesPerSecond:F1} samples/s, centralised "
                            + $"{ceiling[^1]:F1}; server not computing {window.IdleMsPerStep:F0} ms per step: {window.InStepMsPerStep:F0} inside steps "
                            + $"({window.ReadMsPerStep:F0} reading the frame), {window.BetweenStepsMsPerStep:F0} between them; storage round trips per step: "
                            + $"hospitals {window.Trips.Hospital:F1}, function {window.Trips.Function:F1}; {BenchStats.Machine(threads)}; "
                            + $"load {ScaleBench.Load()})"));
                }
                for (var c = 0; c < combos.Count; c++)
                {
                    vsCentral[c].Add(samples[c] / ceiling[^1]);
                    var first = combos.FindIndex(x => x.Poll == combos[c].Poll && x.Mode == combos[c].Mode);
                    vsFirst[c].Add(samples[c] / samples[first]);
                }
            }

            var perRtt = new JsonObject();
            JsonObject? headline = null;
            foreach (var rtt in latency.RoundTripsMs)
            {
                var perPoll = new JsonObject();
                foreach (var poll in latency.Polls)
                {
                    var mine = Enumerable.Range(0, combos.Count).Where(c => combos[c].Rtt == rtt && combos[c].Poll == poll).ToList();
                    var byMode = allModes.Select((_, m) => mine.Where(c => combos[c].Mode == m).SelectMany(c => windows[c]).ToList()).ToArray();
                    // The headline configuration's per-round ratios: the default (overlap) when it ran, else the last that did.
                    var h = mine.Last();
                    var figures = Figures(byMode, BenchStats.Median(ceiling));
                    figures["vs_centralized"] = BenchStats.Median(vsCentral[h]);
                    figures["vs_first_rtt"] = BenchStats.Median(vsFirst[h]);
                    figures["hospital_rtt_ms"] = rtt;
                    figures["reply_poll"] = poll.Name;
                    perPoll[poll.Name] = figures;
                    headline ??= figures;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  at a {rtt} ms hospital round trip, {poll.Name} polling: busy {Number(figures["fraction"])} with prefetch and overlapped commits, "
                            + $"{Number(figures["fraction_prefetch_only"])} prefetch only, {Number(figures["fraction_without_prefetch"])} one at a time; "
                            + $"{Number(figures["server_samples_per_s"])} samples/s = {Number(figures["vs_centralized"])} x centralised "
                            + $"{Number(figures["centralized_samples_per_s"])} samples/s, {Number(figures["vs_first_rtt"])} x the same at "
                            + $"{latency.RoundTripsMs[0]} ms; storage round trips per server step: hospital "
                            + $"{Number(figures["hospital_round_trips_per_step"])}, function {Number(figures["function_round_trips_per_step"])}; reply queue "
                            + $"looks per step {Number(figures["hospital_reply_looks_per_step"])}"));
                }
                perRtt[HospitalLatency.Key(rtt)] = perPoll;
            }

            var result = (JsonObject)headline!.DeepClone();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Key} = {Number(result["fraction"])} with prefetch and overlapped commits, {Number(result["fraction_prefetch_only"])} with prefetch only, "
                    + $"{Number(result["fraction_without_prefetch"])} one message at a time ({hospitals} hospitals, {model.Name} batch {batch}, "
                    + $"{WireTypes.Name(wire)} frames, hospital round trip {latency.RoundTripsMs[0]} ms; {BenchStats.Machine(threads)}; target >= 0.9; "
                    + $"limit 1.0 = the server never waits)"));
            result["target"] = ">= 0.9";
            result["limit"] = 1.0;
            result["model"] = model.Name;
            result["batch"] = batch;
            result["wire"] = WireTypes.Name(wire);
            result["hospitals"] = hospitals;
            result["threads"] = threads;
            result["load_after"] = ScaleBench.Load();
            result["steps_per_hospital_per_round"] = steps;
            result["function_rtt_ms"] = latency.FunctionRoundTripMs;
            result["at_hospital_rtt"] = perRtt;
            result["what"] = "sum of the server's step compute (ServerModel.TrainStep) over wall time, for steps ending in the window where all hospitals are "
                + "past their first step of the round and none has finished; hospitals and server share this machine's cores; the hospitals reach storage "
                + "through a latency proxy at each hospital_rtt_ms, the function through one of function_rtt_ms; centralized_samples_per_s is the ceiling "
                + "(SplitModel.TrainStep in process), measured between the rounds";
            BenchResults.Merge(Key, result, options.ResultsPath);
            return 0;
        }
        finally
        {
            foreach (var loop in loops) loop.Dispose();
        }
    }

    private static string Number(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString("0.###", CultureInfo.InvariantCulture) : "-";

    // The medians of each configuration's rounds; index 2 (prefetch + overlapped commits) is the product's default and the headline.
    private static JsonObject Figures(List<Window>[] windows, double centralisedSamplesPerSecond)
    {
        // A configuration left out by --configs has no figures (null: JSON has no NaN).
        JsonNode? Median(int m, Func<Window, double> f) => windows[m].Count == 0 ? null : JsonValue.Create(BenchStats.Median(windows[m].Select(f)));
        JsonArray Rounds(int m) => new([.. windows[m].Select(w => JsonValue.Create(w.Busy))]);
        // The headline configuration is the default when it ran, else the last one that did.
        var h = windows[2].Count > 0 ? 2 : Array.FindLastIndex(windows, w => w.Count > 0);
        return new JsonObject
        {
            ["fraction"] = Median(h, w => w.Busy),
            ["fraction_prefetch_only"] = Median(1, w => w.Busy),
            ["fraction_without_prefetch"] = Median(0, w => w.Busy),
            ["server_not_computing_ms_per_step"] = Median(h, w => w.IdleMsPerStep),
            ["server_not_computing_ms_per_step_prefetch_only"] = Median(1, w => w.IdleMsPerStep),
            ["server_not_computing_inside_steps_ms"] = Median(h, w => w.InStepMsPerStep),
            ["server_not_computing_between_steps_ms"] = Median(h, w => w.BetweenStepsMsPerStep),
            ["server_reading_frame_ms"] = Median(h, w => w.ReadMsPerStep),
            ["server_compute_ms_per_step"] = Median(h, w => w.ComputeSeconds * 1000 / w.Steps),
            ["server_samples_per_s"] = Median(h, w => w.SamplesPerSecond),
            ["server_samples_per_s_prefetch_only"] = Median(1, w => w.SamplesPerSecond),
            ["server_samples_per_s_without_prefetch"] = Median(0, w => w.SamplesPerSecond),
            ["centralized_samples_per_s"] = centralisedSamplesPerSecond,
            ["hospital_round_trips_per_step"] = Median(h, w => w.Trips.Hospital),
            ["function_round_trips_per_step"] = Median(h, w => w.Trips.Function),
            ["hospital_reply_looks_per_step"] = Median(h, w => w.Looks),
            ["rounds_with_prefetch_and_overlap"] = Rounds(2),
            ["rounds_with_prefetch"] = Rounds(1),
            ["rounds_without_prefetch"] = Rounds(0),
        };
    }

    private sealed record Window(double Busy, double ComputeSeconds, double WallSeconds, int Steps, double SamplesPerSecond, double ApplySeconds,
        double ReadSeconds, RoundTrips Trips, double Looks)
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
        var before = RoundTrips.Count(rig);
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
        // Per server step: every step of the round, with the hospitals' reply polls and the drain loop's queue polls.
        var trips = before.PerStep(RoundTrips.Count(rig), records.Sum(r => r.Count));

        var start = records.Max(r => r[0].End);
        var end = records.Min(r => r[^1].End);
        var inWindow = records.SelectMany((r, i) => r.Select(s => rig.Processor.Find(loops[i].Hospital, s.Sequence)))
            .Where(s => s is not null && s.End > start && s.End <= end).Select(s => s!).ToList();
        var wall = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
        var compute = inWindow.Sum(s => s.Timings.ComputeMs) / 1000;
        var apply = inWindow.Sum(s => s.ApplyMs) / 1000;
        var read = inWindow.Sum(s => s.Timings.DownloadMs + s.Timings.DecryptMs) / 1000;
        var samples = inWindow.Count * loops.Count > 0 ? inWindow.Count * (double)records[0][0].Samples : 0;
        return new Window(wall > 0 ? compute / wall : double.NaN, compute, wall, inWindow.Count, wall > 0 ? samples / wall : double.NaN, apply, read,
            trips, records.SelectMany(r => r).Average(s => s.Looks));
    }
}
