using System.Diagnostics;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Spatio-temporal mode (the paper's Algorithm 1) at the hospital: the fixed client layer (the run's initial weights, eval
/// mode, never updated) turns the whole training set into features once; they go up in `chunk` messages, then one `done`
/// with the chunk count, after which the hospital may go offline. Chunks are not awaited one by one; rejections are
/// collected as they arrive. A restart re-sends the pending chunk as is and continues with the next.
/// </summary>
public sealed class TemporalUploader(HospitalRun run, TrainingLimits limits)
{
    public async Task<TrainingOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        var train = run.Data.Train;
        var chunkSize = manifest.BatchSize;
        var chunks = (train.Count + chunkSize - 1) / chunkSize;
        if (run.State.DoneSent && run.State.Pending is null)
        {
            await ThrowIfRejectedAsync(cancellationToken).ConfigureAwait(false);
            run.Output.Info($"upload complete: {chunks} chunks and the completion message were sent; the function trains once every hospital is done");
            return TrainingOutcome.Complete;
        }
        using var client = ClientLayer.Create(manifest, trainable: false, run.ConsortiumSecret);
        // The data's own order: each sample is sent once, so there are no views to link, and the server shuffles the union
        // itself (a faulted run and its reference then train on exactly the same chunks; the chaos run checks it).
        var rows = Enumerable.Range(0, train.Count).ToArray();
        return await run.Output.TrackAsync($"upload features {manifest.RunId}", chunks + 1, run.State.ChunksSent, async tracker =>
        {
            var clock = Stopwatch.StartNew();
            var steps = 0;
            while (!run.State.DoneSent)
            {
                if (limits.Reached(steps, clock.Elapsed))
                {
                    run.Output.Info($"stopping at the session limit after {steps} messages; the next start continues with chunk {run.State.ChunksSent + 1} of "
                        + $"{chunks}");
                    return TrainingOutcome.Paused;
                }
                cancellationToken.ThrowIfCancellationRequested();
                var step = Stopwatch.StartNew();
                var state = run.State;
                var pending = state.Pending;
                byte[]? bytes = null;
                if (pending is not null)
                {
                    if (pending.Blob is not null) bytes = run.Folder.ReadPendingFrame(pending.Sequence);
                }
                else if (state.ChunksSent < chunks)
                {
                    var start = state.ChunksSent * chunkSize;
                    var n = Math.Min(chunkSize, train.Count - start);
                    FeatureFrame frame;
                    using (var activations = client.Forward(train, rows.AsSpan(start, n), train: false, out var targets))
                    {
                        frame = ActivationFrames.Seal(run, state.NextSequence, activations, targets);
                    }
                    pending = PendingFrame.For(state.NextSequence, FrameKind.Chunk, frame) with { Chunk = state.ChunksSent };
                    run.Folder.WritePendingFrame(frame.Bytes);
                    bytes = frame.Bytes;
                }
                else
                {
                    pending = new PendingFrame { Sequence = state.NextSequence, Kind = FrameKind.Done, ChunkCount = chunks };
                }
                if (state.Pending is null)
                {
                    var releases = pending.Kind == FrameKind.Chunk && state.Releases.TrainingPasses == 0
                        ? ReleaseBudget.Count(run, ReleaseKind.Training) : state.Releases;
                    run.Commit(state with { Pending = pending, NextSequence = pending.Sequence + 1, Releases = releases });
                }

                await run.Frames.SendAsync(pending, bytes, cancellationToken).ConfigureAwait(false);
                run.Commit(run.State with
                {
                    Pending = null,
                    ChunksSent = pending.Kind == FrameKind.Chunk ? pending.Chunk!.Value + 1 : run.State.ChunksSent,
                    DoneSent = pending.Kind == FrameKind.Done,
                    LastRejection = null,
                });
                run.Folder.DeletePendingFrame();
                steps++;
                var samples = pending.Kind == FrameKind.Chunk ? Math.Min(chunkSize, train.Count - pending.Chunk!.Value * chunkSize) : 0;
                tracker.Report(new StepProgress(pending.Kind.ToString().ToLowerInvariant(), 1, 1,
                    Math.Min(run.State.ChunksSent + (run.State.DoneSent ? 1 : 0), chunks + 1), chunks + 1, null,
                    samples / Math.Max(step.Elapsed.TotalSeconds, 1e-6), pending.Sequence));
                await ThrowIfRejectedAsync(cancellationToken).ConfigureAwait(false);
            }
            run.Output.Info($"upload complete: {chunks} chunks ({train.Count} samples) and the completion message sent; this hospital may go offline");
            return TrainingOutcome.Complete;
        }).ConfigureAwait(false);
    }

    private async Task ThrowIfRejectedAsync(CancellationToken cancellationToken)
    {
        var rejection = await run.Frames.CollectRejectionAsync(run.State.NextSequence - 1, cancellationToken).ConfigureAwait(false);
        if (rejection is not null) throw await run.RejectedAsync(rejection, cancellationToken).ConfigureAwait(false);
    }
}
