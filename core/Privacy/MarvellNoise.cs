using SplitFunctions.Core.Metrics;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// One batch's Marvell noise covariances (Li et al., "Label Leakage and Protection in Two-party Split Learning", ICLR
/// 2022, Sec. 4): class c's noise is N(0, Along_c * e e^T + Orthogonal_c * (I - e e^T)), with e the unit vector from the
/// negatives' mean gradient to the positives'. <see cref="SumKl"/> is the bound it reaches: KL(P1~ || P0~) + KL(P0~ || P1~)
/// of the perturbed class distributions under the paper's isotropic Gaussian model of each class's gradients.
/// </summary>
public sealed record MarvellCovariance(double NegativeAlong, double NegativeOrthogonal, double PositiveAlong, double PositiveOrthogonal, double SumKl);

/// <summary>
/// Marvell (Li et al., ICLR 2022): per batch, Gaussian noise for each class with covariances that minimise the sum-KL
/// bound between the two classes' perturbed gradient distributions (which bounds the AUC of every label attack on the
/// gradients, Theorem 1) subject to a noise power budget P = scale x ||mean positive gradient - mean negative
/// gradient||^2 (the paper's s). Binary labels only: the bound and its optimum are defined for two classes.
/// </summary>
public static class MarvellNoise
{
    /// <summary>
    /// Solves the paper's optimisation (its reduction to four scalars: the optimal covariances are isotropic within the
    /// span of the mean difference and within its orthogonal complement):
    /// minimise (d-1)[(l20+u)/(l21+v) + (l21+v)/(l20+u)] + (l10+u+g)/(l11+v) + (l11+v+g)/(l10+u)
    /// subject to (1-p)(l10 + (d-1) l20) + p(l11 + (d-1) l21) &lt;= P, all l &gt;= 0,
    /// where u, v are the negatives' and positives' per-coordinate gradient variances, g = ||mean difference||^2, p the
    /// batch's positive fraction (l1c along the difference, l2c orthogonal to it, c = 0 negative, 1 positive).
    /// </summary>
    /// <remarks>
    /// The orthogonal part only needs the two variances equal: power there goes to the class with the smaller one, up
    /// to the gap. What remains is a two-variable problem, searched on a grid over the split of the budget and refined
    /// three times around the best point (deterministic, about 20,000 evaluations of the objective per batch).
    /// </remarks>
    public static MarvellCovariance Solve(double u, double v, int d, double g, double p, double power)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(d, 1);
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), "the batch needs both classes");
        // Keeps the objective finite when a class's gradients are identical (u or v = 0, the paper's 'zero' case).
        var floor = 1e-12 * Math.Max(Math.Max(u, v), Math.Max(g, 1e-30));
        u = Math.Max(u, floor);
        v = Math.Max(v, floor);
        power = Math.Max(power, 0);
        var best = Evaluate(0, 0, u, v, d, g, p, power);
        double alphaLow = 0, alphaHigh = 1, betaLow = 0, betaHigh = 1;
        const int steps = 70;
        for (var round = 0; round < 4 && power > 0; round++)
        {
            var (bestAlpha, bestBeta) = (best.Alpha, best.Beta);
            for (var i = 0; i <= steps; i++)
            {
                var alpha = alphaLow + (alphaHigh - alphaLow) * i / steps;
                for (var j = 0; j <= steps; j++)
                {
                    var beta = betaLow + (betaHigh - betaLow) * j / steps;
                    if (alpha + beta > 1 + 1e-12) break;
                    var candidate = Evaluate(alpha, beta, u, v, d, g, p, power);
                    if (candidate.Objective < best.Objective) best = candidate;
                }
            }
            var width = (alphaHigh - alphaLow) / 5;
            (alphaLow, alphaHigh) = (Math.Max(0, best.Alpha - width), Math.Min(1, best.Alpha + width));
            width = (betaHigh - betaLow) / 5;
            (betaLow, betaHigh) = (Math.Max(0, best.Beta - width), Math.Min(1, best.Beta + width));
        }
        return new MarvellCovariance(best.L10, best.L20, best.L11, best.L21, SumKl(best.Objective, d));
    }

    /// <summary>The paper's objective (twice the sum-KL plus 2d) at the given covariances.</summary>
    public static double Objective(double l10, double l20, double l11, double l21, double u, double v, int d, double g) =>
        (d - 1) * ((l20 + u) / (l21 + v) + (l21 + v) / (l20 + u)) + (l10 + u + g) / (l11 + v) + (l11 + v + g) / (l10 + u);

    private static double SumKl(double objective, int d) => Math.Max(0, (objective - 2 * d) / 2);

    // alpha, beta: shares of the budget spent along the difference on the negatives and on the positives; the rest
    // equalises the orthogonal variances.
    private static (double Alpha, double Beta, double L10, double L20, double L11, double L21, double Objective) Evaluate(double alpha, double beta, double u,
        double v, int d, double g, double p, double power)
    {
        var l10 = alpha * power / (1 - p);
        var l11 = beta * power / p;
        double l20 = 0, l21 = 0;
        var rest = Math.Max(0, 1 - alpha - beta) * power;
        if (d > 1 && u < v) l20 = Math.Min(v - u, rest / ((1 - p) * (d - 1)));
        else if (d > 1 && v < u) l21 = Math.Min(u - v, rest / (p * (d - 1)));
        return (alpha, beta, l10, l20, l11, l21, Objective(l10, l20, l11, l21, u, v, d, g));
    }

    /// <summary>
    /// Adds Marvell noise to <paramref name="gradients"/> ([batch, width] row-major) in place, drawn from the operating
    /// system's CSPRNG; <paramref name="labels"/> are the batch's binary targets (0 or 1, one per sample). Returns the
    /// covariances used (null when the batch's gradients are all zero). A batch with one class only has no mean
    /// difference: it gets noise along its own mean gradient of variance scale x ||mean||^2 (as if the other class's
    /// mean were zero), so it does not stand out as unperturbed.
    /// </summary>
    public static MarvellCovariance? Apply(Span<float> gradients, ReadOnlySpan<float> labels, int batch, double scale)
    {
        if (batch == 0 || scale <= 0) return null;
        if (labels.Length != batch)
        {
            throw new ArgumentException($"Marvell needs one binary label per sample ({labels.Length} targets for {batch} samples): it is defined for "
                + "binary tasks only", nameof(labels));
        }
        foreach (var l in labels)
        {
            if (l is not (0f or 1f))
            {
                throw new ArgumentException($"Marvell needs binary labels (0 or 1), not {l}: it is defined for binary tasks only", nameof(labels));
            }
        }
        var width = gradients.Length / batch;
        var positives = 0;
        foreach (var l in labels) if (BinaryLabels.IsPositive(l)) positives++;
        var negatives = batch - positives;
        var mean = new double[2][];
        mean[0] = new double[width];
        mean[1] = new double[width];
        for (var i = 0; i < batch; i++)
        {
            var c = BinaryLabels.IsPositive(labels[i]) ? 1 : 0;
            var count = c == 1 ? positives : negatives;
            for (var k = 0; k < width; k++) mean[c][k] += gradients[i * width + k] / (double)count;
        }
        var difference = new double[width];
        for (var k = 0; k < width; k++) difference[k] = mean[1][k] - mean[0][k];
        var g = difference.Sum(x => x * x);
        if (g == 0) return null;
        var direction = difference.Select(x => x / Math.Sqrt(g)).ToArray();
        MarvellCovariance covariance;
        if (positives == 0 || negatives == 0)
        {
            covariance = new MarvellCovariance(scale * g, 0, scale * g, 0, double.NaN);
        }
        else
        {
            // Per-coordinate variance of each class around its own mean, as the paper's isotropic model takes it.
            double u = 0, v = 0;
            for (var i = 0; i < batch; i++)
            {
                var c = BinaryLabels.IsPositive(labels[i]) ? 1 : 0;
                double sum = 0;
                for (var k = 0; k < width; k++)
                {
                    var e = gradients[i * width + k] - mean[c][k];
                    sum += e * e;
                }
                if (c == 1) v += sum / ((double)positives * width);
                else u += sum / ((double)negatives * width);
            }
            covariance = Solve(u, v, width, g, positives / (double)batch, scale * g);
        }
        var noise = new double[width];
        for (var i = 0; i < batch; i++)
        {
            var positive = BinaryLabels.IsPositive(labels[i]);
            var along = Math.Sqrt(positive ? covariance.PositiveAlong : covariance.NegativeAlong);
            var orthogonal = Math.Sqrt(positive ? covariance.PositiveOrthogonal : covariance.NegativeOrthogonal);
            double projection = 0;
            for (var k = 0; k < width; k++)
            {
                noise[k] = orthogonal > 0 ? orthogonal * OutputGradientDefence.Gaussian() : 0;
                projection += noise[k] * direction[k];
            }
            // Orthogonal part: isotropic noise with its component along e removed; then the along part.
            var z = along * OutputGradientDefence.Gaussian();
            for (var k = 0; k < width; k++) gradients[i * width + k] += (float)(noise[k] + (z - projection) * direction[k]);
        }
        return covariance;
    }
}
