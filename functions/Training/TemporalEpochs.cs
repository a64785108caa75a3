using System.Diagnostics;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Training;

namespace SplitFunctions.Functions.Training;

/// <summary>
/// Algorithm 1's epochs: E epochs over the union of every hospital's features, in a seeded order, with a checkpoint per
/// epoch so an interrupted run resumes at the epoch boundary and ends with the same weights.
/// </summary>
public sealed partial class TemporalEpochs(LeasedRuns runs, ServerFrameStore frames, ILogger<TemporalEpochs> logger)
{
    /// <summary>Trains the epochs not yet completed; returns the last epoch's loss.</summary>
    public async Task<double> TrainAsync(LeasedRun session, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        var state = session.State;
        var manifest = session.Manifest;
        if (state.EpochsCompleted >= manifest.Epochs) return state.Epochs.LastOrDefault()?.Loss ?? double.NaN;
        var union = await LoadUnionAsync(session, ct).ConfigureAwait(false);
        while (state.EpochsCompleted < manifest.Epochs)
        {
            ct.ThrowIfCancellationRequested();
            if (!session.Lease.IsHeld) throw new ConcurrentWriterException($"run '{manifest.RunId}': lease lost during temporal training");
            var clock = Stopwatch.StartNew();
            var epoch = state.EpochsCompleted;
            var (loss, samples) = session.Model.TrainEpoch(union, epoch);
            state.EpochsCompleted++;
            state.BatchesApplied += (samples + manifest.BatchSize - 1) / manifest.BatchSize;
            state.Epochs.Add(new EpochRecord(epoch + 1, loss, samples, clock.Elapsed.TotalSeconds));
            // Lost while this epoch computed: its result is not this instance's to record; the new owner redoes the epoch.
            if (!session.Lease.IsHeld) throw new ConcurrentWriterException($"run '{manifest.RunId}': lease lost during temporal epoch {epoch + 1}");
            await runs.CheckpointAsync(session, ct).ConfigureAwait(false);
            LogEpoch(logger, manifest.RunId, epoch + 1, manifest.Epochs, loss, samples / clock.Elapsed.TotalSeconds);
        }
        return state.Epochs[^1].Loss;
    }

    /// <summary>All indexed chunks decrypted into one set, in (hospital, sequence) order so every replay sees the same data.</summary>
    public async Task<TrainingSet> LoadUnionAsync(LeasedRun session, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        var features = new List<float>();
        var labels = new List<float>();
        foreach (var chunk in session.State.Chunks.OrderBy(c => c.Hospital, StringComparer.Ordinal).ThenBy(c => c.Sequence))
        {
            var tensors = (await frames.ReadAsync(session.Manifest.RunId, chunk.Hospital, chunk.Sequence, chunk.Blob, chunk.Length, chunk.Sha256, chunk.KeyId, ct).ConfigureAwait(false)).Tensors;
            features.AddRange(tensors[0].Values);
            labels.AddRange(tensors[1].Values);
        }
        return new TrainingSet([.. features], [.. labels], session.Model.CutShape);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "run {Run}: temporal epoch {Epoch}/{Epochs} loss {Loss:F4} ({Rate:F0} samples/s)")]
    private static partial void LogEpoch(ILogger logger, string run, int epoch, int epochs, double loss, double rate);
}
