namespace SplitFunctions.Core.Metrics;

/// <summary>
/// The regression metrics of Ha et al. 2021 (arXiv 2108.10147), equations (3)-(5), used for the LDL task:
/// MSLE = mean((log(y+1) - log(ŷ+1))²), RMSLE = √MSLE, and their sMAPE = 100%/n · Σ |y-ŷ| / (|y|+|ŷ|).
/// </summary>
public static class RegressionMetrics
{
    /// <summary>How the sMAPE here is defined: the paper's form, without the usual factor 2, so it ranges 0-100%.</summary>
    public const string SmapeVariant = "sMAPE as in Ha et al. eq. (5): 100%/n * sum |y - yhat| / (|y| + |yhat|) (no factor 2; range 0-100%)";

    /// <summary>Mean squared logarithmic error, eq. (3). Values must exceed -1 (log(x + 1) is defined).</summary>
    public static double Msle(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted)
    {
        CheckLengths(actual, predicted);
        double sum = 0;
        for (var i = 0; i < actual.Length; i++) sum += SquaredLogError(actual[i], predicted[i], i);
        return sum / actual.Length;
    }

    /// <summary>Root mean squared logarithmic error, eq. (4).</summary>
    public static double Rmsle(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted) => Math.Sqrt(Msle(actual, predicted));

    /// <summary>Symmetric mean absolute percentage error in percent, the paper's eq. (5) (see <see cref="SmapeVariant"/>); a pair of zeros adds 0.</summary>
    public static double Smape(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted)
    {
        CheckLengths(actual, predicted);
        double sum = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            double y = actual[i], yhat = predicted[i];
            var denominator = Math.Abs(y) + Math.Abs(yhat);
            if (denominator > 0) sum += Math.Abs(y - yhat) / denominator;
        }
        return 100.0 * sum / actual.Length;
    }

    /// <summary>Per-sample |y - ŷ| in the target's unit (mg/dL for LDL).</summary>
    public static double[] AbsoluteErrors(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted)
    {
        CheckLengths(actual, predicted);
        var errors = new double[actual.Length];
        for (var i = 0; i < errors.Length; i++) errors[i] = Math.Abs((double)actual[i] - predicted[i]);
        return errors;
    }

    /// <summary>All three paper metrics at once.</summary>
    public static RegressionScores Score(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted)
    {
        var msle = Msle(actual, predicted);
        return new RegressionScores(msle, Math.Sqrt(msle), Smape(actual, predicted), actual.Length);
    }

    private static double SquaredLogError(double y, double yhat, int index)
    {
        if (y <= -1 || yhat <= -1 || double.IsNaN(y) || double.IsNaN(yhat))
            throw new ArgumentOutOfRangeException(nameof(y), $"sample {index}: actual {y}, predicted {yhat}; MSLE needs values above -1 (clip predictions at "
                + $"0 first)");
        var d = Math.Log(y + 1) - Math.Log(yhat + 1);
        return d * d;
    }

    private static void CheckLengths(ReadOnlySpan<float> actual, ReadOnlySpan<float> predicted)
    {
        if (actual.Length != predicted.Length)
            throw new ArgumentException($"{actual.Length} actual values but {predicted.Length} predictions; they must pair up", nameof(predicted));
        if (actual.Length == 0) throw new ArgumentException("no samples to score", nameof(actual));
    }
}

/// <summary>The paper's regression metrics for one evaluation; sMAPE in percent, the paper's form.</summary>
public sealed record RegressionScores(double Msle, double Rmsle, double SmapePercent, int Samples);

/// <summary>The classification metrics for one evaluation.</summary>
public sealed record ClassificationScores(double Accuracy, double RocAuc, ConfusionMatrix Confusion, double Threshold)
{
    public static ClassificationScores Score(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels, double threshold = 0.5)
    {
        var confusion = ConfusionMatrix.At(scores, labels, threshold);
        return new ClassificationScores(confusion.Accuracy, ClassificationMetrics.RocAuc(scores, labels), confusion, threshold);
    }
}
