using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>What a frame must look like for a run's model: the cut shape, and labels beside activations for training.</summary>
public static class TrainingFrames
{
    /// <summary>
    /// Largest magnitude accepted for any value a hospital sends (activations, labels, U-shaped output gradients). A healthy
    /// run's values are many orders below it (normalised activations and mean-reduced gradients are O(1)); below it the
    /// optimizer's squared gradients (1e12) and a layer's sums over a batch stay far inside fp32's 3.4e38, so one frame of
    /// huge values (the insider's all-3e38 gradient) is refused before it reaches the optimizer.
    /// </summary>
    public const float MaxMagnitude = 1e6f;

    // Sealing overhead beside the tensor data: envelope header (run, hospital, key id), nonce, tag, frame and tensor headers.
    private const long FrameOverheadBytes = 4096;

    /// <summary>
    /// The most a frame of this run may hold: a batch (the manifest's batch size; chunks and evaluation frames are cut to it
    /// too) of the cut's or the body's output per sample, plus its labels (at most the output's width), in fp32 with int8 parameters. Checked against the
    /// message's length and the blob's size before any download, and against the frame header before decoding.
    /// </summary>
    public static FrameBounds Bounds(LeasedRun run, FrameKind kind = FrameKind.Train)
    {
        ArgumentNullException.ThrowIfNull(run);
        return Bounds(MaxRows(run, kind), run.Model.CutShape, run.Model.OutputShape);
    }

    /// <summary>
    /// Temporal chunks may hold up to this many batches (the agent sends one batch per chunk; larger chunks are
    /// still read in bounded windows), every other frame one batch.
    /// </summary>
    public const int MaxBatchesPerChunk = 128;

    /// <summary>The most samples a frame of <paramref name="kind"/> may carry in this run.</summary>
    public static int MaxRows(LeasedRun run, FrameKind kind)
    {
        ArgumentNullException.ThrowIfNull(run);
        return kind == FrameKind.Chunk ? checked(run.Manifest.BatchSize * MaxBatchesPerChunk) : run.Manifest.BatchSize;
    }

    /// <summary><see cref="Bounds(LeasedRun)"/> from the batch size and per-sample shapes.</summary>
    public static FrameBounds Bounds(int batchSize, long[] cutShape, long[] outputShape)
    {
        ArgumentNullException.ThrowIfNull(cutShape);
        ArgumentNullException.ThrowIfNull(outputShape);
        var perSample = Math.Max(cutShape.Aggregate(1L, (a, b) => checked(a * b)), outputShape.Aggregate(1L, (a, b) => checked(a * b)))
            + outputShape.Aggregate(1L, (a, b) => checked(a * b));
        var elements = checked(Math.Max(batchSize, 1) * perSample);
        var bytes = checked(elements * sizeof(float) + 2L * QuantisedInt8.ParameterBytesPerSlice * batchSize + FrameOverheadBytes);
        return new FrameBounds(Math.Min(bytes, ServerFrameStore.MaxFrameBytes), (int)Math.Min(elements, TensorFrame.DefaultMaxElements));
    }

    /// <summary>
    /// Every value within <see cref="MaxMagnitude"/>: a frame that passes decoding (finite) may still hold values that
    /// overflow the step; it is refused before the step, with the tensor and element that is out of range.
    /// </summary>
    public static void RequireBounded(DecodedTensor tensor, string what)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var values = tensor.Values;
        for (var i = 0; i < values.Length; i++)
        {
            if (!(Math.Abs(values[i]) <= MaxMagnitude)) throw OutOfRange(what, i, values[i]);
        }
    }

    /// <summary>The refusal of a value beyond <see cref="MaxMagnitude"/>: element <paramref name="index"/> of <paramref name="what"/>.</summary>
    internal static ProtocolException OutOfRange(string what, int index, float value) =>
        new(ProtocolRejection.OutOfBounds, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{what} element {index} is {value:G6}, beyond the {MaxMagnitude:G0} any value of a healthy run stays within: the model at the "
                + $"hospital diverged or the frame was crafted; nothing was applied"));

    /// <summary>Activations of the cut shape and a [batch, label width] label tensor (K for multi-label, else 1).</summary>
    public static void RequireTrainingFrame(LeasedRun run, DecodedTensor[] tensors, FrameKind kind = FrameKind.Train)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length != 2) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"a training frame holds activations and labels; it has "
            + $"{tensors.Length} tensors");
        RequireCut(run, tensors[0], kind);
        var labels = tensors[1];
        var width = run.Model.LabelWidth;
        if (labels.Shape.Length != 2 || labels.Shape[0] != tensors[0].Shape[0] || labels.Shape[1] != width)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"labels have shape [{string.Join(",", labels.Shape)}]; expected "
                + $"[{tensors[0].Shape[0]},{width}]");
        }
        run.ValueBounds.RequireActivations(tensors[0], "activations");
        RequireBounded(labels, "labels");
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
            message.KeyId, ct, bounds: Bounds(run), inline: message.Inline).ConfigureAwait(false)).Tensors;
        if (tensors.Length != 1) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"{frameHolds} (labels stay at the hospital); it has "
            + $"{tensors.Length} tensors");
        RequireCut(run, tensors[0]);
        run.ValueBounds.RequireActivations(tensors[0], "activations");
        return tensors[0];
    }

    /// <summary>Activations of shape [batch, cut...] with batch at least 1.</summary>
    public static void RequireCut(LeasedRun run, DecodedTensor activations, FrameKind kind = FrameKind.Train)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(activations);
        var cut = run.Model.CutShape;
        if (activations.Shape.Length != cut.Length + 1 || !activations.Shape.AsSpan(1).SequenceEqual(cut) || activations.Shape[0] < 1)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch,
                $"activations have shape [{string.Join(",", activations.Shape)}]; model '{run.Manifest.Model}' expects [batch,{string.Join(",", cut)}]");
        }
        if (activations.Shape[0] > MaxRows(run, kind))
        {
            throw new ProtocolException(ProtocolRejection.Oversized, $"the frame holds {activations.Shape[0]} samples; run '{run.Manifest.RunId}' takes "
                + $"at most {MaxRows(run, kind)} per {kind.ToString().ToLowerInvariant()} frame (the manifest's batchSize {run.Manifest.BatchSize})");
        }
    }

    public static int Batch(DecodedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return checked((int)tensor.Shape[0]);
    }
}
