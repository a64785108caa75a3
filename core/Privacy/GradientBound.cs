namespace SplitFunctions.Core.Privacy;

/// <summary>
/// How far the hospital trusts the gradients dL/dA the server returns (agent configuration <c>privacy.gradients</c>).
/// A malicious server can steer the client layer through them towards an invertible map (feature-space hijacking,
/// Pasquini et al., CCS 2021); an honest server's gradients come from the task loss and stay on the scale the run has
/// shown so far. Rows outside the bound are clipped to it before they are applied, and counted.
/// </summary>
public sealed record GradientBoundSettings
{
    /// <summary>
    /// A per-sample gradient (scaled by the batch size, since the loss is a batch mean) more than this many times the
    /// run's typical largest per-sample norm (a running mean, in logs, of each batch's largest) is clipped; 0 turns the
    /// relative bound off. The largest, not the median: an honest loss gives well-classified samples tiny gradients and
    /// misclassified ones up to |p - y| = 1 times the server's Jacobian, a spread of far more than 10 within one batch.
    /// 100 by default: in a 40-step pneumonia-cnn run against an honest server the largest per-sample norm grew 20 to 45
    /// times; a factor of 10 clipped honest gradients in 30 of the 40 batches, 100 in 0 and 1 (two runs each).
    /// </summary>
    public double RelativeFactor { get; init; } = 100;

    /// <summary>An absolute cap on the per-sample norm (scaled by the batch size); null: none. It also binds from the first batch.</summary>
    public double? MaxSampleNorm { get; init; }

    /// <summary>The problem with these values as one line, or null.</summary>
    public string? Problem()
    {
        if (!double.IsFinite(RelativeFactor) || RelativeFactor < 0 || RelativeFactor is > 0 and < 1)
            return "privacy.gradients.relativeFactor must be 0 (off) or a number >= 1";
        if (MaxSampleNorm is { } max && !(double.IsFinite(max) && max > 0)) return "privacy.gradients.maxSampleNorm must be a positive number";
        return null;
    }
}

/// <summary>The outcome of bounding one batch's gradient: rows clipped, the bound applied, the largest scaled norm seen, the next typical norm.</summary>
public readonly record struct GradientCheck(int Clipped, double Bound, double LargestNorm, double? NextScale);

/// <summary>Bounds the per-sample norms of a gradient from the server (<see cref="GradientBoundSettings"/>).</summary>
public static class GradientBound
{
    // Weight of a batch in the running scale: slow enough that a server cannot walk the scale up within a few batches.
    private const double Smoothing = 0.05;

    /// <summary>
    /// Clips, in place, each row of <paramref name="gradient"/> whose norm x <paramref name="rows"/> exceeds the bound:
    /// min(maxSampleNorm, relativeFactor x <paramref name="scale"/>), where <paramref name="scale"/> is the running typical
    /// largest norm (null before the first batch: this batch's largest, so the relative bound binds from the second
    /// batch and only the absolute cap before). Only batches with nothing clipped move the scale, so gradients outside
    /// the bound do not raise it. Deterministic, so a replayed step after a crash gives the same result.
    /// </summary>
    public static GradientCheck Apply(Span<float> gradient, int rows, GradientBoundSettings settings, double? scale)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var norms = ActivationClipping.RowNorms(gradient, rows);
        for (var i = 0; i < norms.Length; i++) norms[i] *= rows;
        var largest = norms.Max();
        var typical = scale ?? largest;
        var bound = double.PositiveInfinity;
        if (settings.RelativeFactor > 0 && typical > 0) bound = settings.RelativeFactor * typical;
        if (settings.MaxSampleNorm is { } max) bound = Math.Min(bound, max);
        var width = gradient.Length / rows;
        var clipped = 0;
        for (var r = 0; r < rows; r++)
        {
            if (!(norms[r] > bound)) continue;
            var factor = (float)(bound / norms[r]);
            foreach (ref var v in gradient.Slice(r * width, width)) v *= factor;
            clipped++;
        }
        double? next = typical;
        if (clipped == 0 && largest > 0)
        {
            next = scale is { } s && s > 0 ? Math.Exp((1 - Smoothing) * Math.Log(s) + Smoothing * Math.Log(largest)) : largest;
        }
        return new GradientCheck(clipped, bound, largest, next);
    }
}
