using System.Diagnostics;
using System.Globalization;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Privacy;
using TorchSharp;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The end of a training batch, the same in vanilla and U-shaped mode: the frame that asks for dL/dA goes (again) to
/// the function, its reply is checked and applied to the client layer (U-shaped: the head), the new weights are written
/// and the state is committed with the cursor advanced; at an epoch's end the history entry is written and the
/// operator's progress published; then the local frames and the reply go (the reply's delete overlapping the next batch).
/// </summary>
internal static class GradientStep
{
    public static async Task SendAndApplyAsync(HospitalRun run, ClientLayer client, torch.Tensor activations, PendingFrame pending, byte[] sealedBytes,
        int epoch, int batch, int n, int batchesPerEpoch, IProgressTracker tracker, Stopwatch clock, CancellationToken cancellationToken)
    {
        await run.Frames.SendAsync(pending, sealedBytes, cancellationToken).ConfigureAwait(false);
        var reply = await run.Frames.AwaitReplyAsync(pending.Sequence, cancellationToken).ConfigureAwait(false);
        if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
        var tensors = await ReplyFrames.ReadAsync(run, reply, ReplyKind.Gradients, cancellationToken).ConfigureAwait(false);
        var shape = activations.shape;
        if (tensors.Length != 1 || !tensors[0].Shape.SequenceEqual(shape))
        {
            throw new AgentException(ExitCode.Protocol,
                $"gradient #{pending.Sequence} has shape {string.Join(" ", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}; expected one "
                    + $"[{string.Join(",", shape)}] tensor. Nothing was applied.");
        }

        // The server's gradient is bounded per sample before the client layer applies it (privacy.gradients; feature-space hijacking).
        var gradient = tensors[0].Values;
        var check = GradientBound.Apply(gradient, (int)shape[0], run.Config.Privacy.Gradients, run.State.GradientScale);
        if (check.Clipped > 0)
        {
            run.Output.Warn(string.Create(CultureInfo.InvariantCulture,
                $"server gradient #{pending.Sequence}: {check.Clipped} of {shape[0]} per-sample gradients exceeded the bound {check.Bound:G4} (largest "
                    + $"{check.LargestNorm:G4}) and were clipped to it; a server whose gradients fall outside may be steering the client layer "
                    + $"(docs/privacy.md)"));
        }
        client.ApplyGradient(activations, gradient);
        var stepsApplied = run.State.ClientSteps + 1;
        var (clientFile, optimizerFile) = run.Folder.WriteWeights(stepsApplied, client.Network.SaveState(), client.Optimizer!.SaveState());

        // U-shaped: the loss was computed here at the tail and kept with leg 2; vanilla: the function reports it.
        var uShaped = pending.Kind == FrameKind.Backward;
        var loss = uShaped ? pending.Loss : reply.Reply.Loss;
        var lossSum = run.State.EpochLossSum + (loss ?? 0) * n;
        var lossSamples = run.State.EpochSamples + (loss is null ? 0 : n);
        var endOfEpoch = batch + 1 == batchesPerEpoch;
        run.Commit(run.State with
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
            GradientScale = check.NextScale,
            GradientRowsOutsideBound = run.State.GradientRowsOutsideBound + check.Clipped,
            GradientBatchesOutsideBound = run.State.GradientBatchesOutsideBound + (check.Clipped > 0 ? 1 : 0),
        });
        if (endOfEpoch)
        {
            TrainingHistoryFile.Record(run.Folder.HistoryPath,
                new EpochHistory(epoch + 1, lossSamples > 0 ? lossSum / lossSamples : double.NaN, run.Data.Train.Count, batchesPerEpoch, null, null,
                    DateTimeOffset.UtcNow));
            await ProgressPublisher.PublishAsync(run, cancellationToken).ConfigureAwait(false);
        }
        run.Folder.RemoveStaleWeights(run.State);
        if (uShaped) run.Folder.DeleteLegFrames();
        else run.Folder.DeletePendingFrame();
        // The step is committed: the reply's delete can travel while the next batch's forward runs (one round trip less per step).
        run.Frames.DeleteInBackground(reply.Message, cancellationToken);
        tracker.Report(new StepProgress("train", epoch + 1, run.Manifest.Epochs, batch + 1, batchesPerEpoch, loss,
            n / Math.Max(clock.Elapsed.TotalSeconds, 1e-6), pending.Sequence));
    }
}
