using System.Diagnostics;
using System.Globalization;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Bench;

/// <summary>
/// How a benchmark hospital sends its frames, waits for its reply and lets it go: `agent` (the agent now:
/// <see cref="ReplyPolling.Default"/>, the reply's delete overlapping the next batch, and frames of at most
/// <see cref="SplitFunctions.Core.Contract.MessageCodec.MaxInlineBytes"/> inside the messages both ways), `agent-blob`
/// (the same with every frame a blob: the agent before inline frames), `backoff` (the agent before issue 33:
/// <see cref="ReplyPolling.Backoff"/>, the delete inside the step, blobs), `agent-inline-delete` (the agent's polling with the
/// delete inside the step and blobs: the polling change alone), or a fixed polling interval in milliseconds (delete inside
/// the step, blobs, as the benchmarks did before).
/// </summary>
public sealed record ReplyPoll(string Name, Func<TimeSpan, TimeSpan> Next, bool BackgroundDelete, bool InlineFrames = false)
{
    public static ReplyPoll Agent { get; } = new("agent", waited => ReplyPolling.Default.Next(waited), BackgroundDelete: true, InlineFrames: true);

    public static ReplyPoll Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "agent" => Agent,
        "agent-blob" => Agent with { Name = "agent-blob", InlineFrames = false },
        "agent-inline-delete" => Agent with { Name = "agent-inline-delete", BackgroundDelete = false, InlineFrames = false },
        "backoff" => new("backoff", waited => ReplyPolling.Backoff.Next(waited), BackgroundDelete: false),
        var ms when double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var fixedMs) && fixedMs >= 0
            => new($"fixed {fixedMs.ToString(CultureInfo.InvariantCulture)} ms", _ => TimeSpan.FromMilliseconds(fixedMs), BackgroundDelete: false),
        _ => throw new ArgumentException($"--reply-poll takes agent, agent-blob, agent-inline-delete, backoff or a number of milliseconds, got '{text}'"),
    };
}

/// <summary>
/// The hospital-to-storage round trips a benchmark runs at (issue 33): `--hospital-rtt-ms 0,20,50` (each a symmetric
/// delay through the rig's hospital link, optionally `--hospital-mbit-s` as a bandwidth cap), the function's in-region
/// round trip `--function-rtt-ms 1`, and the hospitals' reply polling `--reply-poll agent,backoff`.
/// </summary>
public sealed record HospitalLatency(double[] RoundTripsMs, double FunctionRoundTripMs, double? MbitPerSecond, ReplyPoll[] Polls)
{
    public static HospitalLatency Parse(BenchOptions options, string defaultPoll = "agent")
    {
        ArgumentNullException.ThrowIfNull(options);
        var rtts = options.Get("hospital-rtt-ms", "0").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0 ? ms
                : throw new ArgumentException($"--hospital-rtt-ms takes round trips in milliseconds (0,20,50), got '{s}'")).ToArray();
        var mbit = options.GetDouble("hospital-mbit-s", 0);
        var polls = options.Get("reply-poll", defaultPoll).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ReplyPoll.Parse).ToArray();
        return new HospitalLatency(rtts, options.GetDouble("function-rtt-ms", 1), mbit > 0 ? mbit : null, polls);
    }

    public LinkShape FunctionShape => LinkShape.RoundTrip(TimeSpan.FromMilliseconds(FunctionRoundTripMs));

    public LinkShape HospitalShape(double roundTripMs) =>
        LinkShape.RoundTrip(TimeSpan.FromMilliseconds(roundTripMs), MbitPerSecond is { } mbit ? mbit * 1e6 / 8 : null);

    /// <summary>Puts the hospitals of <paramref name="rig"/> at <paramref name="roundTripMs"/>.</summary>
    public void Apply(SplitRig rig, double roundTripMs)
    {
        ArgumentNullException.ThrowIfNull(rig);
        (rig.HospitalLink ?? throw new InvalidOperationException("the rig was started without links")).Shape = HospitalShape(roundTripMs);
    }

    public static string Key(double roundTripMs) => "rtt_" + roundTripMs.ToString(CultureInfo.InvariantCulture) + "ms";
}

/// <summary>Storage round trips (request-response turns through a link) per step, hospital side and function side.</summary>
public readonly record struct RoundTrips(double Hospital, double Function)
{
    /// <summary>Counts both links of <paramref name="rig"/> now; <see cref="PerStep"/> takes the difference to a later count.</summary>
    public static RoundTrips Count(SplitRig rig)
    {
        ArgumentNullException.ThrowIfNull(rig);
        return new(rig.HospitalLink?.Exchanges ?? 0, rig.FunctionLink?.Exchanges ?? 0);
    }

    public RoundTrips PerStep(RoundTrips later, int steps) =>
        steps == 0 ? new(double.NaN, double.NaN) : new((later.Hospital - Hospital) / steps, (later.Function - Function) / steps);
}

/// <summary>
/// The zero-overhead ceiling beside a split figure: centralised training (SplitModel.TrainStep: client and server
/// layers in one process, no wire) of the same network and batch on the same threads, measured in the same run.
/// </summary>
public sealed class CentralisedCeiling : IDisposable
{
    private readonly SplitModel model;
    private readonly TrainingSet data;
    private readonly int batch;
    private readonly float[] x;
    private readonly float[] y;

    public CentralisedCeiling(ModelDefinition definition, TrainingSet data, int batch, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(definition);
        this.data = data ?? throw new ArgumentNullException(nameof(data));
        this.batch = batch;
        model = SplitModel.Create(definition, seed);
        x = new float[batch * data.SampleSize];
        y = new float[batch];
    }

    /// <summary>Samples per second over <paramref name="steps"/> steps.</summary>
    public double SamplesPerSecond(int steps)
    {
        var batches = Math.Max(1, data.Count / batch);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++)
        {
            data.Gather([.. Enumerable.Range((i % batches) * batch, batch)], x, y);
            model.TrainStep(x, y, batch);
        }
        return steps * batch / clock.Elapsed.TotalSeconds;
    }

    public void Dispose() => model.Dispose();
}
