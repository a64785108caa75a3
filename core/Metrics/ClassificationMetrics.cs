namespace SplitFunctions.Core.Metrics;

/// <summary>Accuracy and ROC AUC of a binary classifier, computed at the hospital from scores and 0/1 labels.</summary>
public static class ClassificationMetrics
{
    /// <summary>Share of samples whose score falls on the labelled side of <paramref name="threshold"/>.</summary>
    public static double Accuracy(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels, double threshold = 0.5) =>
        ConfusionMatrix.At(scores, labels, threshold).Accuracy;

    /// <summary>
    /// Area under the ROC curve as the Mann-Whitney U statistic over average ranks, so tied scores count one half.
    /// Any monotone score works (probabilities or logits). NaN when the labels hold only one class.
    /// </summary>
    public static double RocAuc(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels)
    {
        BinaryLabels.CheckLengths(scores, labels);
        var n = scores.Length;
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            if (float.IsNaN(scores[i])) throw new ArgumentException($"score {i} is NaN; the model output is not usable", nameof(scores));
            order[i] = i;
        }
        var keys = scores.ToArray();
        Array.Sort(keys, order);

        double positiveRankSum = 0;
        long positives = 0;
        for (var start = 0; start < n;)
        {
            var end = start;
            while (end + 1 < n && keys[end + 1] == keys[start]) end++;
            // Ranks are 1-based; every member of a tie gets the tie's average rank.
            var averageRank = (start + end + 2) / 2.0;
            for (var k = start; k <= end; k++)
                if (BinaryLabels.IsPositive(labels[order[k]]))
                {
                    positiveRankSum += averageRank;
                    positives++;
                }
            start = end + 1;
        }
        var negatives = n - positives;
        if (positives == 0 || negatives == 0) return double.NaN;
        var u = positiveRankSum - positives * (positives + 1) / 2.0;
        return u / ((double)positives * negatives);
    }
}
