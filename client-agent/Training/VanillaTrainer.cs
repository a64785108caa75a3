using System.Diagnostics;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Vanilla split learning at the hospital: per batch, client forward, upload the sealed frame, enqueue `train`, await
/// dL/dA, client backward and optimizer step. Crash-safe ordering per batch:
/// (1) persist the sealed frame and the state with the batch pending and the sequence taken, (2) send, (3) await the
/// reply, (4) apply it and write new weight files, (5) commit the state with the cursor advanced, (6) delete the reply.
/// A restart between (1) and (5) re-sends the same bytes under the same sequence and recomputes the forward pass of
/// the same batch, so no batch is lost or applied twice.
/// </summary>
public sealed class VanillaTrainer(HospitalRun session, TrainingLimits limits)
{
    public async Task<TrainingOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var manifest = session.Manifest;
        var train = session.Data.Train;
        var batchesPerEpoch = (train.Count + manifest.BatchSize - 1) / manifest.BatchSize;
        using var client = ClientLayer.Create(manifest, trainable: true, session.ConsortiumSecret);
        var state = session.State;
        if (state.ClientWeights is { } weights)
        {
            client.Restore(session.Folder.ReadFile(weights), state.OptimizerState is { } o ? session.Folder.ReadFile(o) : null);
        }
        if (state.Pending is { Kind: not FrameKind.Train } stale)
        {
            // An interrupted evaluation: nothing to apply; its sequence number stays used and its late reply is dropped.
            session.Output.Info($"dropping interrupted {stale.Kind} message #{stale.Sequence}");
            session.Commit(state with { Pending = null });
            session.Folder.DeletePendingFrame();
        }
        // An epoch's validation that was interrupted or rejected runs again now, rather than its metric silently
        // missing from history.json and `status`: at batch 0 no step of the next epoch is applied yet, so the client
        // weights are exactly those the validation was for.
        if (limits.ValidateEachEpoch && session.Data.Validation.Count > 0 && session.State is { Epoch: > 0, Batch: 0 } at &&
            TrainingHistoryFile.Load(session.Folder.HistoryPath).FirstOrDefault(h => h.Epoch == at.Epoch) is { ValidationMetric: null })
        {
            session.Output.Info($"validating epoch {at.Epoch} again: its validation did not finish");
            await ValidateAsync(client, at.Epoch - 1, cancellationToken).ConfigureAwait(false);
        }
        return await EpochLoop.RunAsync(session, limits, batchesPerEpoch,
            pending => $"resuming: re-sending pending batch {pending.Batch + 1} of epoch {pending.Epoch + 1} as message #{pending.Sequence}",
            tracker => StepAsync(client, train, batchesPerEpoch, tracker, cancellationToken),
            epochBefore => ValidateAsync(client, epochBefore, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private int[]? _order;
    private int _orderEpoch = -1;

    private async Task StepAsync(ClientLayer client, TrainingSet train, int batchesPerEpoch, IProgressTracker tracker, CancellationToken cancellationToken)
    {
        var manifest = session.Manifest;
        var state = session.State;
        var pending = state.Pending;
        var epoch = pending?.Epoch ?? state.Epoch;
        var batch = pending?.Batch ?? state.Batch;
        if (_orderEpoch != epoch)
        {
            _order = BatchOrder.Shuffle(train.Count, manifest.Seed ^ session.HospitalSalt, epoch);
            _orderEpoch = epoch;
        }
        var start = batch * manifest.BatchSize;
        var n = Math.Min(manifest.BatchSize, train.Count - start);
        var clock = Stopwatch.StartNew();

        using var activations = client.Forward(train, _order.AsSpan(start, n), train: true, out var targets);
        byte[] sealedBytes;
        if (pending is null)
        {
            var sequence = state.NextSequence;
            var values = activations.ToFloats();
            ClientLayer.AddNoise(values, manifest.Privacy.NoiseSigma);
            var frame = session.Frames.SealFeatures(sequence,
            [
                new FrameTensor(manifest.FeatureType, activations.shape, values),
                new FrameTensor(SplitFunctions.Core.Contract.ElementType.Float32, [n, 1], targets),
            ]);
            pending = new PendingFrame { Sequence = sequence, Kind = FrameKind.Train, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256, Epoch = epoch, Batch = batch };
            session.Folder.WritePendingFrame(frame.Bytes);
            session.Commit(state with { Pending = pending, NextSequence = sequence + 1 });
            sealedBytes = frame.Bytes;
        }
        else
        {
            sealedBytes = session.Folder.ReadPendingFrame(pending.Sequence);
        }

        await session.Frames.SendAsync(pending, sealedBytes, cancellationToken).ConfigureAwait(false);
        var reply = await session.Frames.AwaitReplyAsync(pending.Sequence, cancellationToken).ConfigureAwait(false);
        if (reply.Reply.Kind == ReplyKind.Rejected) throw await session.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
        var tensors = await ReplyFrames.ReadAsync(session, reply, ReplyKind.Gradients, cancellationToken).ConfigureAwait(false);
        var shape = activations.shape;
        if (tensors.Length != 1 || !tensors[0].Shape.SequenceEqual(shape))
        {
            throw new AgentException(ExitCode.Protocol,
                $"gradient #{pending.Sequence} has shape {string.Join(" ", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}; expected one [{string.Join(",", shape)}] tensor. Nothing was applied.");
        }

        client.ApplyGradient(activations, tensors[0].Values);
        var stepsApplied = session.State.ClientSteps + 1;
        var (clientFile, optimizerFile) = session.Folder.WriteWeights(stepsApplied, client.Network.SaveState(), client.Optimizer!.SaveState());

        var loss = reply.Reply.Loss;
        var lossSum = session.State.EpochLossSum + (loss ?? 0) * n;
        var lossSamples = session.State.EpochSamples + (loss is null ? 0 : n);
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
            await ProgressPublisher.PublishAsync(session, cancellationToken).ConfigureAwait(false);
        }
        session.Folder.RemoveStaleWeights(session.State);
        session.Folder.DeletePendingFrame();
        await session.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
        tracker.Report(new StepProgress("train", epoch + 1, manifest.Epochs, batch + 1, batchesPerEpoch, loss, n / Math.Max(clock.Elapsed.TotalSeconds, 1e-6), pending.Sequence));
    }

    private async Task ValidateAsync(ClientLayer client, int epoch, CancellationToken cancellationToken)
    {
        var validation = session.Data.Validation;
        var predictions = await RemotePrediction.PredictAsync(session, client, validation, null, cancellationToken).ConfigureAwait(false);
        var score = EvaluationReport.Score(session, "validation", validation, predictions);
        var (metric, value) = score.Headline;
        var history = TrainingHistoryFile.Load(session.Folder.HistoryPath);
        var entry = history.FirstOrDefault(h => h.Epoch == epoch + 1);
        if (entry is not null)
        {
            TrainingHistoryFile.Record(session.Folder.HistoryPath, entry with { ValidationMetric = metric, ValidationValue = value });
        }
        await ProgressPublisher.PublishAsync(session, cancellationToken).ConfigureAwait(false);
        session.Output.Info(FormattableString.Invariant($"epoch {epoch + 1}: mean train loss {entry?.MeanTrainLoss:F4}, validation {metric} {value:F4}"));
    }
}
