using System.Diagnostics;
using Microsoft.Extensions.Logging;
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
        var (loss, samples) = await run.Model.TrainEpochAsync(features.ReadEpochAsync(run, epoch, state.TemporalWindowBytes, ct), ct).ConfigureAwait(false);
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
