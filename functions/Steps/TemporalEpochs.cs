using System.Diagnostics;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// Algorithm 1's epochs: E epochs over the union of every hospital's features, streamed from their chunks in a seeded
/// order (<see cref="TemporalFeatureStream"/>, so memory does not grow with the data), with a checkpoint per epoch so an
/// interrupted run resumes at the epoch boundary and ends with the same weights.
/// </summary>
public sealed partial class TemporalEpochs(LeasedRuns runs, TemporalFeatureStream features, ILogger<TemporalEpochs> logger,
    long windowBytes = TemporalFeatureStream.DefaultWindowBytes)
{
    /// <summary>
    /// Trains the next epoch not yet completed and checkpoints it; returns false once every epoch is done (nothing
    /// trained then). One epoch per call: the caller hands the rest back to the queue as a fresh delivery.
    /// </summary>
    public async Task<bool> TrainNextEpochAsync(LeasedRun run, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var state = run.State;
        var manifest = run.Manifest;
        if (state.EpochsCompleted >= manifest.Epochs)
        {
            features.Cache.Release(manifest.RunId);
            return false;
        }
        // The window size shapes the sample order: fixed for the run when its first epoch starts, so every instance that
        // resumes it (whatever its own setting) trains the same batches.
        if (state.TemporalWindowBytes <= 0) state.TemporalWindowBytes = windowBytes;
        ct.ThrowIfCancellationRequested();
        if (!run.Lease.IsHeld) throw new ConcurrentWriterException($"run '{manifest.RunId}': lease lost during temporal training");
        var clock = Stopwatch.StartNew();
        var epoch = state.EpochsCompleted;
        run.MarkApplied();
        double loss;
        int samples;
        try
        {
            (loss, samples) = await run.Model.TrainEpochAsync(features.ReadEpochAsync(run, epoch, state.TemporalWindowBytes, ct), ct).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            // A chunk indexed earlier no longer opens (its hospital deleted or replaced it): the epoch is undone. The hospital
            // whose message carried the epoch hears that much; which chunk and whose it was go only to the operator.
            throw new EpochDataException($"temporal epoch {epoch + 1} could not be trained: a stored feature chunk of the consortium no longer passes its "
                + "checks; nothing was applied, the operator's poison record says which", $"temporal epoch {epoch + 1}: {e.Message}");
        }
        if (!double.IsFinite(loss) && samples > 0 || !run.Model.IsFinite())
        {
            throw new ProtocolException(ProtocolRejection.NonFinite, $"temporal epoch {epoch + 1} left a non-finite loss or non-finite weights: the epoch was "
                + "undone and nothing was applied; a hospital's features are out of the range the model can train on");
        }
        state.EpochsCompleted++;
        state.BatchesApplied += (samples + manifest.BatchSize - 1) / manifest.BatchSize;
        state.Epochs.Add(new EpochRecord(epoch + 1, loss, samples, clock.Elapsed.TotalSeconds));
        // Lost while this epoch computed: its result is not this instance's to record; the new owner redoes the epoch.
        if (!run.Lease.IsHeld) throw new ConcurrentWriterException($"run '{manifest.RunId}': lease lost during temporal epoch {epoch + 1}");
        await runs.CheckpointAsync(run, ct).ConfigureAwait(false);
        if (state.EpochsCompleted >= manifest.Epochs) features.Cache.Release(manifest.RunId);
        LogEpoch(logger, manifest.RunId, epoch + 1, manifest.Epochs, loss, samples / clock.Elapsed.TotalSeconds);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "run {Run}: temporal epoch {Epoch}/{Epochs} loss {Loss:F4} ({Rate:F0} samples/s)")]
    private static partial void LogEpoch(ILogger logger, string run, int epoch, int epochs, double loss, double rate);
}

/// <summary>
/// A temporal epoch failed on stored data the message's own hospital may not hear the details of (another hospital's blob):
/// <see cref="Message"/> is what that hospital reads, <see cref="Detail"/> what the operator's poison record keeps.
/// </summary>
public sealed class EpochDataException(string message, string detail) : Exception(message)
{
    public string Detail { get; } = detail;
}
