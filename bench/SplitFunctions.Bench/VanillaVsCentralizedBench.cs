using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Bench;

/// <summary>
/// vanilla_vs_centralized: samples/s of vanilla split learning for one hospital through Azurite with encryption on (the
/// hospital loop in this process, the function's real drain loop over the same Azurite) over samples/s of centralised
/// training of the same network in process (SplitModel.TrainStep), same threads, rounds interleaved, median round ratio.
/// Also the per-step latency breakdown at p50 and p99.
/// </summary>
public static class VanillaVsCentralizedBench
{
    public const string Key = "vanilla_vs_centralized";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var models = options.Get("models", "covid-ct-cnn,ldl-mlp").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var wires = options.Get("wire", "fp32,fp16,bf16").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(WireTypes.Parse).ToArray();
        var steps = options.GetInt("steps", 12, 2);
        var rounds = options.GetInt("rounds", 5, 1);
        var warmup = options.GetInt("warmup", 4, 1);
        var latency = HospitalLatency.Parse(options);
        // Batches in flight per hospital (1: synchronous, as the agent trains by default; more: the agent's pipelined training).
        var depths = options.Get("pipeline-depth", "1").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => int.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out var k) && k is >= 1 and <= RunManifest.MaxPipelineDepth ? k
                : throw new ArgumentException($"--pipeline-depth '{d}' is not a whole number from 1 to {RunManifest.MaxPipelineDepth}"))
            .ToArray();
        var serverPoll = TimeSpan.FromMilliseconds(options.GetDouble("server-poll-ms", 5));
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        // Every model at this batch instead of its own (a small one: frames that fit inside the messages).
        int? batchOverride = options.Get("batch", "") is { Length: > 0 } ? options.GetInt("batch", 1, 1) : null;
        TorchRuntime.Threads = threads;

        // The function reaches Azurite through a link of --function-rtt-ms, the hospital through one of each --hospital-rtt-ms in turn.
        await using var rig = await SplitRig.StartAsync(latency.FunctionShape).ConfigureAwait(false);
        // The physical limits the figures are set against, measured here (on Azurite itself), before the drain loop runs beside them.
        var limits = await PhysicalLimits.MeasureAsync(rig.Azurite.Connection, options.Smoke ? 1 : 8, options.Smoke ? 1 : 5).ConfigureAwait(false);
        Console.WriteLine($"  limits of this machine (8 MiB buffers, same run): {limits}; load {ScaleBench.Load()}");
        var drain = await rig.StartDrainAsync(prefetch: true, serverPoll).ConfigureAwait(false);
        var result = new JsonObject
        {
            ["target"] = ">= 0.8",
            ["threads"] = threads,
            ["rounds"] = rounds,
            ["steps_per_round"] = steps,
            ["reply_poll"] = new JsonArray([.. latency.Polls.Select(p => JsonValue.Create(p.Name))]),
            ["hospital_rtt_ms"] = new JsonArray([.. latency.RoundTripsMs.Select(r => JsonValue.Create(r))]),
            ["pipeline_depth"] = new JsonArray([.. depths.Select(d => JsonValue.Create(d))]),
            ["function_rtt_ms"] = latency.FunctionRoundTripMs,
            ["hospital_mbit_s"] = latency.MbitPerSecond,
            ["server_max_poll_ms"] = serverPoll.TotalMilliseconds,
            ["limits"] = limits.ToJson(),
            ["load_before"] = ScaleBench.Load(),
            ["what"] = "one hospital, vanilla, Azurite (in memory, loopback) with AES-256-GCM frames, in-process drain loop; the hospital reaches " +
                       "storage through a latency proxy at each hospital_rtt_ms, the function through one of function_rtt_ms; " +
                       "centralised = SplitModel.TrainStep of the same network and batch in process; median of interleaved rounds",
        };
        try
        {
            foreach (var modelName in models)
            {
                var model = ModelCatalog.Get(modelName);
                var perModel = new JsonObject();
                foreach (var wire in wires)
                {
                    perModel[WireTypes.Name(wire)] = await MeasureAsync(rig, limits, model, wire, steps, rounds, warmup, latency, depths, threads,
                        options.Smoke, batchOverride).ConfigureAwait(false);
                }
                result[model.Name] = perModel;
            }
        }
        finally
        {
            await drain.StopAsync(CancellationToken.None).ConfigureAwait(false);
            drain.Dispose();
        }

        // The headline is the default configuration: covid-ct-cnn at batch 64 with the default wire type (when measured),
        // at the first hospital round trip and reply polling given, with fp32 frames (issue 20's baseline) beside it.
        var headlineModel = (models.Contains("covid-ct-cnn") ? result["covid-ct-cnn"] : result[models[0]])!;
        var headlineWire = wires.Contains(RunRequest.DefaultFeatureType) ? RunRequest.DefaultFeatureType : wires[0];
        var headline = headlineModel[WireTypes.Name(headlineWire)]!["ratio"]!.GetValue<double>();
        result["ratio"] = headline;
        result["ratio_wire"] = WireTypes.Name(headlineWire);
        if (wires.Contains(ElementType.Float32)) result["ratio_fp32"] = headlineModel["fp32"]!["ratio"]!.GetValue<double>();
        result["at_hospital_rtt"] = headlineModel[WireTypes.Name(headlineWire)]!["at_hospital_rtt"]!.DeepClone();
        Console.WriteLine($"{Key} = {headline:F3} ({models[0]}, {WireTypes.Name(headlineWire)} frames, the default; {BenchStats.Machine(threads)}; target >= "
            + $"0.8; load {ScaleBench.Load()})");
        BenchResults.Merge(Key, result, options.ResultsPath);
        return 0;
    }

    // What one hospital round trip and reply polling measured over the rounds.
    private sealed class Side(double rtt, ReplyPoll poll, int depth)
    {
        public double Rtt { get; } = rtt;

        public ReplyPoll Poll { get; } = poll;

        /// <summary>Batches in flight (1: synchronous).</summary>
        public int Depth { get; } = depth;

        /// <summary>The side's key in the results: the polling's name, with "-k" and the depth when pipelined.</summary>
        public string Name => Depth == 1 ? Poll.Name : string.Create(CultureInfo.InvariantCulture, $"{Poll.Name}-k{Depth}");

        public List<HospitalStep> Records { get; } = [];

        public List<RoundTrips> Trips { get; } = [];

        public List<double> Split { get; } = [];

        /// <summary>Per round: split over the round's centralised samples/s.</summary>
        public List<double> Ratios { get; } = [];

        /// <summary>Per round: split over the same polling at the first round trip given, in the same round.</summary>
        public List<double> VsFirst { get; } = [];
    }

    // One hospital and one centralised model per model and wire type. Every round measures the centralised ceiling and each
    // hospital round trip and reply polling once, in an order that rotates round by round, so a change of the shared
    // machine's load meets all of them; each ratio is the median over rounds of ratios taken within a round.
    private static async Task<JsonObject> MeasureAsync(SplitRig rig, MachineLimits limits, ModelDefinition model, ElementType wire, int steps, int rounds,
        int warmup, HospitalLatency latency, int[] depths, int threads, bool smoke, int? batchOverride)
    {
        var tag = $"{model.Name.Split('-')[0]}-{WireTypes.Name(wire)}";
        var batch = batchOverride ?? (smoke && model.BatchSize > 256 ? 256 : model.BatchSize);
        var manifest = RunManifest.ForModel("vanilla-" + tag, model, TrainingMode.Vanilla, ["h-" + tag], seed: 7) with
        {
            FeatureType = wire,
            BatchSize = batch
        };
        await rig.ProvisionAsync(manifest).ConfigureAwait(false);
        var data = BenchHospital.SyntheticData(manifest, batch * 4, salt: 1);
        using var hospital = new BenchHospital(rig, manifest, manifest.Hospitals[0], data, latency.Polls[0]);
        using var centralised = new CentralisedCeiling(model, data, batch, manifest.Seed);

        latency.Apply(rig, latency.RoundTripsMs[0]);
        centralised.SamplesPerSecond(warmup);
        for (var i = 0; i < warmup; i++) await hospital.StepAsync().ConfigureAwait(false);
        // The pipelined arm's copies of the client layer are made once, before anything is timed.
        if (depths.Max() > 1) await hospital.PipelinedAsync(depths.Max(), depths.Max()).ConfigureAwait(false);

        var sides = latency.RoundTripsMs.SelectMany(rtt => latency.Polls.SelectMany(poll => depths.Select(depth => new Side(rtt, poll, depth)))).ToList();
        var central = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            // Segment -1 is the centralised ceiling; the others are the sides.
            var order = Enumerable.Range(-1, sides.Count + 1).ToList();
            order = [.. order.Skip(round % order.Count), .. order.Take(round % order.Count)];
            var splitThisRound = new double[sides.Count];
            foreach (var segment in order)
            {
                if (segment < 0)
                {
                    central.Add(centralised.SamplesPerSecond(steps));
                    continue;
                }
                var side = sides[segment];
                latency.Apply(rig, side.Rtt);
                hospital.Polling = side.Poll;
                var before = RoundTrips.Count(rig);
                var clock = Stopwatch.StartNew();
                if (side.Depth == 1)
                {
                    for (var i = 0; i < steps; i++) side.Records.Add(await hospital.StepAsync().ConfigureAwait(false));
                }
                else
                {
                    side.Records.AddRange(await hospital.PipelinedAsync(steps, side.Depth).ConfigureAwait(false));
                }
                splitThisRound[segment] = steps * batch / clock.Elapsed.TotalSeconds;
                side.Trips.Add(before.PerStep(RoundTrips.Count(rig), steps));
                side.Split.Add(splitThisRound[segment]);
            }
            for (var k = 0; k < sides.Count; k++)
            {
                var firstOfPoll = sides.FindIndex(x => x.Poll == sides[k].Poll && x.Depth == sides[k].Depth);
                sides[k].Ratios.Add(splitThisRound[k] / central[^1]);
                sides[k].VsFirst.Add(splitThisRound[k] / splitThisRound[firstOfPoll]);
            }
            var perSide = string.Join(", ", sides.Select((x, k) =>
                string.Create(CultureInfo.InvariantCulture, $"{x.Rtt} ms {x.Name} {splitThisRound[k]:F1} ({x.Ratios[^1]:F3})")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {model.Name} {WireTypes.Name(wire)} round {round + 1}/{rounds}: centralised {central[^1]:F1} samples/s; split {perSide} "
                    + $"({BenchStats.Machine(threads)}; load {ScaleBench.Load()})"));
        }

        var perRtt = new JsonObject();
        foreach (var group in sides.GroupBy(x => x.Rtt))
        {
            var perPoll = new JsonObject();
            foreach (var side in group)
            {
                var figures = Summarise(rig, limits, model, wire, batch, hospital, side, central, threads,
                    $"{WireTypes.Name(wire)} at {side.Rtt} ms ({side.Name})");
                perPoll[side.Name] = figures;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {model.Name} {WireTypes.Name(wire)} hospital round trip {side.Rtt} ms, {side.Name} polling: "
                        + $"{figures["split_samples_per_s"]!.GetValue<double>():F1} samples/s = {figures["ratio"]!.GetValue<double>():F3} x centralised "
                        + $"{figures["centralized_samples_per_s"]!.GetValue<double>():F1} (ceiling at zero system cost "
                        + $"{figures["ratio_at_zero_system_overhead"]!.GetValue<double>():F3}), {figures["vs_first_rtt"]!.GetValue<double>():F3} x the same at "
                        + $"{latency.RoundTripsMs[0]} ms; storage round trips per step: hospital "
                        + $"{figures["hospital_round_trips_per_step"]!.GetValue<double>():F1}, "
                        + $"function {figures["function_round_trips_per_step"]!.GetValue<double>():F1}; reply queue looks per step "
                        + $"{figures["hospital_reply_looks_per_step"]!.GetValue<double>():F1}"));
            }
            perRtt[HospitalLatency.Key(group.Key)] = perPoll;
        }
        // The figures at the first round trip and polling stand for the configuration, as before round trips were added.
        var result = (JsonObject)perRtt[HospitalLatency.Key(sides[0].Rtt)]![sides[0].Name]!.DeepClone();
        result["at_hospital_rtt"] = perRtt;
        return result;
    }

    private static JsonObject Summarise(SplitRig rig, MachineLimits limits, ModelDefinition model, ElementType wire, int batch, BenchHospital hospital,
        Side side, List<double> central, int threads, string label)
    {
        var records = side.Records;
        var split = side.Split;
        var trips = side.Trips;
        var ratios = side.Ratios;
        var ratio = BenchStats.Median(ratios);
        var breakdown = Breakdown(rig, hospital.Hospital, records);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{model.Name} batch {batch} {label}: ratio {ratio:F3} (split {BenchStats.Median(split):F1} / centralised "
                + $"{BenchStats.Median(central):F1} samples/s; {BenchStats.Machine(threads)})"));
        Console.WriteLine("  step part           p50 ms    p99 ms");
        foreach (var (name, p50, p99) in breakdown) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-18} {p50,8:F2}  {p99,8:F2}"));

        // Against the limits: the step's compute (client forward + server step + client backward) is what no protocol can
        // remove; system overhead = (step - compute) / step, per step, p50. The wire's floors are for its bytes per step.
        var joined = records.Select(r => (Hospital: r, Server: rig.Processor.Find(hospital.Hospital, r.Sequence))).Where(j => j.Server is not null).ToList();
        var computeMs = joined.Select(j => j.Hospital.ForwardMs + j.Server!.Timings.ComputeMs + j.Hospital.BackwardMs).ToList();
        var overhead = BenchStats.Median(joined.Select(j
            => 1 - (j.Hospital.ForwardMs + j.Server!.Timings.ComputeMs + j.Hospital.BackwardMs) / j.Hospital.TotalMs));
        var centralStepMs = batch * 1000 / BenchStats.Median(central);
        var zeroOverheadRatio = centralStepMs / BenchStats.Median(computeMs);
        var bytesPerStep = records.Count == 0 ? 0 : records.Average(r => (double)(r.SentBytes + r.ReceivedBytes));
        var (cryptoFloor, loopbackFloor, azuriteFloor) = limits.Floors(bytesPerStep);
        var stepMs = BenchStats.Median(records.Select(r => r.TotalMs));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  limits: step p50 {stepMs:F0} ms, of which compute {BenchStats.Median(computeMs):F0} ms; system overhead p50 {overhead:P1} (target <= 15%); " +
            $"ratio if the system cost nothing {zeroOverheadRatio:F3} (centralised step {centralStepMs:F0} ms); wire {bytesPerStep / (1 << 20):F2} MiB/step: " +
            $"AES-GCM floor {cryptoFloor:F1} ms, loopback floor {loopbackFloor:F1} ms, Azurite clear-transfer floor {azuriteFloor:F1} ms"));
        var parts = new JsonObject();
        foreach (var (name, p50, p99) in breakdown) parts[name] = new JsonObject { ["p50_ms"] = p50, ["p99_ms"] = p99 };
        return new JsonObject
        {
            ["ratio"] = ratio,
            ["batch"] = batch,
            ["wire"] = WireTypes.Name(wire),
            ["split_samples_per_s"] = BenchStats.Median(split),
            ["centralized_samples_per_s"] = BenchStats.Median(central),
            ["round_ratios"] = new JsonArray([.. ratios.Select(r => JsonValue.Create(r))]),
            ["sent_bytes_per_step"] = records.Count == 0 ? 0 : records.Average(r => r.SentBytes),
            ["received_bytes_per_step"] = records.Count == 0 ? 0 : records.Average(r => r.ReceivedBytes),
            ["latency_ms"] = parts,
            ["step_p50_ms"] = stepMs,
            ["compute_p50_ms"] = BenchStats.Median(computeMs),
            ["system_overhead_p50"] = overhead,
            ["system_overhead_target"] = "<= 0.15",
            ["ratio_at_zero_system_overhead"] = zeroOverheadRatio,
            ["hospital_rtt_ms"] = side.Rtt,
            ["reply_poll"] = side.Poll.Name,
            ["pipeline_depth"] = side.Depth,
            ["vs_first_rtt"] = BenchStats.Median(side.VsFirst),
            // Request-response turns through each side's link per step; the hospital's include its empty reply polls and the
            // function's its queue polls and the run's journal and checkpoint writes.
            ["hospital_round_trips_per_step"] = BenchStats.Median(trips.Select(t => t.Hospital)),
            ["function_round_trips_per_step"] = BenchStats.Median(trips.Select(t => t.Function)),
            ["hospital_reply_looks_per_step"] = records.Count == 0 ? 0 : records.Average(r => r.Looks),
            ["floor_ms"] = new JsonObject { ["aes_gcm"] = cryptoFloor, ["tcp_loopback"] = loopbackFloor, ["azurite_clear_transfer"] = azuriteFloor },
        };
    }

    // Joins the hospital's timings with the server's record of the same message.
    private static List<(string Name, double P50, double P99)> Breakdown(SplitRig rig, string hospitalId, List<HospitalStep> records)
    {
        var joined = records.Select(r => (Hospital: r, Server: rig.Processor.Find(hospitalId, r.Sequence))).Where(j => j.Server is not null).ToList();
        var parts = new (string Name, Func<HospitalStep, ServerStep, double> Value)[]
        {
            ("client_forward", (h, _) => h.ForwardMs),
            ("encode_encrypt", (h, _) => h.SealMs),
            ("upload", (h, _) => h.UploadMs),
            ("enqueue", (h, _) => h.EnqueueMs),
            ("queue_wait", (h, s) => Stopwatch.GetElapsedTime(h.EnqueuedAt, s.Start).TotalMilliseconds),
            ("server_step", (_, s) => s.TotalMs),
            ("server_download", (_, s) => s.Timings.DownloadMs),
            ("server_decrypt", (_, s) => s.Timings.DecryptMs),
            ("server_compute", (_, s) => s.Timings.ComputeMs),
            ("server_encrypt", (_, s) => s.Timings.EncryptMs),
            ("server_upload", (_, s) => s.Timings.UploadMs),
            ("server_commit_reply", (_, s) => s.Timings.CommitMs),
            ("reply_wait", (h, s) => Math.Max(0, Stopwatch.GetElapsedTime(s.End, h.RepliedAt).TotalMilliseconds)),
            ("download", (h, _) => h.DownloadMs),
            ("decrypt_decode", (h, _) => h.OpenMs),
            ("client_backward", (h, _) => h.BackwardMs),
            ("total", (h, _) => h.TotalMs),
        };
        return [.. parts.Select(p => (p.Name, BenchStats.Percentile(joined.Select(j => p.Value(j.Hospital, j.Server!)), 50),
            BenchStats.Percentile(joined.Select(j => p.Value(j.Hospital, j.Server!)), 99)))];
    }
}

/// <summary>Wire element types by their short names.</summary>
public static class WireTypes
{
    public static ElementType Parse(string name) => name.ToLowerInvariant() switch
    {
        "fp32" => ElementType.Float32,
        "fp16" => ElementType.Float16,
        "bf16" => ElementType.BFloat16,
        "int8" => ElementType.QInt8,
        _ => throw new ArgumentException($"wire type '{name}' is not one of fp32, fp16, bf16, int8"),
    };

    public static string Name(ElementType type) => type switch
    {
        ElementType.Float32 => "fp32",
        ElementType.Float16 => "fp16",
        ElementType.BFloat16 => "bf16",
        ElementType.QInt8 => "int8",
        _ => type.ToString(),
    };
}
