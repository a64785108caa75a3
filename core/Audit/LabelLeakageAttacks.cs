using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Core.Audit;

/// <summary>
/// The label-leakage attacks of Li et al. (ICLR 2022, "Label Leakage and Protection in Two-party Split Learning") on
/// what a U-shaped server sees: each sample's dL/d(server output). Norm: a sample's gradient norm. Direction: the
/// cosine between a sample's gradient and one of a known positive in the same batch. Scored as ROC AUC against the
/// true labels, taking the better of the two orientations (an attacker can learn which side is positive).
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
