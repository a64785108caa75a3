using System.Collections.Concurrent;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>Where the time of one vanilla step went, in milliseconds.</summary>
public sealed record StepTimings(double DownloadMs, double DecryptMs, double ComputeMs, double EncryptMs, double UploadMs, double CommitMs);

/// <summary>
/// The timings of the latest vanilla steps by (run, hospital, sequence), kept for the benchmarks' latency breakdown
/// (nothing in training reads them). Steps commit while the next one computes, so "the last step" would be ambiguous.
/// </summary>
public sealed class StepTimeline
{
    /// <summary>Steps kept; older ones are forgotten so a long-running function does not grow.</summary>
    public const int Capacity = 4096;

    private readonly ConcurrentDictionary<(string Run, string Hospital, long Sequence), StepTimings> steps = new();
    private readonly ConcurrentQueue<(string, string, long)> order = new();

    public void Record(string run, string hospital, long sequence, StepTimings timings)
    {
        steps[(run, hospital, sequence)] = timings;
        order.Enqueue((run, hospital, sequence));
        while (order.Count > Capacity && order.TryDequeue(out var old)) steps.TryRemove(old, out _);
    }

    /// <summary>The timings of a step, or null when it was not applied here or is forgotten.</summary>
    public StepTimings? Find(string run, string hospital, long sequence) => steps.TryGetValue((run, hospital, sequence), out var t) ? t : null;
}
