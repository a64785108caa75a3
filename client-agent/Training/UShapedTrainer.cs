using System.Diagnostics;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// U-shaped split learning at the hospital: per batch, head forward; leg 1 (`forward`, activations only) at sequence s,
/// the server's outputs back; tail forward, loss against the local labels, tail step, dL/d(output) perturbed by the
/// manifest's defence; leg 2 (`backward`) at s + 1, dL/dA back; head backward and step. Labels, losses and predictions
/// never leave the hospital. Crash-safe: each leg's sealed bytes are saved under its sequence and the state names the
/// leg in flight; leg 2 is committed (with the stepped tail) before it is sent, so a restart re-sends exactly what the
/// server may already have, and the server answers a leg it has from its record.
/// </summary>
public sealed class UShapedTrainer(HospitalRun run, TrainingLimits limits)
{
    private readonly EpochBatches batches = new(run);

    public async Task<TrainingOutcome> RunAsync(CancellationToken cancellationToken)
    {
        using var layers = UShapedLayers.Create(run.Manifest, run.ConsortiumSecret);
        Restore(run, layers);
        EpochLoop.DropInterrupted(run, kind => kind is FrameKind.Forward or FrameKind.Backward);
        // The epoch's validation metric is computed here from the server's outputs.
        return await EpochLoop.RunAsync(run, limits, batches.PerEpoch,
            pending => $"resuming: re-sending {pending.Kind.ToString().ToLowerInvariant()} leg #{pending.Sequence} of batch {pending.Batch + 1}, epoch "
                + $"{pending.Epoch + 1}",
            tracker => StepAsync(layers, tracker, cancellationToken),
            async data => (await RemotePrediction.PredictAsync(run, layers, data, ReleaseKind.Validation, PredictionRequest.DuringTraining, null,
                cancellationToken).ConfigureAwait(false)).Values, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Loads the head and tail the state names (evaluation uses the same).</summary>
    public static void Restore(HospitalRun run, UShapedLayers layers)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(layers);
        var s = run.State;
        byte[]? Read(string? file) => file is null ? null : run.Folder.ReadFile(file);
        layers.Restore(Read(s.ClientWeights), Read(s.OptimizerState), Read(s.TailWeights), Read(s.TailOptimizerState));
    }

    private async Task StepAsync(UShapedLayers layers, IProgressTracker tracker, CancellationToken ct)
    {
        var manifest = run.Manifest;
        var pending = run.State.Pending;
        var epoch = pending?.Epoch ?? run.State.Epoch;
        var batch = pending?.Batch ?? run.State.Batch;
        var rows = batches.Rows(epoch, batch);
        var n = rows.Count;
        var clock = Stopwatch.StartNew();
        // The head is stepped only at the end of the batch, so this forward is the one leg 1 carried.
        using var activations = layers.HeadForward(run.Data.Train, rows.AsSpan(), train: true, out var targets, run.Augmentation?.ForEpoch(epoch));

        if (pending is null)
        {
            var releases = ReleaseBudget.BeginsTrainingPass(run.State, epoch) ? ReleaseBudget.Count(run, ReleaseKind.Training) : run.State.Releases;
            var sequence = run.State.NextSequence;
            var frame = ActivationFrames.Seal(run, sequence, activations);
            pending = PendingFrame.For(sequence, FrameKind.Forward, frame) with { Epoch = epoch, Batch = batch };
            run.Folder.WriteLegFrame(sequence, frame.Bytes);
            // Both sequences are taken now: s for the forward leg, s + 1 for its backward leg.
            run.Commit(run.State with { Pending = pending, NextSequence = sequence + 2, Releases = releases });
        }

        if (pending.Kind == FrameKind.Forward)
        {
            await run.Frames.SendAsync(pending, run.Folder.ReadLegFrame(pending.Sequence), ct).ConfigureAwait(false);
            var reply = await run.Frames.AwaitReplyAsync(pending.Sequence, ct).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, ct).ConfigureAwait(false);
            var outputs = await ReplyFrames.ReadAsync(run, reply, ReplyKind.Outputs, ct).ConfigureAwait(false);
            var shape = RequireOutputs(outputs, n, pending.Sequence, layers);
            var (loss, outputGradient) = layers.TailStep(outputs[0].Values, shape, targets);
            OutputGradientDefence.Apply(outputGradient, targets.AsSpan(0, n), n, manifest.UShaped.Defence);
            var legTwo = pending.Sequence + 1;
            var frame = run.Frames.SealOutputGradients(legTwo, [new FrameTensor(manifest.FeatureType, shape, outputGradient)]);
            run.Folder.WriteLegFrame(legTwo, frame.Bytes);
            var (tail, tailOptimizer) = run.Folder.WriteTailWeights(run.State.ClientSteps + 1, layers.Tail.SaveState(), layers.TailOptimizer.SaveState());
            pending = PendingFrame.For(legTwo, FrameKind.Backward, frame) with { Epoch = epoch, Batch = batch, Loss = loss };
            // The commit point of the tail step: from here a restart re-sends this leg 2, never recomputes it.
            run.Commit(run.State with { Pending = pending, TailWeights = tail, TailOptimizerState = tailOptimizer });
            run.Folder.DeleteLegFrames(keep: legTwo);
            await run.Frames.DeleteAsync(reply.Message, ct).ConfigureAwait(false);
        }

        await GradientStep.SendAndApplyAsync(run, layers.HeadLayer, activations, pending, run.Folder.ReadLegFrame(pending.Sequence), epoch, batch, n,
            batches.PerEpoch, tracker, clock, ct).ConfigureAwait(false);
    }

    /// <summary>The server's outputs must be one [n, body output] tensor; returns its shape.</summary>
    internal static long[] RequireOutputs(DecodedTensor[] outputs, int n, long sequence, UShapedLayers layers)
    {
        long[] expected = [n, .. layers.Tail.InputShape];
        if (outputs.Length != 1 || !outputs[0].Shape.SequenceEqual(expected))
        {
            throw new AgentException(ExitCode.Protocol,
                $"server outputs #{sequence} have shape {string.Join(" ", outputs.Select(t => $"[{string.Join(",", t.Shape)}]"))}; expected one "
                    + $"[{string.Join(",", expected)}] tensor. Nothing was applied.");
        }
        return expected;
    }
}
