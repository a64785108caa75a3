using SplitFunctions.Core.Audit;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Distance correlation (Székely et al.) between two batches of samples, as a differentiable TorchSharp expression:
/// NoPeek's penalty and the audit's dependence figure. 0 means independent, 1 an exact linear/isometric relation.
/// Constants are Scalars held through each call: TorchSharp's operators on doubles (and its tensor +, whose alpha of 1
/// it makes on the fly) pass temporaries a garbage collection can free mid-call (see Engine/Optimizer.Step).
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
        using var zero = 0.0.ToScalar();
        using var tiny = 1e-12.ToScalar();
        return xy.clamp_min(zero).div((xx * yy).sqrt().clamp_min(tiny)).sqrt();
    }

    /// <summary>
    /// NoPeek's backward objective for a hospital layer: sum(A * dL/dA) + alpha * DCor(x, A), whose gradient is the
    /// server's dL/dA plus the penalty's; also the penalty alone.
    /// </summary>
    public static (Tensor Objective, Tensor Penalty) NoPeekObjective(Tensor input, Tensor activations, Tensor gradient, double alpha)
    {
        ArgumentNullException.ThrowIfNull(activations);
        using var weight = alpha.ToScalar();
        using var one = 1.ToScalar();
        var penalty = Compute(input, activations).mul(weight);
        return ((activations * gradient).sum().add(penalty, one), penalty);
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
        using var one = 1.ToScalar();
        using var minusTwo = (-2.0).ToScalar();
        using var zero = 0.0.ToScalar();
        using var epsilon = 1e-10.ToScalar();
        var squared = (v * v).sum(1, keepdim: true);
        var d2 = squared.add(squared.t(), one).add(v.matmul(v.t()), minusTwo);
        return d2.clamp_min(zero).add(epsilon, one).sqrt();
    }

    private static Tensor Centered(Tensor d)
    {
        using var one = 1.ToScalar();
        return d.sub(d.mean([0], keepdim: true)).sub(d.mean([1], keepdim: true)).add(d.mean(), one);
    }
}
