using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Predictions for local samples: client forward here (U-shaped: the head), `evaluate` frames with activations only
/// (labels never leave the hospital), the function's answer back: vanilla's `predictions`, or U-shaped's server outputs
/// that the tail here turns into predictions (which then never leave the hospital either). Each message takes a
/// sequence number that is persisted before it is sent.
/// </summary>
public static class RemotePrediction
{
    public static Task<float[]> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(data);
        var width = run.Manifest.ModelDefinition.OutputWidth;
        return PredictAsync(run, client, data, ReplyKind.Predictions, (tensors, n, sequence) =>
        {
            if (tensors.Length != 1 || tensors[0].Shape is not [var rows, var columns] || rows != n || columns != width)
            {
                throw new AgentException(ExitCode.Protocol, $"predictions #{sequence} have shape "
                    + $"[{string.Join(",", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}]; expected one [{n},{width}] tensor.");
            }
            return tensors[0].Values;
        }, onBatch, cancellationToken);
    }

    public static Task<float[]> PredictAsync(HospitalRun run, UShapedLayers layers, TrainingSet data, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(data);
        return PredictAsync(run, layers.HeadLayer, data, ReplyKind.Outputs,
            (outputs, n, sequence) => layers.Predict(outputs[0].Values, UShapedTrainer.RequireOutputs(outputs, n, sequence, layers)), onBatch,
                cancellationToken);
    }

    private static async Task<float[]> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, ReplyKind answer,
        Func<DecodedTensor[], int, long, float[]> toPredictions, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        // A vector per sample: one value, or K logits (multi-class, multi-label).
        var width = run.Manifest.ModelDefinition.OutputWidth;
        var predictions = new float[data.Count * width];
        var batchSize = manifest.BatchSize;
        var order = Enumerable.Range(0, data.Count).ToArray();
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(batchSize, data.Count - start);
            var state = run.State;
            var sequence = state.NextSequence;
            FeatureFrame frame;
            using (var activations = client.Forward(data, order.AsSpan(start, n), train: false, out _))
            {
                frame = ActivationFrames.Seal(run, sequence, activations);
            }
            var pending = PendingFrame.For(sequence, FrameKind.Evaluate, frame);
            run.Folder.WritePendingFrame(frame.Bytes);
            run.Commit(state with { Pending = pending, NextSequence = sequence + 1 });

            await run.Frames.SendAsync(pending, frame.Bytes, cancellationToken).ConfigureAwait(false);
            var reply = await run.Frames.AwaitReplyAsync(sequence, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
            var tensors = await ReplyFrames.ReadAsync(run, reply, answer, cancellationToken).ConfigureAwait(false);
            toPredictions(tensors, n, sequence).CopyTo(predictions, start * width);
            run.Commit(run.State with { Pending = null });
            run.Folder.DeletePendingFrame();
            await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            onBatch?.Invoke(n);
        }
        return predictions;
    }
}
