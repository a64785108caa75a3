using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// LeakyReLU holding its slope as one Scalar for its lifetime. TorchSharp 0.107's nn.LeakyReLU makes a temporary Scalar
/// per forward and does not keep it alive through the native call, so a garbage collection at that moment can free it
/// under libtorch ("Expected false to be true"; see <see cref="Optimizer.Step"/>). Same arithmetic, no parameters.
/// </summary>
public sealed class LeakyReLUModule : nn.Module<Tensor, Tensor>
{
    private readonly Scalar slope;

    public LeakyReLUModule(double slope) : base(nameof(LeakyReLUModule))
    {
        this.slope = slope.ToScalar();
    }

    public override Tensor forward(Tensor input) => input.leaky_relu(slope);

    protected override void Dispose(bool disposing)
    {
        if (disposing) slope.Dispose();
        base.Dispose(disposing);
    }
}
