namespace SplitFunctions.Functions.Training;

/// <summary>Where the time of one vanilla step went, in milliseconds.</summary>
public sealed record StepTimings(double DownloadMs, double DecryptMs, double ComputeMs, double EncryptMs, double UploadMs, double CommitMs);

/// <summary>The timings of the last vanilla step, kept for the benchmarks' latency breakdown (nothing in training reads them).</summary>
public sealed class StepTimeline
{
    public StepTimings LastStep { get; private set; } = new(0, 0, 0, 0, 0, 0);

    public void Record(StepTimings timings) => LastStep = timings;
}
