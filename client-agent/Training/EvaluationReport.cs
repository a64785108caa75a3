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

/// <summary>Regression metrics of one evaluation, the paper's equations (3)-(5), in the target's own units.</summary>
public sealed record RegressionResult(double Msle, double Rmsle, double SmapePercent, string SmapeVariant);

/// <summary>`&lt;state&gt;/&lt;run&gt;/evaluation.json`: metrics computed at the hospital from predictions and local labels (which never left).</summary>
public sealed record EvaluationReport(string RunId, string HospitalId, string Model, string Split, int Samples, ClassificationResult? Classification,
    RegressionResult? Regression, DateTimeOffset At)
{
    /// <summary>The server model that made every prediction scored here (one model per evaluation); null only for reports of earlier releases.</summary>
    public ModelVersion? ServerModel { get; init; }

    /// <summary>Reads `evaluation.json`; null when there is none.</summary>
    public static EvaluationReport? Load(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllBytes(path), StateJson.Options) : null;

    /// <summary>The one number a history or a log line shows: AUC for classification, MSLE for regression.</summary>
    public (string Metric, double Value) Headline => Classification is { } c ? ("auc", c.RocAuc) : ("msle", Regression!.Msle);

    public static EvaluationReport Score(HospitalRun run, string split, TrainingSet data, float[] predictions)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(data);
        var manifest = run.Manifest;
        if (manifest.ModelDefinition.Task == TaskKind.Classification)
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
        if (Regression is { } r)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  MSLE {r.Msle:F4}  RMSLE {r.Rmsle:F4}  sMAPE {r.SmapePercent:F2}%");
            yield return "  " + r.SmapeVariant;
        }
    }
}
