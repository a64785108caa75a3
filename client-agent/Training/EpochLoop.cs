using System.Diagnostics;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The epoch loop vanilla and U-shaped training share: done already, the resume line, progress, the session limits,
/// cancellation between batches and the validation hook at each epoch's end; the mode supplies the batch step and the
/// validation.
/// </summary>
internal static class EpochLoop
{
    public static async Task<TrainingOutcome> RunAsync(
        HospitalRun session, TrainingLimits limits, int batchesPerEpoch, Func<PendingFrame, string> resuming,
        Func<IProgressTracker, Task> step, Func<int, Task> validateEpoch, CancellationToken cancellationToken)
    {
        var manifest = session.Manifest;
        if (session.State.Epoch >= manifest.Epochs)
        {
            session.Output.Info($"training complete: {manifest.Epochs} epochs done at this hospital");
            return TrainingOutcome.Complete;
        }
        if (session.State.Pending is { } pending) session.Output.Info(resuming(pending));

        var total = (long)manifest.Epochs * batchesPerEpoch;
        var done = (long)session.State.Epoch * batchesPerEpoch + session.State.Batch;
        return await session.Output.TrackAsync($"train {manifest.RunId}", total, done, async tracker =>
        {
            var clock = Stopwatch.StartNew();
            var steps = 0;
            while (session.State.Epoch < manifest.Epochs)
            {
                if (limits.Reached(steps, clock.Elapsed))
                {
                    session.Output.Info($"stopping at the session limit after {steps} batches; the next start continues with epoch {session.State.Epoch + 1} batch {session.State.Batch + 1}");
                    return TrainingOutcome.Paused;
                }
                cancellationToken.ThrowIfCancellationRequested();
                var epochBefore = session.State.Epoch;
                await step(tracker).ConfigureAwait(false);
                steps++;
                if (session.State.Epoch != epochBefore && limits.ValidateEachEpoch && session.Data.Validation.Count > 0)
                {
                    await validateEpoch(epochBefore).ConfigureAwait(false);
                }
            }
            session.Output.Info($"training complete: {manifest.Epochs} epochs done at this hospital");
            return TrainingOutcome.Complete;
        }).ConfigureAwait(false);
    }
}
