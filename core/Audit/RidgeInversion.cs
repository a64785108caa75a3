using static TorchSharp.torch;

namespace SplitFunctions.Core.Audit;

/// <summary>
/// The linear attacker: a closed-form ridge map from activations to pixels, W = (A^T A + lambda I)^-1 A^T X on centred
/// rows, in double precision. Cheap and strong: on the default layer it beat the trained decoders (REFERENCES.md,
/// "Privacy: what a stronger audit measured here"). Lambda is chosen on held-out pairs whose activations carry the
/// noise the server sees (noise on A acts like n sigma^2 I added to A^T A, so fitting on clean activations and choosing
/// lambda on noisy held-out ones covers the noise-optimal map), then the map is refitted on all pairs.
/// </summary>
public sealed class RidgeInversion : IDisposable
{
    private readonly Tensor weights;
    private readonly Tensor activationMean;
    private readonly Tensor imageMean;
    private readonly long[] imageShape;

    private RidgeInversion(Tensor weights, Tensor activationMean, Tensor imageMean, long[] imageShape, double lambda, double relativeLambda)
    {
        this.weights = weights;
        this.activationMean = activationMean;
        this.imageMean = imageMean;
        this.imageShape = imageShape;
        Lambda = lambda;
        RelativeLambda = relativeLambda;
    }

    /// <summary>The chosen lambda.</summary>
    public double Lambda { get; }

    /// <summary>Lambda over the mean eigenvalue of A^T A (the grid it was chosen from is relative, so scale does not matter).</summary>
    public double RelativeLambda { get; }

    /// <summary>The relative lambdas tried: 1e-8 .. 1e5 in half decades.</summary>
    public static IReadOnlyList<double> Grid { get; } = [.. Enumerable.Range(0, 27).Select(i => Math.Pow(10, -8 + 0.5 * i))];

    /// <summary>
    /// Fits on (<paramref name="activations"/>, <paramref name="images"/>) and, for each entry of <paramref name="heldOutNoise"/>,
    /// chooses lambda by the MSE on the held-out pairs with N(0, sigma^2) added to their activations (drawn once from
    /// <paramref name="seed"/>); each returned map is refitted on all pairs (fit and held-out, clean) with its lambda.
    /// With no held-out pairs, the smallest lambda of the grid is used.
    /// </summary>
    public static IReadOnlyList<RidgeInversion> Fit(Tensor activations, Tensor images, Tensor? heldOutActivations, Tensor? heldOutImages,
        IReadOnlyList<double> heldOutNoise, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(heldOutNoise);
        var shape = images.shape[1..];
        var n = activations.shape[0];
        var a = activations.reshape(n, -1).to(float64);
        var x = images.reshape(n, -1).to(float64);
        var relative = new double[heldOutNoise.Count];
        if (heldOutActivations is not null && heldOutImages is not null && heldOutActivations.shape[0] > 0)
        {
            using var scope = NewDisposeScope();
            var m = heldOutActivations.shape[0];
            var h = heldOutActivations.reshape(m, -1).to(float64);
            var hx = heldOutImages.reshape(m, -1).to(float64);
            var aMean = a.mean([0], keepdim: true);
            var xMean = x.mean([0], keepdim: true);
            var ac = a - aMean;
            var xc = x - xMean;
            var scale = ac.pow(2).sum().item<double>() / ac.shape[1];
            // Primal (features <= rows) or dual form, whichever Gram matrix is smaller; one eigendecomposition serves every lambda.
            var primal = ac.shape[1] <= n;
            var (s, v) = linalg.eigh(primal ? ac.T.matmul(ac) : ac.matmul(ac.T));
            s = s.clamp_min(0);
            var b = primal ? v.T.matmul(ac.T.matmul(xc)) : v.T.matmul(xc);
            var generator = new Generator(seed);
            for (var k = 0; k < heldOutNoise.Count; k++)
            {
                var noisy = heldOutNoise[k] > 0 ? h + heldOutNoise[k] * randn(h.shape, dtype: float64, generator: generator) : h;
                var projected = primal ? (noisy - aMean).matmul(v) : (noisy - aMean).matmul(ac.T).matmul(v);
                var best = double.PositiveInfinity;
                foreach (var r in Grid)
                {
                    var prediction = (projected / (s + r * scale)).matmul(b) + xMean;
                    var mse = (prediction - hx).pow(2).mean().item<double>();
                    if (mse < best)
                    {
                        best = mse;
                        relative[k] = r;
                    }
                }
            }
            a = cat([a, h], 0).MoveToOuterDisposeScope();
            x = cat([x, hx], 0).MoveToOuterDisposeScope();
        }
        else
        {
            Array.Fill(relative, Grid[0]);
        }
        return [.. relative.Select(r => Solve(a, x, r, shape))];
    }

    // The closed form on all pairs: (A^T A + lambda I) W = A^T X, or its dual W = A^T (A A^T + lambda I)^-1 X when the rows are fewer.
    private static RidgeInversion Solve(Tensor a, Tensor x, double relative, long[] shape)
    {
        using var scope = NewDisposeScope();
        var aMean = a.mean([0]);
        var xMean = x.mean([0]);
        var ac = a - aMean;
        var xc = x - xMean;
        var features = ac.shape[1];
        var lambda = relative * ac.pow(2).sum().item<double>() / features;
        Tensor w;
        if (features <= ac.shape[0])
        {
            w = linalg.solve(ac.T.matmul(ac) + lambda * eye(features, dtype: float64), ac.T.matmul(xc));
        }
        else
        {
            w = ac.T.matmul(linalg.solve(ac.matmul(ac.T) + lambda * eye(ac.shape[0], dtype: float64), xc));
        }
        return new RidgeInversion(w.MoveToOuterDisposeScope(), aMean.MoveToOuterDisposeScope(), xMean.MoveToOuterDisposeScope(), shape, lambda, relative);
    }

    /// <summary>The linear map's output for each row (float, the images' shape), unclamped.</summary>
    public Tensor Predict(Tensor activations)
    {
        ArgumentNullException.ThrowIfNull(activations);
        using var scope = NewDisposeScope();
        var n = activations.shape[0];
        var prediction = (activations.reshape(n, -1).to(float64) - activationMean).matmul(weights) + imageMean;
        return prediction.to(float32).reshape([n, .. imageShape]).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstructed images: <see cref="Predict"/> clamped to the pixel range [0, 1].</summary>
    public Tensor Reconstruct(Tensor activations)
    {
        using var prediction = Predict(activations);
        return prediction.clamp(0, 1);
    }

    public void Dispose()
    {
        weights.Dispose();
        activationMean.Dispose();
        imageMean.Dispose();
    }
}
