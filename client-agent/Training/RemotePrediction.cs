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
/// sequence number that is persisted before it is sent. Every pass sends the samples in a fresh order from the
/// hospital's secret (never the data's order, which would let the server line up a patient's views across passes),
/// and counts as one release of each sample (<see cref="ReleaseBudget"/>).
/// </summary>
public static class RemotePrediction
{
    public static Task<float[]> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, ReleaseKind kind, Action<int>? onBatch,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(data);
        var width = run.Manifest.ModelDefinition.OutputWidth;
        return PredictAsync(run, client, data, kind, ReplyKind.Predictions, (tensors, n, sequence) =>
        {
            if (tensors.Length != 1 || tensors[0].Shape is not [var rows, var columns] || rows != n || columns != width)
            {
                throw new AgentException(ExitCode.Protocol, $"predictions #{sequence} have shape "
                    + $"[{string.Join(",", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}]; expected one [{n},{width}] tensor.");
            }
            return tensors[0].Values;
        }, onBatch, cancellationToken);
    }

    public static Task<float[]> PredictAsync(HospitalRun run, UShapedLayers layers, TrainingSet data, ReleaseKind kind, Action<int>? onBatch,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(data);
        return PredictAsync(run, layers.HeadLayer, data, kind, ReplyKind.Outputs,
            (outputs, n, sequence) => layers.Predict(outputs[0].Values, UShapedTrainer.RequireOutputs(outputs, n, sequence, layers)), onBatch,
                cancellationToken);
    }

    private static async Task<float[]> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, ReleaseKind kind, ReplyKind answer,
        Func<DecodedTensor[], int, long, float[]> toPredictions, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        // A vector per sample: one value, or K logits (multi-class, multi-label).
        var width = run.Manifest.ModelDefinition.OutputWidth;
        var predictions = new float[data.Count * width];
        var batchSize = manifest.BatchSize;
        // Keyed by the pass's first sequence number: a fresh order per pass, which only this hospital can compute.
        var order = run.OrderSecret.Order(data.Count, manifest.RunId, kind.ToString(), run.State.NextSequence);
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(batchSize, data.Count - start);
            var state = run.State;
            var releases = start == 0 ? ReleaseBudget.Count(run, kind) : state.Releases;
            var sequence = state.NextSequence;
            FeatureFrame frame;
            using (var activations = client.Forward(data, order.AsSpan(start, n), train: false, out _))
            {
                frame = ActivationFrames.Seal(run, sequence, activations);
            }
            var pending = PendingFrame.For(sequence, FrameKind.Evaluate, frame);
            run.Folder.WritePendingFrame(frame.Bytes);
            run.Commit(state with { Pending = pending, NextSequence = sequence + 1, Releases = releases });

            await run.Frames.SendAsync(pending, frame.Bytes, cancellationToken).ConfigureAwait(false);
            var reply = await run.Frames.AwaitReplyAsync(sequence, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
            var tensors = await ReplyFrames.ReadAsync(run, reply, answer, cancellationToken).ConfigureAwait(false);
            var batchPredictions = toPredictions(tensors, n, sequence);
            for (var i = 0; i < n; i++) batchPredictions.AsSpan(i * width, width).CopyTo(predictions.AsSpan(order[start + i] * width, width));
            run.Commit(run.State with { Pending = null });
            run.Folder.DeletePendingFrame();
            await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            onBatch?.Invoke(n);
        }
        return predictions;
    }
}
