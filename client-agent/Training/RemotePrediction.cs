using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Predictions for local samples: client forward here, `evaluate` frames with activations only (labels never leave the
/// hospital), `predictions` frames back. Each message takes a sequence number that is persisted before it is sent.
/// </summary>
public static class RemotePrediction
{
    public static async Task<float[]> PredictAsync(HospitalRun session, ClientLayer client, TrainingSet data, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(data);
        var manifest = session.Manifest;
        var predictions = new float[data.Count];
        var batchSize = manifest.BatchSize;
        var order = Enumerable.Range(0, data.Count).ToArray();
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(batchSize, data.Count - start);
            var state = session.State;
            var sequence = state.NextSequence;
            FeatureFrame frame;
            using (var activations = client.Forward(data, order.AsSpan(start, n), train: false, out _))
            {
                var values = activations.ToFloats();
                ClientLayer.AddNoise(values, manifest.Privacy.NoiseSigma);
                frame = session.Frames.SealFeatures(sequence, [new FrameTensor(manifest.FeatureType, activations.shape, values)]);
            }
            var pending = new PendingFrame { Sequence = sequence, Kind = FrameKind.Evaluate, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256 };
            session.Folder.WritePendingFrame(frame.Bytes);
            session.Commit(state with { Pending = pending, NextSequence = sequence + 1 });

            await session.Frames.SendAsync(pending, frame.Bytes, cancellationToken).ConfigureAwait(false);
            var reply = await session.Frames.AwaitReplyAsync(sequence, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await session.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
            var tensors = await ReplyFrames.ReadAsync(session, reply, ReplyKind.Predictions, cancellationToken).ConfigureAwait(false);
            if (tensors.Length != 1 || tensors[0].Shape is not [var rows, 1] || rows != n)
            {
                throw new AgentException(ExitCode.Protocol, $"predictions #{sequence} have shape [{string.Join(",", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}]; expected one [{n},1] tensor.");
            }
            tensors[0].Values.CopyTo(predictions, start);
            session.Commit(session.State with { Pending = null });
            session.Folder.DeletePendingFrame();
            await session.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            onBatch?.Invoke(n);
        }
        return predictions;
    }
}
