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
public sealed class VanillaTrainer(HospitalRun run, TrainingLimits limits)
{
    private readonly EpochBatches batches = new(run);

    public async Task<TrainingOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        using var client = ClientLayer.Create(manifest, trainable: true, run.ConsortiumSecret);
        var state = run.State;
        if (state.ClientWeights is { } weights)
        {
            client.Restore(run.Folder.ReadFile(weights), state.OptimizerState is { } o ? run.Folder.ReadFile(o) : null);
        }
        EpochLoop.DropInterrupted(run, kind => kind == FrameKind.Train);
        async Task<float[]> Predict(TrainingSet data) =>
            (await RemotePrediction.PredictAsync(run, client, data, ReleaseKind.Validation,
                PredictionRequest.DuringTraining, null, cancellationToken).ConfigureAwait(false)).Values;
        // An epoch's validation that was interrupted or rejected runs again now, rather than its metric silently
        // missing from history.json and `status`: at batch 0 no step of the next epoch is applied yet, so the client
        // weights are exactly those the validation was for.
        if (limits.ValidateEachEpoch && run.Data.Validation.Count > 0 && run.State is { Epoch: > 0, Batch: 0 } at &&
            TrainingHistoryFile.Load(run.Folder.HistoryPath).FirstOrDefault(h => h.Epoch == at.Epoch) is { ValidationMetric: null })
        {
            run.Output.Info($"validating epoch {at.Epoch} again: its validation did not finish");
            await EpochLoop.ValidateAsync(run, at.Epoch - 1, Predict, cancellationToken).ConfigureAwait(false);
        }
        return await EpochLoop.RunAsync(run, limits, batches.PerEpoch,
            pending => $"resuming: re-sending pending batch {pending.Batch + 1} of epoch {pending.Epoch + 1} as message #{pending.Sequence}",
            tracker => StepAsync(client, tracker, cancellationToken), Predict, cancellationToken).ConfigureAwait(false);
    }

    private async Task StepAsync(ClientLayer client, IProgressTracker tracker, CancellationToken cancellationToken)
    {
        var state = run.State;
        var pending = state.Pending;
        var epoch = pending?.Epoch ?? state.Epoch;
        var batch = pending?.Batch ?? state.Batch;
        var rows = batches.Rows(epoch, batch);
        var clock = Stopwatch.StartNew();

        using var activations = client.Forward(run.Data.Train, rows.AsSpan(), train: true, out var targets, run.Augmentation?.ForEpoch(epoch));
        byte[] sealedBytes;
        if (pending is null)
        {
            // The first batch of an epoch releases a new pass: counted (and checked against the budget) before it is sealed.
            var releases = ReleaseBudget.BeginsTrainingPass(state, epoch) ? ReleaseBudget.Count(run, ReleaseKind.Training) : state.Releases;
            var sequence = state.NextSequence;
            var frame = ActivationFrames.Seal(run, sequence, activations, targets);
            pending = PendingFrame.For(sequence, FrameKind.Train, frame) with { Epoch = epoch, Batch = batch };
            run.Folder.WritePendingFrame(frame.Bytes);
            run.Commit(state with { Pending = pending, NextSequence = sequence + 1, Releases = releases });
            sealedBytes = frame.Bytes;
        }
        else
        {
            sealedBytes = run.Folder.ReadPendingFrame(pending.Sequence);
        }
        await GradientStep.SendAndApplyAsync(run, client, activations, pending, sealedBytes, epoch, batch, rows.Count, batches.PerEpoch, tracker, clock,
            cancellationToken).ConfigureAwait(false);
    }
}
