using System.Diagnostics;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The epoch loop vanilla and U-shaped training share: done already, the resume line, progress, the session limits,
/// cancellation between batches and the validation at each epoch's end; the mode supplies the batch step (one batch
/// applied per call) and its predictions for the validation split.
/// </summary>
internal static class EpochLoop
{
    /// <summary>
    /// An interrupted message that is not a training step (an evaluation): nothing to apply; its sequence number stays used and its late reply is dropped.
    /// </summary>
    public static void DropInterrupted(HospitalRun run, Func<FrameKind, bool> isTrainingStep)
    {
        if (run.State.Pending is { } stale && !isTrainingStep(stale.Kind))
        {
            run.Output.Info($"dropping interrupted {stale.Kind} message #{stale.Sequence}");
            run.Commit(run.State with { Pending = null });
            run.Folder.DeletePendingFrame();
        }
    }

    public static async Task<TrainingOutcome> RunAsync(
        HospitalRun run, TrainingLimits limits, int batchesPerEpoch, Func<PendingFrame, string> resuming,
        Func<IProgressTracker, Func<int, bool>, Task> step, Func<TrainingSet, Task<float[]>> predict, CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        if (run.State.Epoch >= manifest.Epochs)
        {
            run.Output.Info($"training complete: {manifest.Epochs} epochs done at this hospital");
            return TrainingOutcome.Complete;
        }
        if (run.State.Pending is { } pending) run.Output.Info(resuming(pending));

        var total = (long)manifest.Epochs * batchesPerEpoch;
        var done = (long)run.State.Epoch * batchesPerEpoch + run.State.Batch;
        var outcome = await run.Output.TrackAsync($"train {manifest.RunId}", total, done, async tracker =>
        {
            var clock = Stopwatch.StartNew();
            var steps = 0;
            while (run.State.Epoch < manifest.Epochs)
            {
                // Pipelined batches in flight are applied before a pause (the step starts no more once the limit is reached).
                if (run.State.InFlight is null && limits.Reached(steps, clock.Elapsed))
                {
                    run.Output.Info($"stopping at the session limit after {steps} batches; the next start continues with epoch {run.State.Epoch + 1} batch "
                        + $"{run.State.Batch + 1}");
                    return TrainingOutcome.Paused;
                }
                cancellationToken.ThrowIfCancellationRequested();
                var epochBefore = run.State.Epoch;
                // A pipelined step may start another batch while this many more are applied or in flight within the limits.
                await step(tracker, ahead => !limits.Reached(steps + ahead, clock.Elapsed)).ConfigureAwait(false);
                steps++;
                if (run.State.Epoch != epochBefore && limits.ValidateEachEpoch && run.Data.Validation.Count > 0)
                {
                    await ValidateAsync(run, epochBefore, predict, cancellationToken).ConfigureAwait(false);
                }
            }
            run.Output.Info($"training complete: {manifest.Epochs} epochs done at this hospital");
            return TrainingOutcome.Complete;
        }).ConfigureAwait(false);
        // The last step's reply is deleted before the agent stops (GradientStep deletes replies in the background).
        await run.Frames.FlushAsync().ConfigureAwait(false);
        return outcome;
    }

    /// <summary>
    /// The validation of the epoch after <paramref name="epochBefore"/>: its headline metric joins that epoch's history
    /// entry and the operator's progress.
    /// </summary>
    public static async Task ValidateAsync(HospitalRun run, int epochBefore, Func<TrainingSet, Task<float[]>> predict, CancellationToken cancellationToken)
    {
        var validation = run.Data.Validation;
        var predictions = await predict(validation).ConfigureAwait(false);
        var (metric, value) = EvaluationReport.Score(run, "validation", validation, predictions).Headline;
        var entry = TrainingHistoryFile.Load(run.Folder.HistoryPath).FirstOrDefault(h => h.Epoch == epochBefore + 1);
        if (entry is not null) TrainingHistoryFile.Record(run.Folder.HistoryPath, entry with { ValidationMetric = metric, ValidationValue = value });
        await ProgressPublisher.PublishAsync(run, cancellationToken).ConfigureAwait(false);
        run.Output.Info(FormattableString.Invariant($"epoch {epochBefore + 1}: mean train loss {entry?.MeanTrainLoss:F4}, validation {metric} {value:F4}"));
    }
}
