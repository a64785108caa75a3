using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// The U-shaped exchange, two legs per batch, each exactly once: `forward` (the head's activations in, the body's
/// outputs sealed back, the leg opened in the journal) and `backward` at the next sequence (dL/d(output) in, the body
/// recomputed on the first leg's activations, backward, optimizer step, dL/dA sealed back). No label, loss or
/// prediction reaches the server. A redelivered leg is answered from its stored reply.
/// </summary>
public sealed class UShapedSteps(LeasedRuns runs, ServerFrameStore frames, HospitalReplies replies)
{
    public async Task<MessageOutcome> ForwardAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        if (run.Manifest.Mode != TrainingMode.UShaped) return await WrongModeAsync(run, message, ct).ConfigureAwait(false);
        if (RunEffects.IsApplied(run, message)) return await AnswerFromRecordAsync(message, ReplyKind.Outputs, ct).ConfigureAwait(false);

        var activations = await TrainingFrames.ReadActivationsAsync(frames, run, message, "a U-shaped forward leg holds the head's activations only", ct)
            .ConfigureAwait(false);
        var batch = TrainingFrames.Batch(activations);
        var outputs = run.Model.ForwardOutputs(activations.Values, batch);
        RunEffects.RequireHealthyStep(run, null, outputs, run.Manifest.FeatureType, "the server's output");
        // Sealed and uploaded before the leg opens: a reply that cannot be sealed rejects the leg with nothing changed (a
        // leg left open by a rejected message let its backward leg be journaled without it, and the journal never reopened).
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.ServerOutputs, message.KeyId!,
            run.Manifest.FeatureType, [(outputs, [batch, .. run.Model.OutputShape])], ct).ConfigureAwait(false);
        var abandoned = run.State.OpenForwards.GetValueOrDefault(message.HospitalId);
        var entry = RunEffects.Entry(run, message, JournalKinds.Forward);
        // Until the journal entry exists the leg is in memory only: a failure from here drops the run (MessageRouter).
        RunEffects.ApplyForward(run, message.HospitalId,
            new OpenForward(message.Sequence, message.Blob!, message.Length, message.Sha256!, message.KeyId!, DateTimeOffset.UtcNow));
        await runs.CommitAsync(run, entry, ct).ConfigureAwait(false);
        await replies.SendAsync(message, ReplyKind.Outputs, written.Blob, written.Length, written.Sha256, null, null, ct).ConfigureAwait(false);
        var note = abandoned is null ? "" : $" (forward leg #{abandoned.Sequence} never got its backward leg and is dropped)";
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: forward leg, {batch} outputs{note}");
    }

    public async Task<MessageOutcome> BackwardAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        var manifest = run.Manifest;
        if (manifest.Mode != TrainingMode.UShaped) return await WrongModeAsync(run, message, ct).ConfigureAwait(false);
        if (RunEffects.IsApplied(run, message)) return await AnswerFromRecordAsync(message, ReplyKind.Gradients, ct).ConfigureAwait(false);

        var open = run.State.OpenForwards.GetValueOrDefault(message.HospitalId);
        if (open is null || open.Sequence != message.Sequence - 1)
        {
            var state = open is null ? "none is open" : $"the open one is #{open.Sequence}";
            return await replies.RejectAsync(message, $"backward leg #{message.Sequence} answers forward leg #{message.Sequence - 1}, but {state} for "
                + $"hospital '{message.HospitalId}': send the batch's forward leg first", ct).ConfigureAwait(false);
        }
        var (activations, outputGradient) = await ReadLegsAsync(frames, message.RunId, message.HospitalId, open, message.Sequence, message.Blob,
            message.Length, message.Sha256, message.KeyId, TrainingFrames.Bounds(run), ct).ConfigureAwait(false);
        TrainingFrames.RequireCut(run, activations);
        long[] expected = [activations.Shape[0], .. run.Model.OutputShape];
        if (!outputGradient.Shape.SequenceEqual(expected))
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"the backward leg's gradient has shape [{string.Join(",", outputGradient.Shape)}]; "
                + $"the forward leg's outputs were [{string.Join(",", expected)}]");
        }
        // Checked after the frames, so a forged or malformed leg is refused for what it is.
        var age = DateTimeOffset.UtcNow - open.OpenedAt;
        if (age.TotalSeconds > manifest.UShaped.SecondLegTimeoutSeconds)
        {
            var reason = FormattableString.Invariant(
                $"backward leg #{message.Sequence} expired: its forward leg #{open.Sequence} was opened {age.TotalSeconds:F0} s ago, more than ")
                + FormattableString.Invariant(
                    $"uShaped.secondLegTimeoutSeconds ({manifest.UShaped.SecondLegTimeoutSeconds} s); nothing was applied, send the batch again ")
                + "from its forward leg";
            return await replies.RejectAsync(message, reason, ct).ConfigureAwait(false);
        }
        // Before the optimizer: an all-3e38 gradient gave a finite dL/dA and NaN weights for every hospital after it.
        TrainingFrames.RequireBounded(activations, "the forward leg's activations");
        run.ValueBounds.RequireGradient(outputGradient, "the backward leg's gradient");
        var entry = RunEffects.Entry(run, message, JournalKinds.Backward);
        var gradient = RunEffects.ApplyBackward(run, message.HospitalId, message.Sequence, activations, outputGradient);
        // From here a rejection (non-finite step, unsealable dL/dA) drops the run: the step is undone (MessageRouter).
        RunEffects.RequireHealthyStep(run, null, gradient, manifest.FeatureType, "dL/dA");
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, message.KeyId!,
            manifest.FeatureType, [(gradient, activations.Shape)], ct).ConfigureAwait(false);
        await runs.CommitAsync(run, entry, ct).ConfigureAwait(false);
        await replies.SendAsync(message, ReplyKind.Gradients, written.Blob, written.Length, written.Sha256, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: backward leg, step {run.State.BatchesApplied}");
    }

    /// <summary>Both legs' frames: the forward leg's activations (from its record) and the backward leg's dL/d(output); one tensor each.</summary>
    public static async Task<(DecodedTensor Activations, DecodedTensor OutputGradient)> ReadLegsAsync(ServerFrameStore frames, string run, string hospital,
        OpenForward open,
        long sequence, string? blob, long length, string? sha256, string? keyId, FrameBounds bounds, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(frames);
        ArgumentNullException.ThrowIfNull(open);
        var legOne = (await frames.ReadAsync(run, hospital, open.Sequence, open.Blob, open.Length, open.Sha256, open.KeyId, ct, bounds: bounds)
            .ConfigureAwait(false)).Tensors;
        var legTwo = (await frames.ReadAsync(run, hospital, sequence, blob, length, sha256, keyId, ct, PayloadKind.OutputGradients, bounds)
            .ConfigureAwait(false)).Tensors;
        if (legOne.Length != 1 || legTwo.Length != 1)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"U-shaped legs hold one tensor each (no labels); the forward leg has "
                + $"{legOne.Length}, the backward leg {legTwo.Length}");
        }
        return (legOne[0], legTwo[0]);
    }

    private async Task<MessageOutcome> AnswerFromRecordAsync(FrameMessage message, ReplyKind kind, CancellationToken ct)
    {
        // Redelivered or replayed: answer from the stored reply, never apply twice (invariant 4).
        var written = kind == ReplyKind.Outputs ? PayloadKind.ServerOutputs : PayloadKind.Gradients;
        var (blob, length, sha256) = await frames.TryReadWrittenAsync(message.RunId, message.HospitalId, message.Sequence, written, ct).ConfigureAwait(false)
            ?? throw new IOException($"{message.HospitalId}#{message.Sequence} is journaled but its {written} blob is missing; the message is retried");
        await replies.SendAsync(message, kind, blob, length, sha256, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: replayed {message.Kind.ToString().ToLowerInvariant()} leg answered from "
            + $"the record");
    }

    private Task<MessageOutcome> WrongModeAsync(LeasedRun run, FrameMessage message, CancellationToken ct) =>
        replies.RejectAsync(message, $"run '{run.Manifest.RunId}' is {run.Manifest.Mode}: '{message.Kind.ToString().ToLowerInvariant()}' legs belong to "
            + $"U-shaped runs", ct);
}
