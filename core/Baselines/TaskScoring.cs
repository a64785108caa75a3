using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Core.Baselines;

/// <summary>The validation score that picks a baseline arm's epoch, by task: higher is better.</summary>
public static class TaskScoring
{
    /// <summary>
    /// ROC AUC (binary), macro one-vs-rest AUC (multi-class, from K logits), mean AUC over labels (multi-label), minus the
    /// mean squared error on the wire scale (regression). An undefined AUC (one class only) scores lowest.
    /// </summary>
    public static ValidationScorer Validation(ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(model);
        static double Defined(double v) => double.IsFinite(v) ? v : double.NegativeInfinity;
        var width = model.OutputWidth;
        return model.Task switch
        {
            TaskKind.Classification => (p, y) => Defined(ClassificationMetrics.RocAuc(p, y)),
            TaskKind.MultiClass => (p, y) => Defined(MultiClassScores.Score(p, y, width).MacroAuc),
            TaskKind.MultiLabel => (p, y) => Defined(MultiLabelScores.Score(p, y, width).MeanAuc),
            _ => (p, y) => -MeanSquaredError(p, y),
        };
    }

    private static double MeanSquaredError(float[] p, float[] y)
    {
        double sum = 0;
        for (var i = 0; i < p.Length; i++) sum += (p[i] - y[i]) * (double)(p[i] - y[i]);
        return sum / Math.Max(1, p.Length);
    }
}
