using static TorchSharp.torch;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Distance correlation (Székely et al.) between two batches of samples, as a differentiable TorchSharp expression:
/// NoPeek's penalty and the audit's dependence figure. 0 means independent, 1 an exact linear/isometric relation.
/// </summary>
public static class DistanceCorrelation
{
    /// <summary>DCor of rows of <paramref name="x"/> and <paramref name="y"/> (each [n, ...], flattened per sample); keeps the graph.</summary>
    public static Tensor Compute(Tensor x, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        var n = x.shape[0];
        if (n != y.shape[0]) throw new ArgumentException($"DCor needs the same number of samples: {n} vs {y.shape[0]}");
        var a = Centered(Distances(x.reshape(n, -1)));
        var b = Centered(Distances(y.reshape(n, -1)));
        var xy = (a * b).mean();
        var xx = (a * a).mean();
        var yy = (b * b).mean();
        return (xy.clamp_min(0) / (xx * yy).sqrt().clamp_min(1e-12)).sqrt();
    }

    /// <summary>DCor as a number.</summary>
    public static double Value(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Compute(x.to_type(ScalarType.Float64), y.to_type(ScalarType.Float64)).item<double>();
    }

    // Euclidean distances; the epsilon keeps the gradient finite on the zero diagonal.
    private static Tensor Distances(Tensor v)
    {
        var squared = (v * v).sum(1, keepdim: true);
        var d2 = squared + squared.t() - 2 * v.matmul(v.t());
        return (d2.clamp_min(0) + 1e-10).sqrt();
    }

    private static Tensor Centered(Tensor d) => d - d.mean([0], keepdim: true) - d.mean([1], keepdim: true) + d.mean();
}
