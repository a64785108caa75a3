using System.Diagnostics;
using System.Globalization;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// The vanilla split-learning step: a hospital's activations and labels in, the server layers trained, dL/dA sealed back
/// to the hospital, the journal entry written before the reply. A redelivered step is answered from its stored gradient.
/// </summary>
public sealed class VanillaSteps(LeasedRuns runs, ServerFrameStore frames, HospitalReplies replies, StepTimeline timeline)
{
    /// <summary>
    /// Applies the step under the run's gate and returns its commit (seal and upload dL/dA, journal entry, reply), which
    /// goes on after the gate is released so the next step of the run can compute meanwhile. Commits journal in step
    /// order: each waits for the one before and fails if it failed. A step whose commit writes a checkpoint copies the run
    /// (model, optimizer, state) under the gate, so the checkpoint holds exactly the journaled steps while the next step
    /// computes.
    /// </summary>
    public async Task<Task<MessageOutcome>> TrainAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        var manifest = run.Manifest;
        if (manifest.Mode != TrainingMode.Vanilla) return Task.FromResult(await replies.RejectAsync(message, $"run '{manifest.RunId}' is {manifest.Mode}: "
            + $"per-batch 'train' messages belong to vanilla runs", ct).ConfigureAwait(false));
        if (RunEffects.IsApplied(run, message))
        {
            // Redelivered or replayed: answer from the record, never apply twice (invariant 4). The record is durable
            // only once the commits still running are.
            await run.PendingCommit.ConfigureAwait(false);
            var (blob, length, sha256, inline) = await frames.TryReadWrittenAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients,
                message.Inline is not null, ct).ConfigureAwait(false)
                ?? throw new IOException($"{message.HospitalId}#{message.Sequence} is journaled but its gradient blob is missing; the message is retried");
            var record = run.State.RecentBatches.LastOrDefault(b => b.Hospital == message.HospitalId && b.Sequence == message.Sequence);
            await replies.SendAsync(message, ReplyKind.Gradients, blob, length, sha256, record?.Loss, null, ct, inline: inline).ConfigureAwait(false);
            return Task.FromResult(MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: replay answered from the record"));
        }

        var clock = Stopwatch.StartNew();
        var (tensors, readTimings) = await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256,
            message.KeyId, ct, bounds: TrainingFrames.Bounds(run), inline: message.Inline).ConfigureAwait(false);
        TrainingFrames.RequireTrainingFrame(run, tensors);
        var entry = RunEffects.Entry(run, message, JournalKinds.Train);
        var computeStart = clock.Elapsed;
        var (loss, gradient) = RunEffects.ApplyTrain(run, message.HospitalId, message.Sequence, tensors);
        // The step's tensors were built from copies: the next frames are decoded into these arrays (the shape stays in use).
        frames.Recycle(tensors);
        // Under the gate, before the commit goes on without it: a step whose loss, weights or dL/dA is not finite (or
        // does not fit the wire type) is rejected here and undone by the router, never found out by a failing commit.
        RunEffects.RequireHealthyStep(run, loss, gradient, manifest.FeatureType, "dL/dA");
        var compute = clock.Elapsed - computeStart;
        var applied = run.State.BatchesApplied;
        // Until its journal entry exists the step is in memory only: a failed commit drops the run (MessageRouter). The
        // next step's entry takes the next number now, while this one may still be committing.
        run.State.Step = entry.Step + 1;
        var checkpointDue = LeasedRuns.CheckpointDue(run);
        // Still under the gate: the copy is the model after exactly this step, whatever later steps do before it is written.
        var snapshot = checkpointDue ? run.SnapshotCheckpoint() : null;
        var commit = CommitAsync(run, message, entry, applied, loss, gradient, tensors[0].Shape, run.PendingCommit, snapshot,
            new StepTimings(readTimings.TransferMs, readTimings.CryptoMs, compute.TotalMilliseconds, 0, 0, 0), ct);
        run.PendingCommit = commit;
        return commit;
    }

    private async Task<MessageOutcome> CommitAsync(LeasedRun run, FrameMessage message, JournalEntry entry, long applied, double loss, float[] gradient,
        long[] shape,
        Task previous, Checkpoint? snapshot, StepTimings timings, CancellationToken ct)
    {
        // Off the gate, beside the next step's compute; the blob is not announced before the reply, so a step that
        // fails to commit leaves at most a gradient blob that its re-application overwrites. A frame that came inside its
        // message is written to the blob its journal entry names, before the entry (a restart replays the step from it).
        // An inline request (an agent that reads inline replies) gets its dL/dA inline when it fits; the blob is kept for
        // a repeated request either way.
        var keep = message.Inline is null ? Task.CompletedTask : frames.KeepInlineFrameAsync(message, ct);
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, message.KeyId!,
            run.Manifest.FeatureType, [(gradient, shape)], message.Inline is not null, ct).ConfigureAwait(false);
        await keep.ConfigureAwait(false);
        await previous.ConfigureAwait(false);
        var commitStart = Stopwatch.GetTimestamp();
        await runs.CommitStepAsync(run, entry, snapshot, ct).ConfigureAwait(false);
        await replies.SendAsync(message, ReplyKind.Gradients, written.Blob, written.Length, written.Sha256, loss, null, ct, inline: written.Inline)
            .ConfigureAwait(false);
        timeline.Record(message.RunId, message.HospitalId, message.Sequence, timings with
        {
            EncryptMs = written.Timings.CryptoMs,
            UploadMs = written.Timings.TransferMs,
            CommitMs = Stopwatch.GetElapsedTime(commitStart).TotalMilliseconds,
        });
        // The compute time goes into the log line so an operator (and the scale benchmark, which runs the function as
        // its own process) can tell the server's compute from its storage time.
        return MessageOutcome.Completed(string.Create(CultureInfo.InvariantCulture,
            $"{message.HospitalId}#{message.Sequence}: step {applied}, loss {loss:F4}, compute {timings.ComputeMs:F1} ms"));
    }
}
