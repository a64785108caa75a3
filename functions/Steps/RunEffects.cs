using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// What an applied message changes in a run, coded once: the live handlers apply a message through these, and
/// <see cref="ReplayAsync"/> applies a journal entry through the same ones when a run is reopened (invariant 7).
/// </summary>
public static class RunEffects
{
    /// <summary>A `train` message: the server step on its frame and the record of it; returns the loss and dL/dA.</summary>
    public static (double Loss, float[] ActivationGradient) ApplyTrain(LeasedRun run, string hospital, long sequence, DecodedTensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(tensors);
        var batch = TrainingFrames.Batch(tensors[0]);
        run.MarkApplied();
        var (loss, gradient) = run.Model.TrainStep(tensors[0].Values, tensors[1].Values, batch);
        run.State.BatchesApplied++;
        run.State.RecordBatch(hospital, sequence, loss, batch);
        Advance(run.State, hospital, sequence);
        return (loss, gradient);
    }

    /// <summary>A U-shaped `forward` leg: opens the hospital's batch (a newer forward leg replaces an abandoned one).</summary>
    public static void ApplyForward(LeasedRun run, string hospital, OpenForward open)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(open);
        run.MarkApplied();
        run.State.OpenForwards[hospital] = open;
        Advance(run.State, hospital, open.Sequence);
    }

    /// <summary>A U-shaped `backward` leg: the server step for the open forward leg's activations; returns dL/dA and closes the leg.</summary>
    public static float[] ApplyBackward(LeasedRun run, string hospital, long sequence, DecodedTensor activations, DecodedTensor outputGradient)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(outputGradient);
        var batch = TrainingFrames.Batch(activations);
        run.MarkApplied();
        var gradient = run.Model.BackwardFromOutputs(activations.Values, outputGradient.Values, batch);
        run.State.BatchesApplied++;
        run.State.OpenForwards.Remove(hospital);
        Advance(run.State, hospital, sequence);
        return gradient;
    }

    /// <summary>A `chunk` message: the chunk joins the run's index of temporal features.</summary>
    public static void ApplyChunk(LeasedRun run, FeatureChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(chunk);
        run.MarkApplied();
        run.State.Chunks.Add(chunk);
        Advance(run.State, chunk.Hospital, chunk.Sequence);
    }

    /// <summary>A `done` message: the hospital's upload is complete with this many chunks.</summary>
    public static void ApplyDone(LeasedRun run, string hospital, long sequence, int chunkCount)
    {
        ArgumentNullException.ThrowIfNull(run);
        run.MarkApplied();
        run.State.Done[hospital] = chunkCount;
        Advance(run.State, hospital, sequence);
    }

    /// <summary>Whether this message was applied already (a redelivery or a replay: invariant 4).</summary>
    public static bool IsApplied(LeasedRun run, FrameMessage message)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        // Chunks are not awaited one by one (the agent sends the next before the last is answered), so a redelivery after a
        // crash, an outage or a re-queue can bring a later chunk first: a chunk counts as applied only when it is indexed,
        // never because a later one raised the watermark (that lost the earlier chunk and stalled `done` for good).
        if (message.Kind == FrameKind.Chunk)
        {
            return run.State.Chunks.Exists(c => c.Hospital == message.HospitalId && c.Sequence == message.Sequence);
        }
        var watermark = run.State.Watermarks.GetValueOrDefault(message.HospitalId, -1);
        // A pipelined hospital has up to RunManifest.MaxPipelineDepth training steps in flight, and the queue (a redelivery,
        // a retry after a failed commit) may bring a later one first: within that window a step counts as applied only if
        // its record exists, so an earlier step arriving late is applied once, in arrival order, never lost.
        if (message.Kind == FrameKind.Train && message.Sequence <= watermark && run.State.InPipelineWindow(message.HospitalId, message.Sequence))
        {
            return run.State.RecentBatches.Exists(b => b.Hospital == message.HospitalId && b.Sequence == message.Sequence);
        }
        return message.Sequence <= watermark;
    }

    /// <summary>The journal entry that records an applied message (its step is the run's next).</summary>
    public static JournalEntry Entry(LeasedRun run, FrameMessage message, string kind)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        return new(run.State.Step, kind, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId ?? "",
            message.ChunkCount);
    }

    /// <summary>Re-applies one journal entry written after the checkpoint, exactly as the message was applied.</summary>
    public static async Task ReplayAsync(LeasedRun run, JournalEntry entry, ServerFrameStore frames, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(frames);
        switch (entry.Kind)
        {
            case JournalKinds.Train:
                var (tensors, _) = await frames.ReadAsync(run.Manifest.RunId, entry.Hospital, entry.Sequence, entry.Blob, entry.Length, entry.Sha256,
                    entry.KeyId, ct, bounds: TrainingFrames.Bounds(run)).ConfigureAwait(false);
                ApplyTrain(run, entry.Hospital, entry.Sequence, tensors);
                frames.Recycle(tensors);
                break;
            case JournalKinds.Forward:
                ApplyForward(run, entry.Hospital,
                    new OpenForward(entry.Sequence, entry.Blob!, entry.Length, entry.Sha256!, entry.KeyId, DateTimeOffset.UtcNow));
                break;
            case JournalKinds.Backward:
                var open = run.State.OpenForwards.GetValueOrDefault(entry.Hospital)
                    ?? throw new InvalidDataException($"run '{run.Manifest.RunId}': journal step {entry.Step} is a backward leg of {entry.Hospital} without "
                        + $"an open forward leg");
                var (legOne, legTwo) = await UShapedSteps.ReadLegsAsync(frames, run.Manifest.RunId, entry.Hospital, open, entry.Sequence, entry.Blob,
                    entry.Length, entry.Sha256, entry.KeyId, TrainingFrames.Bounds(run), ct).ConfigureAwait(false);
                ApplyBackward(run, entry.Hospital, entry.Sequence, legOne, legTwo);
                break;
            case JournalKinds.Chunk:
                ApplyChunk(run, new FeatureChunk(entry.Hospital, entry.Sequence, entry.Blob!, entry.Length, entry.Sha256!, entry.KeyId));
                break;
            case JournalKinds.Done:
                ApplyDone(run, entry.Hospital, entry.Sequence, entry.ChunkCount ?? 0);
                break;
            default:
                throw new InvalidDataException($"run '{run.Manifest.RunId}': journal step {entry.Step} has unknown kind '{entry.Kind}'");
        }
        run.State.Step = entry.Step + 1;
    }

    /// <summary>
    /// After a step, before anything is sealed or journaled: the loss, the reply's values (finite and representable in the
    /// wire type it is sealed as) and the server's weights and optimizer state must all be finite. Otherwise the message is
    /// rejected with the reason, and the router drops the run so the step is undone (invariant 9).
    /// </summary>
    public static void RequireHealthyStep(LeasedRun run, double? loss, float[] reply, ElementType wireType, string what)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(reply);
        string? fault = null;
        if (loss is { } l && !double.IsFinite(l)) fault = $"the batch's loss is {l}";
        else if (TensorFrame.IndexOfNonFinite(reply) is var bad and >= 0) fault = $"{what} element {bad} is {reply[bad]}";
        else if (wireType == ElementType.Float16 && IndexBeyondHalf(reply) is var big and >= 0)
        {
            fault = FormattableString.Invariant($"{what} element {big} is {reply[big]:G6}, beyond fp16 (the run's feature type)");
        }
        else if (!run.Model.IsFinite()) fault = "the server's weights or optimizer state became non-finite";
        if (fault is not null)
        {
            throw new ProtocolException(ProtocolRejection.NonFinite, $"{fault} after this message's step: the step was undone and nothing was applied; the "
                + "hospital's values are out of the range the model can train on (check its data and learning rate)");
        }
    }

    private static int IndexBeyondHalf(float[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (Math.Abs(values[i]) > (float)Half.MaxValue) return i;
        }
        return -1;
    }

    private static void Advance(RunState state, string hospital, long sequence) =>
        state.Watermarks[hospital] = Math.Max(state.Watermarks.GetValueOrDefault(hospital, -1), sequence);
}
