using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>Test metrics of one arm (or one hospital of a split-learning arm), scored once on the test split.</summary>
public sealed record TestScores(ClassificationScores? Classification, RegressionScores? Regression)
{
    /// <summary>Scores predictions the way the task defines: accuracy/AUC, or MSLE/RMSLE/sMAPE.</summary>
    public static TestScores Of(TaskKind task, float[] predictions, float[] targets) => task == TaskKind.Classification
        ? new TestScores(ClassificationScores.Score(predictions, targets), null)
        : new TestScores(null, RegressionMetrics.Score(targets, predictions));
}

/// <summary>One arm of a study: how it trained (per-epoch history) and what it scored.</summary>
public sealed record ArmResult(
    string Arm,
    string Description,
    IReadOnlyList<EpochResult> History,
    TestScores Test,
    IReadOnlyDictionary<string, TestScores>? PerHospital,
    double Seconds,
    int TrainingSamples,
    int SelectedEpoch)
{
    /// <summary>Test predictions on the original scale (for per-sample error plots); one hospital's for split arms.</summary>
    public float[]? TestPredictions { get; init; }

    /// <summary>Split arms: per hospital, the server model that made its test predictions (<see cref="Core.Contract.ModelVersion.Describe"/>).</summary>
    public IReadOnlyDictionary<string, string>? ScoredBy { get; init; }

    /// <summary>Split arms on images: each hospital's leakage audit of its trained layer (what the server could rebuild).</summary>
    public IReadOnlyDictionary<string, AuditSummary>? Audits { get; init; }
}

/// <summary>Scores test predictions (on the wire scale) against the study's test targets.</summary>
public delegate TestScores TestScorer(float[] predictions);

/// <summary>Validation scorers: higher is better.</summary>
public static class ValidationScores
{
    public static ValidationScorer For(TaskKind task) => task == TaskKind.Classification
        ? (p, y) => ClassificationMetrics.RocAuc(p, y)
        : (p, y) => -MeanSquaredError(p, y); // on the wire scale, where log errors are undefined for negative values

    private static double MeanSquaredError(float[] p, float[] y)
    {
        double sum = 0;
        for (var i = 0; i < p.Length; i++) sum += (p[i] - y[i]) * (double)(p[i] - y[i]);
        return sum / Math.Max(1, p.Length);
    }
}
