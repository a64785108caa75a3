namespace SplitFunctions.Core.Metrics;

/// <summary>Counts of a binary classifier's outcomes at one threshold; a score at or above it means "positive".</summary>
public readonly record struct ConfusionMatrix(int TruePositives, int FalsePositives, int TrueNegatives, int FalseNegatives)
{
    public int Total => TruePositives + FalsePositives + TrueNegatives + FalseNegatives;

    public double Accuracy => Ratio(TruePositives + TrueNegatives, Total);

    /// <summary>Recall of the positive class (true positive rate); NaN without positives.</summary>
    public double Sensitivity => Ratio(TruePositives, TruePositives + FalseNegatives);

    /// <summary>True negative rate; NaN without negatives.</summary>
    public double Specificity => Ratio(TrueNegatives, TrueNegatives + FalsePositives);

    /// <summary>Positive predictive value; NaN when nothing was predicted positive.</summary>
    public double Precision => Ratio(TruePositives, TruePositives + FalsePositives);

    /// <summary>Counts outcomes for probabilities or logits <paramref name="scores"/> against 0/1 <paramref name="labels"/>.</summary>
    public static ConfusionMatrix At(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels, double threshold = 0.5)
    {
        BinaryLabels.CheckLengths(scores, labels);
        int tp = 0, fp = 0, tn = 0, fn = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            var predicted = scores[i] >= threshold;
            var actual = BinaryLabels.IsPositive(labels[i]);
            if (predicted && actual) tp++;
            else if (predicted) fp++;
            else if (actual) fn++;
            else tn++;
        }
        return new ConfusionMatrix(tp, fp, tn, fn);
    }

    private static double Ratio(int numerator, int denominator) => denominator == 0 ? double.NaN : (double)numerator / denominator;
}

internal static class BinaryLabels
{
    /// <summary>Labels are 0/1 floats; anything at or above 0.5 counts as the positive class (tolerates soft labels).</summary>
    public static bool IsPositive(float label) => label >= 0.5f;

    public static void CheckLengths(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels)
    {
        if (scores.Length != labels.Length)
            throw new ArgumentException($"{scores.Length} scores but {labels.Length} labels; they must pair up", nameof(labels));
        if (scores.Length == 0) throw new ArgumentException("no samples to score", nameof(scores));
    }
}
