using System.Diagnostics;
using System.Globalization;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
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
        var uShaped = pending.Kind == FrameKind.Backward;
        await ApplyAsync(run, client, gradient => client.ApplyGradient(activations, gradient), activations.shape, pending, reply, tensors, epoch, batch, n,
            batchesPerEpoch, state => state with { Pending = null }, () =>
            {
                if (uShaped) run.Folder.DeleteLegFrames();
                else run.Folder.DeletePendingFrame();
            }, tracker, clock, cancellationToken).ConfigureAwait(false);
        // The step is committed: the reply's delete can travel while the next batch's forward runs (one round trip less per step).
        run.Frames.DeleteInBackground(reply.Message, cancellationToken);
        Report(run, pending, epoch, batch, n, batchesPerEpoch, reply, tracker, clock);
    }

    /// <summary>
    /// The reply's dL/dA checked (one tensor of the activations' shape) and bounded, applied by <paramref name="apply"/>, the
    /// new weights written and the state committed with the cursor past <paramref name="batch"/> (<paramref name="settle"/>
    /// takes the batch out of what is in flight, in the same commit); at an epoch's end the history entry and the operator's
    /// progress; then <paramref name="cleanup"/> removes the batch's local frames.
    /// </summary>
    public static async Task ApplyAsync(HospitalRun run, ClientLayer client, Action<float[]> apply, long[] shape, PendingFrame pending,
        ReceivedReply reply, DecodedTensor[] tensors, int epoch, int batch, int n, int batchesPerEpoch, Func<AgentState, AgentState> settle, Action cleanup,
        IProgressTracker tracker, Stopwatch clock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(apply);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(settle);
        ArgumentNullException.ThrowIfNull(cleanup);
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
        apply(gradient);
        var stepsApplied = run.State.ClientSteps + 1;
        var (clientFile, optimizerFile) = run.Folder.WriteWeights(stepsApplied, client.Network.SaveState(), client.Optimizer!.SaveState());

        // U-shaped: the loss was computed here at the tail and kept with leg 2; vanilla: the function reports it.
        var loss = Loss(pending, reply);
        var lossSum = run.State.EpochLossSum + (loss ?? 0) * n;
        var lossSamples = run.State.EpochSamples + (loss is null ? 0 : n);
        var endOfEpoch = batch + 1 == batchesPerEpoch;
        run.Commit(settle(run.State with
        {
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
        }));
        if (endOfEpoch)
        {
            TrainingHistoryFile.Record(run.Folder.HistoryPath,
                new EpochHistory(epoch + 1, lossSamples > 0 ? lossSum / lossSamples : double.NaN, run.Data.Train.Count, batchesPerEpoch, null, null,
                    DateTimeOffset.UtcNow));
            await ProgressPublisher.PublishAsync(run, cancellationToken).ConfigureAwait(false);
        }
        run.Folder.RemoveStaleWeights(run.State);
        cleanup();
    }

    /// <summary>The step's line in the progress display.</summary>
    public static void Report(HospitalRun run, PendingFrame pending, int epoch, int batch, int n, int batchesPerEpoch, ReceivedReply reply,
        IProgressTracker tracker, Stopwatch clock)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(tracker);
        ArgumentNullException.ThrowIfNull(clock);
        tracker.Report(new StepProgress("train", epoch + 1, run.Manifest.Epochs, batch + 1, batchesPerEpoch, Loss(pending, reply),
            n / Math.Max(clock.Elapsed.TotalSeconds, 1e-6), pending.Sequence));
    }

    private static double? Loss(PendingFrame pending, ReceivedReply reply) => pending.Kind == FrameKind.Backward ? pending.Loss : reply.Reply.Loss;
}
