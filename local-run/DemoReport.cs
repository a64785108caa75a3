using System.Globalization;
using System.Text.Json;
using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.LocalRun;

/// <summary>A hospital's privacy spent over the run: epsilon at delta (null: no guarantee), sigma, and the releases per sample.</summary>
public sealed record HospitalPrivacy(double? Epsilon, double Delta, double? NoiseMultiplier, int Releases);

/// <summary>The demo's results.json, report.html (loss and validation curves per epoch, per-hospital metrics, configuration) and console table.</summary>
public static class DemoReport
{
    public static void Write(string folder, SplitRunSettings settings, string source, IReadOnlyList<HospitalOutcome> outcomes,
        IReadOnlyList<ServerEpoch> serverEpochs, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(outcomes);
        var results = new
        {
            createdAt = DateTimeOffset.UtcNow,
            data = source,
            model = settings.Model.Name,
            mode = settings.Mode.ToString().ToLowerInvariant(),
            settings.Epochs,
            settings.BatchSize,
            settings.LearningRate,
            settings.Seed,
            machine = new { cores = Environment.ProcessorCount, threadsPerProcess = settings.Threads },
            seconds = Math.Round(elapsed.TotalSeconds, 1),
            hospitals = outcomes.Select(o => new
            {
                o.HospitalId,
                o.TrainExitCode,
                o.EvaluateExitCode,
                // Epsilon at delta over every release of the hospital's samples (null: the run states no guarantee).
                privacy = Privacy(o),
                evaluation = o.Evaluation,
                history = o.History,
                audit = o.Audit,
            }),
            serverEpochs,
        };
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(results, SplitRun.Json));

        var table = new ReportTable(["hospital", "test samples", "accuracy", "ROC AUC", "TP", "FP", "TN", "FN", "epsilon (delta)", "scored by the server's"],
            [.. outcomes.Select(o => Row(o))])
        { Caption = "Test metrics, computed at each hospital (test labels never left it), and the server model that made the predictions" };
        var epochs = outcomes.Select(o => History(o)).ToList();
        var report = new HtmlReport($"SplitFunctions demo: {settings.Model.Name}, {settings.Mode.ToString().ToLowerInvariant()} split learning")
            .AddParagraph($"Data: {source}. {outcomes.Count} hospitals, {settings.Epochs} epochs, batch {settings.BatchSize}, {elapsed.TotalMinutes:F1} "
                + $"minutes on {Environment.ProcessorCount} cores.")
            .AddTable(table)
            .AddChart(new GroupedBarChart("Test metrics per hospital", "value", [.. outcomes.Select(o => o.HospitalId)],
                [new BarSeries("accuracy", [.. outcomes.Select(o => Metric(o, "accuracy"))]),
                    new BarSeries("ROC AUC", [.. outcomes.Select(o => Metric(o, "rocAuc"))])]));
        if (serverEpochs.Count > 0)
        {
            // Temporal mode: the hospitals went offline after uploading; the server's loss per epoch is the curve.
            report.AddChart(new LineChart("Server training loss per epoch (temporal: over every hospital's features)", "epoch", "loss",
                [LineSeries.PerEpoch("server", [.. serverEpochs.Select(e => e.Loss)])]));
        }
        else
        {
            report.AddChart(new LineChart("Mean training loss per epoch (from the function's replies)", "epoch", "loss",
                    [.. outcomes.Select((o, i) => LineSeries.PerEpoch(o.HospitalId, [.. epochs[i].Select(e => e.Loss)]))]))
                .AddChart(new LineChart("Validation AUC per epoch (at each hospital)", "epoch", "AUC",
                    [.. outcomes.Select((o, i) => LineSeries.PerEpoch(o.HospitalId, [.. epochs[i].Select(e => e.Validation)]))]));
        }
        if (outcomes.Any(o => o.Audit is not null))
        {
            var audits = AuditSummary.Table(outcomes.Where(o => o.Audit is not null).Select(o => (o.HospitalId, o.Audit!)));
            report.AddHeading("What a curious server could rebuild (leakage audit at each hospital)")
                .AddParagraph(AuditSummary.Explanation)
                .AddTable(audits);
            var first = outcomes.First(o => o.Audit is not null);
            if (File.Exists(first.Audit!.PicturePath))
                report.AddImage(File.ReadAllBytes(first.Audit.PicturePath), $"{first.HospitalId}: test originals (top row), the mean image, then each "
                    + $"attack's reconstructions");
            foreach (var o in outcomes.Where(o => o.Audit is { Attacks.Count: > 0 })) report.AddTable(AuditSummary.AttackTable(o.HospitalId, o.Audit!));
            Console.WriteLine(MarkdownTable.Write(audits));
        }
        report.AddConfiguration(new Dictionary<string, string>
        {
            ["model"] = settings.Model.Name,
            ["mode"] = settings.Mode.ToString(),
            ["epochs"] = settings.Epochs.ToString(CultureInfo.InvariantCulture),
            ["batch size"] = settings.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["learning rate"] = settings.LearningRate.ToString(CultureInfo.InvariantCulture),
            ["seed"] = settings.Seed.ToString(CultureInfo.InvariantCulture),
            ["hospitals"] = string.Join(", ", settings.Hospitals),
            ["threads per process"] = settings.Threads.ToString(CultureInfo.InvariantCulture),
        });
        report.Save(Path.Combine(folder, "report.html"));

