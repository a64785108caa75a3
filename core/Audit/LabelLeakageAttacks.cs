using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Core.Audit;

/// <summary>
/// The label-leakage attacks of Li et al. (ICLR 2022, "Label Leakage and Protection in Two-party Split Learning") on
/// what a U-shaped server sees: each sample's dL/d(server output). Norm: a sample's gradient norm. Direction: the
/// cosine between a sample's gradient and one of a known positive in the same batch. Spectral: the projection of each
/// sample's gradient on the batch's first principal direction (splitting the batch along its direction of largest
/// spread, in the spirit of the clustering label inference attack of Liu and Lyu 2022; it needs no label, the known
/// positive only fixes the sign). Scored as ROC AUC against the true labels, taking the better of the two orientations
/// (an attacker can learn which side is positive).
/// </summary>
public static class LabelLeakageAttacks
{
    /// <summary>||g_i|| for each row of a [batch, width] gradient.</summary>
    public static float[] NormScores(ReadOnlySpan<float> gradients, int batch)
    {
        var width = gradients.Length / batch;
        var scores = new float[batch];
        for (var i = 0; i < batch; i++) scores[i] = (float)Math.Sqrt(Dot(gradients.Slice(i * width, width), gradients.Slice(i * width, width)));
        return scores;
    }

    /// <summary>
    /// cos(g_i, g_ref) with ref the batch's first positive sample (the attacker's one known label, as in the paper);
    /// returns the scores and labels of the other samples (none when the batch has no positive).
    /// </summary>
    public static (float[] Scores, float[] Labels) DirectionScores(ReadOnlySpan<float> gradients, ReadOnlySpan<float> labels, int batch)
    {
        var width = gradients.Length / batch;
        var reference = -1;
        for (var i = 0; i < batch && reference < 0; i++) if (BinaryLabels.IsPositive(labels[i])) reference = i;
        if (reference < 0) return ([], []);
        var r = gradients.Slice(reference * width, width);
        var rNorm = Math.Sqrt(Dot(r, r));
        var scores = new List<float>(batch - 1);
        var kept = new List<float>(batch - 1);
        for (var i = 0; i < batch; i++)
        {
            if (i == reference) continue;
            var g = gradients.Slice(i * width, width);
            var norm = Math.Sqrt(Dot(g, g)) * rNorm;
            scores.Add(norm == 0 ? 0f : (float)(Dot(g, r) / norm));
            kept.Add(labels[i]);
        }
        return ([.. scores], [.. kept]);
    }

    /// <summary>
    /// Projection of each gradient on the batch's first principal direction (power iteration on the centred [batch, width]
    /// matrix), in units of the projections' root mean square so batches can be pooled, signed so the
    /// batch's first positive (the attacker's one known label) scores positive; returns the other samples' scores and
    /// labels (none when the batch has no positive).
    /// </summary>
    public static (float[] Scores, float[] Labels) SpectralScores(ReadOnlySpan<float> gradients, ReadOnlySpan<float> labels, int batch)
    {
        var (scores, kept, _) = SpectralScores(gradients, labels, batch, null);
        return (scores, kept);
    }

    /// <summary>
    /// As above, with the sign taken from <paramref name="align"/> when given (the previous batch's direction, returned
    /// as Direction): the tail's weights move slowly, so every batch's principal direction points the same way and the
    /// scores of a whole run share one orientation without trusting any single (noisy) known label.
    /// </summary>
    public static (float[] Scores, float[] Labels, double[] Direction) SpectralScores(ReadOnlySpan<float> gradients, ReadOnlySpan<float> labels, int batch,
        double[]? align)
    {
        var width = gradients.Length / batch;
        var reference = -1;
        for (var i = 0; i < batch && reference < 0; i++) if (BinaryLabels.IsPositive(labels[i])) reference = i;
        if (reference < 0 || batch < 3) return ([], [], []);
        var centred = new double[batch * width];
        for (var k = 0; k < width; k++)
        {
            double mean = 0;
            for (var i = 0; i < batch; i++) mean += gradients[i * width + k];
            mean /= batch;
            for (var i = 0; i < batch; i++) centred[i * width + k] = gradients[i * width + k] - mean;
        }
        // Start from the largest centred row (never orthogonal to a dominant direction), then iterate v <- X^T X v.
        var start = 0;
        double largest = -1;
        for (var i = 0; i < batch; i++)
        {
            double norm = 0;
            for (var k = 0; k < width; k++) norm += centred[i * width + k] * centred[i * width + k];
            if (norm > largest) (largest, start) = (norm, i);
        }
        var v = centred.AsSpan(start * width, width).ToArray();
        var projections = new double[batch];
        for (var iteration = 0; iteration < 100; iteration++)
        {
            for (var i = 0; i < batch; i++)
            {
                double dot = 0;
                for (var k = 0; k < width; k++) dot += centred[i * width + k] * v[k];
                projections[i] = dot;
            }
            var next = new double[width];
            for (var i = 0; i < batch; i++) for (var k = 0; k < width; k++) next[k] += centred[i * width + k] * projections[i];
            var length = Math.Sqrt(next.Sum(x => x * x));
            if (length == 0) break;
            for (var k = 0; k < width; k++) v[k] = next[k] / length;
        }
        // The score projects the raw gradient (not the centred one): the sign of (p - y) survives, so scores stay comparable across batches
        // whatever their class mix.
        for (var i = 0; i < batch; i++)
        {
            double dot = 0;
            for (var k = 0; k < width; k++) dot += gradients[i * width + k] * v[k];
            projections[i] = dot;
        }
        var sd = Math.Sqrt(projections.Sum(x => x * x) / batch);
        var sign = align is { Length: > 0 } ? (v.Zip(align, (a, b) => a * b).Sum() < 0 ? -1 : 1) : projections[reference] < 0 ? -1 : 1;
        for (var k = 0; k < width; k++) v[k] *= sign;
        var scores = new List<float>(batch - 1);
        var kept = new List<float>(batch - 1);
        for (var i = 0; i < batch; i++)
        {
            if (i == reference) continue;
            scores.Add(sd == 0 ? 0f : (float)(sign * projections[i] / sd));
            kept.Add(labels[i]);
        }
        return ([.. scores], [.. kept], v);
    }

    /// <summary>
    /// Model completion (Fu et al., USENIX Security 2022): the server's own outputs ([batch, width] row-major) projected on the tail's
    /// direction, which it reads off the gradients (<see cref="SpectralScores(ReadOnlySpan{float}, ReadOnlySpan{float}, int, double[])"/>'s
    /// direction). A linear tail turns each output into its logit along that direction, so the scores rank samples as the hospital's
    /// prediction does: no noise on a single gradient hides a direction the server estimates from thousands of them.
    /// </summary>
    public static float[] CompletionScores(ReadOnlySpan<float> outputs, int batch, ReadOnlySpan<double> direction)
    {
        var width = direction.Length;
        if (outputs.Length != batch * width) throw new ArgumentException($"{outputs.Length} outputs are not {batch} rows of {width}", nameof(outputs));
        var scores = new float[batch];
        for (var i = 0; i < batch; i++)
        {
            double dot = 0;
            for (var k = 0; k < width; k++) dot += outputs[i * width + k] * direction[k];
            scores[i] = (float)dot;
        }
        return scores;
    }

    /// <summary>Attack AUC: max(AUC, 1 - AUC) of the scores against the labels (0.5 is chance).</summary>
    public static double Auc(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels)
    {
        var auc = ClassificationMetrics.RocAuc(scores, labels);
        return Math.Max(auc, 1 - auc);
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += (double)a[i] * b[i];
        return sum;
    }
}
