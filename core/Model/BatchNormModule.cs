using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// Batch normalisation whose training step holds its Scalar. TorchSharp 0.107's BatchNorm counts batches with
/// num_batches_tracked.add_(1), whose temporary Scalars a garbage collection on another thread can finalize while
/// libtorch reads them ("For integral input tensors, argument alpha must not be a floating point number", seen in a full
/// test run; see <see cref="Optimizer.Step"/>). Same parameters, buffers and state names (TorchSharp's BatchNorm base),
/// and PyTorch's arithmetic: momentum 0.1, eps 1e-5, batch statistics in training, running statistics in eval.
/// </summary>
public sealed class BatchNormModule : TorchSharp.Modules.BatchNorm
{
    private readonly Scalar one = 1.ToScalar();
    private readonly long[] dimensions;

    /// <param name="features">Channels (dimension 1 of the input).</param>
    /// <param name="dimensions">The input ranks accepted: 4 for BatchNorm2d, 2 or 3 for BatchNorm1d.</param>
    public BatchNormModule(long features, params long[] dimensions)
        : base(features, 1e-5, 0.1, true, true, null, null, nameof(BatchNormModule))
    {
        this.dimensions = dimensions;
    }

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (!dimensions.Contains(input.Dimensions))
        {
            throw new ArgumentException($"batch norm expects an input of rank {string.Join(" or ", dimensions)}, not {input.Dimensions}");
        }
    }

    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        if (training) num_batches_tracked?.add_(one, one);
        return nn.functional.batch_norm(input, running_mean, running_var, weight, bias, training, 0.1, eps);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) one.Dispose();
        base.Dispose(disposing);
    }
}
