using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// Temporal mode's index of feature chunks (Algorithm 1): each chunk validated on arrival so a bad one is rejected while
/// the hospital can still hear about it, each hospital's `done` checked against what was indexed, and the epochs
/// started once every hospital is done.
/// </summary>
public sealed class TemporalChunks(LeasedRuns runs, ServerFrameStore frames, HospitalReplies replies, TemporalEpochs epochs)
{
    /// <summary>
    /// Deliveries in a row a `done` may be deferred while none of the chunks it counts arrives (about 2 s apart in drain
    /// mode: 5 minutes), before it is rejected.
    /// </summary>
    public const int MaxDoneDeferrals = 150;

    public async Task<MessageOutcome> IndexChunkAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        if (run.Manifest.Mode != TrainingMode.Temporal) return await replies.RejectAsync(message, $"run '{message.RunId}' is {run.Manifest.Mode}: 'chunk' "
            + $"messages belong to temporal runs", ct).ConfigureAwait(false);
        var applied = RunEffects.IsApplied(run, message);
        if (run.State.Done.ContainsKey(message.HospitalId) && !applied)
        {
            return await replies.RejectAsync(message, $"hospital '{message.HospitalId}' already marked its upload complete; a chunk after 'done' is not "
                + $"accepted", ct).ConfigureAwait(false);
        }
        if (!applied)
        {
            // Validate now (decrypt, decode, shapes, NaN) so bad data is rejected while the hospital can still hear about it.
            var tensors = (await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256,
                message.KeyId, ct, bounds: TrainingFrames.Bounds(run, FrameKind.Chunk)).ConfigureAwait(false)).Tensors;
            TrainingFrames.RequireTrainingFrame(run, tensors, FrameKind.Chunk);
            var entry = RunEffects.Entry(run, message, JournalKinds.Chunk);
            RunEffects.ApplyChunk(run, new FeatureChunk(message.HospitalId, message.Sequence, message.Blob!, message.Length, message.Sha256!, message.KeyId!));
            await runs.CommitAsync(run, entry, ct).ConfigureAwait(false);
        }
        await replies.SendAsync(message, ReplyKind.Accepted, null, 0, null, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: chunk indexed ({run.State.Chunks.Count} in all)");
    }

    public async Task<MessageOutcome> CompleteHospitalAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        var state = run.State;
        if (run.Manifest.Mode != TrainingMode.Temporal) return await replies.RejectAsync(message, $"run '{message.RunId}' is {run.Manifest.Mode}: 'done' "
            + $"messages belong to temporal runs", ct).ConfigureAwait(false);
        var expected = message.ChunkCount ?? 0;
        var indexed = state.Chunks.Count(c => c.Hospital == message.HospitalId);
        if (!state.Done.ContainsKey(message.HospitalId))
        {
            // Chunks take distinct sequences below their `done`, so more than that many were never sent: waiting would
            // defer the message forever.
            if (expected > message.Sequence) return await replies.RejectAsync(message, $"hospital '{message.HospitalId}' says it sent {expected} chunks, "
                + $"but its 'done' is message #{message.Sequence}, so at most {message.Sequence} chunks came before it", ct).ConfigureAwait(false);
            if (indexed < expected)
            {
                // Chunks may still be on the queue behind their `done` (the agent does not wait between them), but not for ever:
                // a `done` counting chunks that were never sent would otherwise come back every 2 s for good.
                var deferrals = run.DoneDeferrals.TryGetValue(message.HospitalId, out var last) && last.Indexed == indexed ? last.Deferrals + 1 : 1;
                if (deferrals <= MaxDoneDeferrals)
                {
                    run.DoneDeferrals[message.HospitalId] = (indexed, deferrals);
                    return MessageOutcome.Deferred($"{message.HospitalId}: {indexed} of {expected} chunks indexed so far");
                }
                run.DoneDeferrals.Remove(message.HospitalId);
                return await replies.RejectAsync(message, $"hospital '{message.HospitalId}' says it sent {expected} chunks, but only {indexed} arrived "
                    + $"and none in the last {MaxDoneDeferrals} deliveries of its 'done': the rest were never sent", ct).ConfigureAwait(false);
            }
            run.DoneDeferrals.Remove(message.HospitalId);
            if (indexed > expected) return await replies.RejectAsync(message, $"hospital '{message.HospitalId}' says it sent {expected} chunks, but {indexed} "
                + $"were indexed", ct).ConfigureAwait(false);
            var entry = RunEffects.Entry(run, message, JournalKinds.Done);
            RunEffects.ApplyDone(run, message.HospitalId, message.Sequence, expected);
            await runs.CommitAsync(run, entry, ct).ConfigureAwait(false);
            await runs.CheckpointAsync(run, ct).ConfigureAwait(false);
        }
        if (run.Manifest.Hospitals.Any(h => !state.Done.ContainsKey(h)))
        {
            await replies.SendAsync(message, ReplyKind.Accepted, null, 0, null, null, null, ct).ConfigureAwait(false);
            var waiting = string.Join(", ", run.Manifest.Hospitals.Where(h => !state.Done.ContainsKey(h)));
            return MessageOutcome.Completed($"{message.HospitalId} complete; waiting for {waiting}");
        }
        // One epoch per delivery: a kill costs at most the epoch in flight, and only kills within one epoch count
        // towards poisoning this message (docs/deploy.md).
        if (await epochs.TrainNextEpochAsync(run, ct).ConfigureAwait(false) && state.EpochsCompleted < run.Manifest.Epochs)
            return MessageOutcome.Continue($"temporal epoch {state.EpochsCompleted}/{run.Manifest.Epochs} done; the next comes with the next delivery");
        var loss = state.Epochs.LastOrDefault()?.Loss ?? double.NaN;
        await replies.SendAsync(message, ReplyKind.Accepted, null, 0, null, loss, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"temporal training complete: {state.EpochsCompleted} epochs, final loss {loss:F4}");
    }
}
