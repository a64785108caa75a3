using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// U-shaped predictions for local samples: head forward here, `evaluate` frames with activations only, the server's
/// outputs back, the tail here: predictions and metrics never leave the hospital.
/// </summary>
public static class UShapedPrediction
{
    public static async Task<float[]> PredictAsync(HospitalRun session, UShapedLayers layers, TrainingSet data, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(data);
        var manifest = session.Manifest;
        var predictions = new float[data.Count];
        var order = Enumerable.Range(0, data.Count).ToArray();
        for (var start = 0; start < data.Count; start += manifest.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(manifest.BatchSize, data.Count - start);
            var sequence = session.State.NextSequence;
            FeatureFrame frame;
            using (var activations = layers.HeadForward(data, order.AsSpan(start, n), train: false, out _))
            {
                var values = activations.ToFloats();
                ClientLayer.AddNoise(values, manifest.Privacy.NoiseSigma);
                frame = session.Frames.SealFeatures(sequence, [new FrameTensor(manifest.FeatureType, activations.shape, values)]);
            }
            var pending = new PendingFrame { Sequence = sequence, Kind = FrameKind.Evaluate, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256 };
            session.Folder.WritePendingFrame(frame.Bytes);
            session.Commit(session.State with { Pending = pending, NextSequence = sequence + 1 });

            await session.Frames.SendAsync(pending, frame.Bytes, cancellationToken).ConfigureAwait(false);
            var reply = await session.Frames.AwaitReplyAsync(sequence, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await session.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
            var outputs = await ReplyFrames.ReadAsync(session, reply, ReplyKind.Outputs, cancellationToken).ConfigureAwait(false);
            var shape = UShapedTrainer.RequireOutputs(outputs, n, sequence, layers);
            layers.Predict(outputs[0].Values, shape).CopyTo(predictions, start);
            session.Commit(session.State with { Pending = null });
            session.Folder.DeletePendingFrame();
            await session.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            onBatch?.Invoke(n);
        }
        return predictions;
    }
}
