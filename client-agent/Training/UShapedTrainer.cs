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
public sealed class UShapedTrainer(HospitalRun session, TrainingLimits limits)
{
    private int[]? order;
    private int orderEpoch = -1;

    public async Task<TrainingOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var manifest = session.Manifest;
        var train = session.Data.Train;
        var batchesPerEpoch = (train.Count + manifest.BatchSize - 1) / manifest.BatchSize;
        using var layers = UShapedLayers.Create(manifest, session.ConsortiumSecret);
        Restore(session, layers);
        if (session.State.Pending is { Kind: not (FrameKind.Forward or FrameKind.Backward) } stale)
        {
            session.Output.Info($"dropping interrupted {stale.Kind} message #{stale.Sequence}");
            session.Commit(session.State with { Pending = null });
            session.Folder.DeletePendingFrame();
        }
        return await EpochLoop.RunAsync(session, limits, batchesPerEpoch,
            pending => $"resuming: re-sending {pending.Kind.ToString().ToLowerInvariant()} leg #{pending.Sequence} of batch {pending.Batch + 1}, epoch {pending.Epoch + 1}",
            tracker => StepAsync(layers, train, batchesPerEpoch, tracker, cancellationToken),
            epochBefore => ValidateAsync(layers, epochBefore, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    // The epoch's validation metric, computed here from the server's outputs, joins that epoch's history entry.
    private async Task ValidateAsync(UShapedLayers layers, int epochBefore, CancellationToken cancellationToken)
    {
        var predictions = await UShapedPrediction.PredictAsync(session, layers, session.Data.Validation, null, cancellationToken).ConfigureAwait(false);
        var (metric, value) = EvaluationReport.Score(session, "validation", session.Data.Validation, predictions).Headline;
        var entry = TrainingHistoryFile.Load(session.Folder.HistoryPath).FirstOrDefault(h => h.Epoch == epochBefore + 1);
        if (entry is not null) TrainingHistoryFile.Record(session.Folder.HistoryPath, entry with { ValidationMetric = metric, ValidationValue = value });
        session.Output.Info(FormattableString.Invariant($"epoch {epochBefore + 1}: mean train loss {entry?.MeanTrainLoss:F4}, validation {metric} {value:F4}"));
    }

    /// <summary>Loads the head and tail the state names (evaluation uses the same).</summary>
    public static void Restore(HospitalRun session, UShapedLayers layers)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(layers);
        var s = session.State;
        byte[]? Read(string? file) => file is null ? null : session.Folder.ReadFile(file);
        layers.Restore(Read(s.ClientWeights), Read(s.OptimizerState), Read(s.TailWeights), Read(s.TailOptimizerState));
    }

    private async Task StepAsync(UShapedLayers layers, TrainingSet train, int batchesPerEpoch, IProgressTracker tracker, CancellationToken ct)
    {
        var manifest = session.Manifest;
        var pending = session.State.Pending;
        var epoch = pending?.Epoch ?? session.State.Epoch;
        var batch = pending?.Batch ?? session.State.Batch;
        if (orderEpoch != epoch)
        {
            order = BatchOrder.Shuffle(train.Count, manifest.Seed ^ session.HospitalSalt, epoch);
            orderEpoch = epoch;
        }
        var start = batch * manifest.BatchSize;
        var n = Math.Min(manifest.BatchSize, train.Count - start);
        var clock = Stopwatch.StartNew();
        // The head is stepped only at the end of the batch, so this forward is the one leg 1 carried.
        using var activations = layers.HeadForward(train, order.AsSpan(start, n), train: true, out var targets);

        if (pending is null)
        {
            var sequence = session.State.NextSequence;
            var values = activations.ToFloats();
            ClientLayer.AddNoise(values, manifest.Privacy.NoiseSigma);
            var frame = session.Frames.SealFeatures(sequence, [new FrameTensor(manifest.FeatureType, activations.shape, values)]);
            pending = new PendingFrame { Sequence = sequence, Kind = FrameKind.Forward, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256, Epoch = epoch, Batch = batch };
            session.Folder.WriteLegFrame(sequence, frame.Bytes);
            // Both sequences are taken now: s for the forward leg, s + 1 for its backward leg.
            session.Commit(session.State with { Pending = pending, NextSequence = sequence + 2 });
        }

        if (pending.Kind == FrameKind.Forward)
        {
            await session.Frames.SendAsync(pending, session.Folder.ReadLegFrame(pending.Sequence), ct).ConfigureAwait(false);
            var reply = await session.Frames.AwaitReplyAsync(pending.Sequence, ct).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await session.RejectedAsync(reply, ct).ConfigureAwait(false);
            var outputs = await ReplyFrames.ReadAsync(session, reply, ReplyKind.Outputs, ct).ConfigureAwait(false);
            var shape = RequireOutputs(outputs, n, pending.Sequence, layers);
            var (loss, outputGradient) = layers.TailStep(outputs[0].Values, shape, targets);
            OutputGradientDefence.Apply(outputGradient, targets.AsSpan(0, n), n, manifest.UShaped.Defence);
            var legTwo = pending.Sequence + 1;
            var frame = session.Frames.SealOutputGradients(legTwo, [new FrameTensor(manifest.FeatureType, shape, outputGradient)]);
            session.Folder.WriteLegFrame(legTwo, frame.Bytes);
            var (tail, tailOptimizer) = session.Folder.WriteTailWeights(session.State.ClientSteps + 1, layers.Tail.SaveState(), layers.TailOptimizer.SaveState());
            pending = new PendingFrame { Sequence = legTwo, Kind = FrameKind.Backward, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256, Epoch = epoch, Batch = batch, Loss = loss };
            // The commit point of the tail step: from here a restart re-sends this leg 2, never recomputes it.
            session.Commit(session.State with { Pending = pending, TailWeights = tail, TailOptimizerState = tailOptimizer });
            session.Folder.DeleteLegFrames(keep: legTwo);
            await session.Frames.DeleteAsync(reply.Message, ct).ConfigureAwait(false);
        }

        await session.Frames.SendAsync(pending, session.Folder.ReadLegFrame(pending.Sequence), ct).ConfigureAwait(false);
        var answer = await session.Frames.AwaitReplyAsync(pending.Sequence, ct).ConfigureAwait(false);
        if (answer.Reply.Kind == ReplyKind.Rejected) throw await session.RejectedAsync(answer, ct).ConfigureAwait(false);
        var tensors = await ReplyFrames.ReadAsync(session, answer, ReplyKind.Gradients, ct).ConfigureAwait(false);
        if (tensors.Length != 1 || !tensors[0].Shape.SequenceEqual(activations.shape))
        {
            throw new AgentException(ExitCode.Protocol,
                $"gradient #{pending.Sequence} has shape {string.Join(" ", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}; expected one [{string.Join(",", activations.shape)}] tensor. Nothing was applied.");
        }
        layers.HeadBackward(activations, tensors[0].Values);
        var stepsApplied = session.State.ClientSteps + 1;
        var (clientFile, optimizerFile) = session.Folder.WriteWeights(stepsApplied, layers.Head.SaveState(), layers.HeadOptimizer.SaveState());
        var batchLoss = pending.Loss;
        var lossSum = session.State.EpochLossSum + (batchLoss ?? 0) * n;
        var lossSamples = session.State.EpochSamples + (batchLoss is null ? 0 : n);
        var endOfEpoch = batch + 1 == batchesPerEpoch;
        session.Commit(session.State with
        {
            Pending = null,
            LastRejection = null,
            ClientSteps = stepsApplied,
            ClientWeights = clientFile,
            OptimizerState = optimizerFile,
            Epoch = endOfEpoch ? epoch + 1 : epoch,
            Batch = endOfEpoch ? 0 : batch + 1,
            EpochLossSum = endOfEpoch ? 0 : lossSum,
            EpochSamples = endOfEpoch ? 0 : lossSamples,
        });
        if (endOfEpoch)
        {
            TrainingHistoryFile.Record(session.Folder.HistoryPath,
                new EpochHistory(epoch + 1, lossSamples > 0 ? lossSum / lossSamples : double.NaN, train.Count, batchesPerEpoch, null, null, DateTimeOffset.UtcNow));
        }
        session.Folder.RemoveStaleWeights(session.State);
        session.Folder.DeleteLegFrames();
        await session.Frames.DeleteAsync(answer.Message, ct).ConfigureAwait(false);
        tracker.Report(new StepProgress("train", epoch + 1, manifest.Epochs, batch + 1, batchesPerEpoch, batchLoss, n / Math.Max(clock.Elapsed.TotalSeconds, 1e-6), pending.Sequence));
    }

    /// <summary>The server's outputs must be one [n, body output] tensor; returns its shape.</summary>
    internal static long[] RequireOutputs(DecodedTensor[] outputs, int n, long sequence, UShapedLayers layers)
    {
        long[] expected = [n, .. layers.Tail.InputShape];
        if (outputs.Length != 1 || !outputs[0].Shape.SequenceEqual(expected))
        {
            throw new AgentException(ExitCode.Protocol,
                $"server outputs #{sequence} have shape {string.Join(" ", outputs.Select(t => $"[{string.Join(",", t.Shape)}]"))}; expected one [{string.Join(",", expected)}] tensor. Nothing was applied.");
        }
        return expected;
    }
}