        Console.WriteLine();
        Console.WriteLine(MarkdownTable.Write(table));
        Console.WriteLine($"results: {Path.Combine(folder, "results.json")}  report: {Path.Combine(folder, "report.html")}  ({elapsed.TotalMinutes:F1} min)");
    }

    private static List<string> Row(HospitalOutcome o)
    {
        if (o.Evaluation is not { } e || !e.TryGetProperty("classification", out var c) || c.ValueKind != JsonValueKind.Object)
        {
            return [o.HospitalId, "-", $"failed (train exit {o.TrainExitCode}, evaluate exit {o.EvaluateExitCode})", "-", "-", "-", "-", "-", "-", "-"];
        }
        string I(string name) => c.GetProperty(name).GetInt32().ToString(CultureInfo.InvariantCulture);
        var privacy = Privacy(o);
        var epsilon = privacy is null ? "-" : privacy.Epsilon is { } eps
            ? string.Create(CultureInfo.InvariantCulture, $"{eps:F2} ({privacy.Delta:G2})") : "no guarantee";
        return [o.HospitalId, e.GetProperty("samples").GetInt32().ToString(CultureInfo.InvariantCulture),
            ReportTable.Percent(c.GetProperty("accuracy").GetDouble()),
            ReportTable.Number(c.GetProperty("rocAuc").GetDouble()), I("truePositives"), I("falsePositives"), I("trueNegatives"), I("falseNegatives"),
            epsilon, o.ScoredBy?.Describe() ?? "not recorded"];
    }

    /// <summary>A hospital's spent privacy as its evaluation recorded it (evaluation.json's "privacy"), or null when it has none.</summary>
    public static HospitalPrivacy? Privacy(HospitalOutcome o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Evaluation is not { } e || !e.TryGetProperty("privacy", out var p) || p.ValueKind != JsonValueKind.Object) return null;
        double? Number(string name) => p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        int Count(string name) => p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : 0;
        return new HospitalPrivacy(Number("epsilon"), Number("delta") ?? 0, Number("noiseMultiplier"),
            Count("trainingPasses") + Count("validationPasses") + Count("evaluationPasses"));
    }

    private static double Metric(HospitalOutcome o, string name) =>
        o.Evaluation is { } e && e.TryGetProperty("classification", out var c) && c.ValueKind == JsonValueKind.Object ? c.GetProperty(name).GetDouble()
            : double.NaN;

    private static List<(double Loss, double Validation)> History(HospitalOutcome o)
    {
        if (o.History is not { ValueKind: JsonValueKind.Array } h) return [];
        return [.. h.EnumerateArray().Select(e => (
            e.GetProperty("meanTrainLoss").GetDouble(),
            e.TryGetProperty("validationValue", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN))];
    }
}
