namespace SplitFunctions.Core.Metrics;

/// <summary>
/// Metrics of a K-class classifier from its logits (row-major, K per sample) and class-index labels: accuracy, balanced
/// accuracy (mean recall over the classes present), one-vs-rest ROC AUC averaged over classes (macro) and over all
/// sample-class pairs (micro, as scikit-learn's roc_auc_score(average="micro") on one-hot labels), and the confusion
/// matrix (rows: true class, columns: predicted class).
/// </summary>
public sealed record MultiClassScores(double Accuracy, double BalancedAccuracy, double MacroAuc, double MicroAuc, IReadOnlyList<double> AucPerClass,
    int[][] Confusion, int Samples)
{
    public static MultiClassScores Score(ReadOnlySpan<float> logits, ReadOnlySpan<float> labels, int classes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        var n = labels.Length;
        if (logits.Length != n * classes) throw new ArgumentException($"{logits.Length} logits are not {classes} for each of {n} samples", nameof(logits));
        var probabilities = Softmax(logits, classes);
        var confusion = Enumerable.Range(0, classes).Select(_ => new int[classes]).ToArray();
        for (var i = 0; i < n; i++)
        {
            var truth = (int)labels[i];
            if (truth < 0 || truth >= classes || truth != labels[i])
                throw new ArgumentException($"label {labels[i]} of sample {i} is not a class 0..{classes - 1}", nameof(labels));
            var row = probabilities.AsSpan(i * classes, classes);
            var predicted = 0;
            for (var k = 1; k < classes; k++) if (row[k] > row[predicted]) predicted = k;
            confusion[truth][predicted]++;
        }
        var correct = Enumerable.Range(0, classes).Sum(k => confusion[k][k]);
        var recalls = Enumerable.Range(0, classes).Where(k => confusion[k].Sum() > 0).Select(k => confusion[k][k] / (double)confusion[k].Sum()).ToList();

        var perClass = new double[classes];
        var scores = new float[n];
        var oneHot = new float[n];
        var allScores = new float[n * classes];
        var allLabels = new float[n * classes];
        for (var k = 0; k < classes; k++)
        {
            for (var i = 0; i < n; i++)
            {
                scores[i] = probabilities[(i * classes) + k];
                oneHot[i] = labels[i] == k ? 1f : 0f;
                allScores[(i * classes) + k] = scores[i];
                allLabels[(i * classes) + k] = oneHot[i];
            }
            perClass[k] = ClassificationMetrics.RocAuc(scores, oneHot);
        }
        var defined = perClass.Where(double.IsFinite).ToList();
        return new MultiClassScores(
            n == 0 ? double.NaN : correct / (double)n,
            recalls.Count == 0 ? double.NaN : recalls.Average(),
            defined.Count == 0 ? double.NaN : defined.Average(),
            ClassificationMetrics.RocAuc(allScores, allLabels),
            perClass,
            confusion,
            n);
    }

    /// <summary>Softmax per row, shifted by the row's maximum so large logits do not overflow.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits, int classes)
    {
        var result = new float[logits.Length];
        for (var start = 0; start < logits.Length; start += classes)
        {
            var row = logits.Slice(start, classes);
            var max = float.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            for (var k = 0; k < classes; k++) sum += result[start + k] = MathF.Exp(row[k] - max);
            for (var k = 0; k < classes; k++) result[start + k] = (float)(result[start + k] / sum);
        }
        return result;
    }
}

/// <summary>Metrics of a K-label classifier from its logits (K per sample) and 0/1 labels (K per sample): ROC AUC per label and their mean.</summary>
public sealed record MultiLabelScores(IReadOnlyList<double> AucPerLabel, double MeanAuc, int Samples)
{
    public static MultiLabelScores Score(ReadOnlySpan<float> logits, ReadOnlySpan<float> labels, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (logits.Length != labels.Length || logits.Length % width != 0)
            throw new ArgumentException($"{logits.Length} logits and {labels.Length} labels are not {width} per sample", nameof(logits));
        var n = labels.Length / width;
        var perLabel = new double[width];
        var scores = new float[n];
        var truth = new float[n];
        for (var k = 0; k < width; k++)
        {
            for (var i = 0; i < n; i++)
            {
                // The sigmoid is monotone: AUC from logits equals AUC from probabilities.
                scores[i] = logits[(i * width) + k];
                truth[i] = labels[(i * width) + k];
            }
            perLabel[k] = ClassificationMetrics.RocAuc(scores, truth);
        }
        var defined = perLabel.Where(double.IsFinite).ToList();
        return new MultiLabelScores(perLabel, defined.Count == 0 ? double.NaN : defined.Average(), n);
    }
}
