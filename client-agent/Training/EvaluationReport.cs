using System.Globalization;
using System.Text.Json;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>Classification metrics of one evaluation (core/Metrics).</summary>
public sealed record ClassificationResult(double Accuracy, double RocAuc, int TruePositives, int FalsePositives, int TrueNegatives, int FalseNegatives,
    double Threshold);

/// <summary>
/// Multi-class metrics of one evaluation: accuracy, balanced accuracy, one-vs-rest ROC AUC (macro, micro, per class; null
/// where a class is absent from the split) and the confusion matrix (rows: true class, columns: predicted).
/// </summary>
public sealed record MultiClassResult(double Accuracy, double BalancedAccuracy, double? MacroAuc, double? MicroAuc, IReadOnlyList<double?> AucPerClass,
    int[][] Confusion);

/// <summary>Multi-label metrics of one evaluation: ROC AUC per label (null where a label has one value only in the split) and their mean.</summary>
public sealed record MultiLabelResult(IReadOnlyList<double?> AucPerLabel, double? MeanAuc);

/// <summary>Regression metrics of one evaluation, the paper's equations (3)-(5), in the target's own units.</summary>
public sealed record RegressionResult(double Msle, double Rmsle, double SmapePercent, string SmapeVariant);

/// <summary>`&lt;state&gt;/&lt;run&gt;/evaluation.json`: metrics computed at the hospital from predictions and local labels (which never left).</summary>
public sealed record EvaluationReport(string RunId, string HospitalId, string Model, string Split, int Samples, ClassificationResult? Classification,
    RegressionResult? Regression, DateTimeOffset At)
{
    /// <summary>What this hospital's releases had spent when the evaluation finished: epsilon at delta (null: no guarantee) and the passes.</summary>
    public ReleaseLedger? Privacy { get; init; }

    /// <summary>The server model that made every prediction scored here (one model per evaluation); null only for reports of earlier releases.</summary>
    public ModelVersion? ServerModel { get; init; }

    /// <summary>Reads `evaluation.json`; null when there is none.</summary>
    public static EvaluationReport? Load(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllBytes(path), StateJson.Options) : null;

    public MultiClassResult? MultiClass { get; init; }

    public MultiLabelResult? MultiLabel { get; init; }

    /// <summary>
    /// The one number a history or a log line shows: AUC for classification (macro for multi-class, the mean for multi-label), MSLE for regression.
    /// </summary>
    public (string Metric, double Value) Headline =>
        Classification is { } c ? ("auc", c.RocAuc)
        : MultiClass is { } m ? ("macro-auc", m.MacroAuc ?? double.NaN)
        : MultiLabel is { } l ? ("mean-auc", l.MeanAuc ?? double.NaN)
        : ("msle", Regression!.Msle);

    public static EvaluationReport Score(HospitalRun run, string split, TrainingSet data, float[] predictions)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(data);
        var manifest = run.Manifest;
        var model = manifest.ModelDefinition;
        static double? Defined(double v) => double.IsFinite(v) ? v : null;
        if (model.Task == TaskKind.MultiClass)
        {
            var m = MultiClassScores.Score(predictions, data.Targets, model.OutputWidth);
            return Report(null, null) with
            {
                MultiClass = new MultiClassResult(m.Accuracy, m.BalancedAccuracy, Defined(m.MacroAuc), Defined(m.MicroAuc),
                    [.. m.AucPerClass.Select(Defined)], m.Confusion),
            };
        }
        if (model.Task == TaskKind.MultiLabel)
        {
            var l = MultiLabelScores.Score(predictions, data.Targets, model.OutputWidth);
            return Report(null, null) with { MultiLabel = new MultiLabelResult([.. l.AucPerLabel.Select(Defined)], Defined(l.MeanAuc)) };
        }
        if (model.Task == TaskKind.Classification)
        {
            var s = ClassificationScores.Score(predictions, data.Targets);
            var c = s.Confusion;
            return Report(new ClassificationResult(s.Accuracy, s.RocAuc, c.TruePositives, c.FalsePositives, c.TrueNegatives, c.FalseNegatives, s.Threshold),
                null);
        }
        // Back to the target's units; negative predictions are clipped at 0 because log(1 + y) needs y > -1 and targets are non-negative.
        var scaling = manifest.TargetScaling;
        var actual = Array.ConvertAll(data.Targets, scaling.FromWire);
        var predicted = Array.ConvertAll(predictions, p => Math.Max(0f, scaling.FromWire(p)));
        var r = RegressionMetrics.Score(actual, predicted);
        return Report(null, new RegressionResult(r.Msle, r.Rmsle, r.SmapePercent, RegressionMetrics.SmapeVariant));

        // One report whichever the task: the same run, hospital, model, split and count, with the task's result.
        EvaluationReport Report(ClassificationResult? classification, RegressionResult? regression) =>
            new(manifest.RunId, run.Config.HospitalId, manifest.Model, split, data.Count, classification, regression, DateTimeOffset.UtcNow);
    }

    public void Save(string path) => AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(this, StateJson.Options));

    /// <summary>Lines for the console and the log.</summary>
    public IEnumerable<string> Describe()
    {
        yield return string.Create(CultureInfo.InvariantCulture, $"evaluation of run {RunId} at {HospitalId}, {Split} split, {Samples} samples ({Model}):");
        if (ServerModel is { } server) yield return "  scored by the server's " + server.Describe();
        if (Classification is { } c)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  accuracy {c.Accuracy:P2}  ROC AUC {c.RocAuc:F4}  (threshold {c.Threshold})");
            yield return string.Create(CultureInfo.InvariantCulture, $"  confusion: TP {c.TruePositives}  FP {c.FalsePositives}  TN {c.TrueNegatives}  FN "
                + $"{c.FalseNegatives}");
        }
        static string Auc(double? v) => v is { } x ? x.ToString("F4", CultureInfo.InvariantCulture) : "n/a";
        if (MultiClass is { } m)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  accuracy {m.Accuracy:P2}  balanced accuracy {m.BalancedAccuracy:P2}  ROC AUC macro "
                + $"{Auc(m.MacroAuc)} micro {Auc(m.MicroAuc)} (one-vs-rest)");
            yield return "  AUC per class: " + string.Join("  ", m.AucPerClass.Select((a, k) => $"{k}: {Auc(a)}"));
            yield return "  confusion (rows true, columns predicted): " + string.Join(" | ", m.Confusion.Select(row => string.Join(" ", row)));
        }
        if (MultiLabel is { } l)
        {
            yield return $"  ROC AUC mean {Auc(l.MeanAuc)}; per label: " + string.Join("  ", l.AucPerLabel.Select((a, k) => $"{k}: {Auc(a)}"));
        }
        if (Regression is { } r)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  MSLE {r.Msle:F4}  RMSLE {r.Rmsle:F4}  sMAPE {r.SmapePercent:F2}%");
            yield return "  " + r.SmapeVariant;
        }
        if (Privacy is { } p)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  privacy: epsilon {ReleaseBudget.Describe(p.Epsilon)}"
                + $"{(p.Epsilon is null ? "" : $" at delta {p.Delta:G3}")} over {p.Releases} releases per sample");
        }
    }
}
