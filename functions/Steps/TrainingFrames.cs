using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>What a frame must look like for a run's model: the cut shape, and labels beside activations for training.</summary>
public static class TrainingFrames
{
    /// <summary>Activations of the cut shape and a [batch, label width] label tensor (K for multi-label, else 1).</summary>
    public static void RequireTrainingFrame(LeasedRun run, DecodedTensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length != 2) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"a training frame holds activations and labels; it has "
            + $"{tensors.Length} tensors");
        RequireCut(run, tensors[0]);
        var labels = tensors[1];
        var width = run.Model.LabelWidth;
        if (labels.Shape.Length != 2 || labels.Shape[0] != tensors[0].Shape[0] || labels.Shape[1] != width)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"labels have shape [{string.Join(",", labels.Shape)}]; expected "
                + $"[{tensors[0].Shape[0]},{width}]");
        }
    }

    /// <summary>
    /// Reads a frame that must hold the cut's activations alone (evaluation, U-shaped forward legs): one home for the
    /// check both steps make. <paramref name="frameHolds"/> opens the rejection's message ("an evaluate frame holds ...").
    /// </summary>
    public static async Task<DecodedTensor> ReadActivationsAsync(ServerFrameStore frames, LeasedRun run, FrameMessage message, string frameHolds,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(frames);
        ArgumentNullException.ThrowIfNull(message);
        var tensors = (await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256,
            message.KeyId, ct).ConfigureAwait(false)).Tensors;
        if (tensors.Length != 1) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"{frameHolds} (labels stay at the hospital); it has "
            + $"{tensors.Length} tensors");
        RequireCut(run, tensors[0]);
        return tensors[0];
    }

    /// <summary>Activations of shape [batch, cut...] with batch at least 1.</summary>
    public static void RequireCut(LeasedRun run, DecodedTensor activations)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(activations);
        var cut = run.Model.CutShape;
        if (activations.Shape.Length != cut.Length + 1 || !activations.Shape.AsSpan(1).SequenceEqual(cut) || activations.Shape[0] < 1)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch,
                $"activations have shape [{string.Join(",", activations.Shape)}]; model '{run.Manifest.Model}' expects [batch,{string.Join(",", cut)}]");
        }
    }

    public static int Batch(DecodedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return checked((int)tensor.Shape[0]);
    }
}
