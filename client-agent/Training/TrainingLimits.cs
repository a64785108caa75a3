namespace SplitFunctions.ClientAgent.Training;

/// <summary>How much one start may do (a scheduled agent works in bounded sessions and resumes next time).</summary>
public sealed record TrainingLimits(int MaxBatches, TimeSpan? MaxDuration, bool ValidateEachEpoch, bool RetryRejected)
{
    public static TrainingLimits None { get; } = new(0, null, true, false);

    /// <summary>True when no further step may start: checked only between steps, so a step is never cut in half.</summary>
    public bool Reached(int stepsThisSession, TimeSpan elapsed) =>
        (MaxBatches > 0 && stepsThisSession >= MaxBatches) || (MaxDuration is { } d && elapsed >= d);
}
