using System.Globalization;
using System.Text.Json;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>Writes a study's results.json, results.md (paper-style tables) and report.html (curves, error CDF).</summary>
public static class StudyReport
{
    public static void Write(string folder, StudyOptions options, StudyMaterial material, IReadOnlyList<ArmResult> arms,
        FriedewaldBaseline? friedewald)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(material);
        ArgumentNullException.ThrowIfNull(arms);
        var json = new
        {
            study = options.Name,
            createdAt = DateTimeOffset.UtcNow,
            configuration = options,
            machine = new { cores = Environment.ProcessorCount, threads = TorchRuntime.Threads },
            split = new
            {
                validation = material.Validation.Count,
                test = material.Test.Count,
                hospitals = material.Hospitals.Select((h, i) => new { id = material.HospitalIds[i], samples = h.Count })
            },
            targetScaling = material.IsTabular ? material.Scaling : null,
            arms = arms.Select(a => new
            {
                a.Arm,
                a.Description,
                a.Test,
                a.PerHospital,
                a.ScoredBy,
                a.Seconds,
                a.TrainingSamples,
                a.SelectedEpoch,
                a.History,
                a.Audits,
            }),
            friedewald = friedewald is { } f
                ? new
                {
                    columns = f.Columns,
                    all = f.All,
                    tgBelow400 = f.TgBelow400,
                    rowsTgBelow400 = f.RowsTgBelow400,
                    tgFrom400 = f.TgFrom400,
                    rowsTgFrom400 = f.RowsTgFrom400
                }
                : null,
        };
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(json, JsonOptions));

        var table = ResultsTable(material, arms, friedewald);
        var perHospital = PerHospitalTable(material, arms);
        var audited = arms.Where(a => a.Audits is not null).SelectMany(a => a.Audits!.Select(h => ($"{a.Arm} {h.Key}", h.Value))).ToList();
        var audits = audited.Count == 0 ? null : AuditSummary.Table(audited);
        File.WriteAllText(Path.Combine(folder, "results.md"),
            $"# Study {options.Name}\n\n{material.Describe()}\n\n{MarkdownTable.Write(table)}\n\n{MarkdownTable.Write(perHospital)}\n"
            + (audits is null ? "" : $"\n{MarkdownTable.Write(audits)}\n"));

        var report = new HtmlReport($"SplitFunctions study: {options.Name}")
            .AddParagraph(material.Describe())
            .AddTable(table)
            .AddTable(perHospital)
            .AddChart(new LineChart("Training loss per epoch", "epoch", "loss",
                [.. arms.Select(a => LineSeries.PerEpoch(a.Arm, [.. a.History.Select(h => h.TrainLoss)]))]))
            .AddChart(new LineChart(material.IsTabular ? "Validation: minus mean squared error (wire scale)" : "Validation AUC per epoch", "epoch", "score",
                [.. arms.Select(a => LineSeries.PerEpoch(a.Arm, [.. a.History.Select(h => h.ValidationScore)]))]));
        if (audits is not null)
        {
            report.AddHeading("What a curious server could rebuild (leakage audit per arm and hospital)")
                .AddParagraph(AuditSummary.Explanation)
                .AddTable(audits);
            foreach (var arm in arms.Where(a => a.Audits is not null))
            {
                var (hospital, audit) = arm.Audits!.First();
                if (File.Exists(audit.PicturePath)) report.AddImage(File.ReadAllBytes(audit.PicturePath), $"{arm.Arm}, {hospital}: test originals (top row), "
                    + $"the mean image, then each attack's reconstructions");
                if (audit.Attacks.Count > 0) report.AddTable(AuditSummary.AttackTable($"{arm.Arm}, {hospital}", audit));
            }
        }
        if (material.IsTabular)
        {
            var series = arms.Where(a => a.TestPredictions is not null)
                .Select(a => new CdfSeries(a.Arm,
                    RegressionMetrics.AbsoluteErrors(material.RawTestTargets, Array.ConvertAll(a.TestPredictions!, material.Scaling.FromWire)))).ToList();
            if (friedewald is { } fw) series.Add(new CdfSeries("friedewald", RegressionMetrics.AbsoluteErrors(material.RawTestTargets, fw.Predictions)));
            // The x axis stops at the 99th percentile of all errors (larger ones are drawn at the edge), so the curves stay readable.
            var all = series.SelectMany(x => x.Samples).Order().ToList();
            var cut = all.Count == 0 ? 0 : all[(int)(0.99 * (all.Count - 1))];
            series = [.. series.Select(x => new CdfSeries(x.Name, [.. x.Samples.Select(v => Math.Min(v, cut))]))]; // larger errors pile up at the edge
            report.AddChart(new CdfChart($"Per-patient absolute error on the test split (CDF, Fig. 9 style; up to the 99th percentile, {cut:F0} "
                + $"mg/dL)", "|LDL - predicted| (mg/dL)", series));
        }
        report.AddConfiguration(new Dictionary<string, string>
        {
            ["data"] = options.Data,
            ["model"] = options.Model,
            ["epochs"] = options.Epochs.ToString(CultureInfo.InvariantCulture),
            ["batch size"] = options.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["learning rate"] = options.LearningRate.ToString(CultureInfo.InvariantCulture),
            ["seed"] = options.Seed.ToString(CultureInfo.InvariantCulture),
            ["threads / cores"] = $"{TorchRuntime.Threads} / {Environment.ProcessorCount}",
        });
        report.Save(Path.Combine(folder, "report.html"));
    }

    /// <summary>Split-learning arms hospital by hospital: each scored the test rows with its own client layer, at the hospital.</summary>
    private static ReportTable PerHospitalTable(StudyMaterial material, IReadOnlyList<ArmResult> arms)
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var arm in arms.Where(a => a.PerHospital is not null))
        {
            foreach (var (hospital, scores) in arm.PerHospital!)
            {
                var scoredBy = arm.ScoredBy?.GetValueOrDefault(hospital) ?? "not recorded";
                rows.Add(scores.Classification is { } c
                    ? [arm.Arm, hospital, ReportTable.Percent(c.Accuracy), ReportTable.Number(c.RocAuc), scoredBy]
                    : [arm.Arm, hospital, ReportTable.Number(scores.Regression!.Msle), ReportTable.Number(scores.Regression.Rmsle),
                        $"{scores.Regression.SmapePercent:F2}%", scoredBy]);
            }
        }
        string[] headers = material.IsTabular
            ? ["arm", "hospital", "MSLE", "RMSLE", "sMAPE", "scored by the server's"]
            : ["arm", "hospital", "test accuracy", "test AUC", "scored by the server's"];
        return new ReportTable(headers, rows)
        {
            Caption = "Split learning per hospital (metrics computed at each hospital, predictions made by the server model named)",
            RightAligned = new HashSet<int>(Enumerable.Range(2, headers.Length - 3))
        };
    }

    private static ReportTable ResultsTable(StudyMaterial material, IReadOnlyList<ArmResult> arms,
        FriedewaldBaseline? friedewald)
    {
        var rows = new List<IReadOnlyList<string>>();
        if (!material.IsTabular)
        {
            foreach (var a in arms)
            {
                var c = a.Test.Classification!;
                rows.Add([a.Arm, a.Description, ReportTable.Percent(c.Accuracy), ReportTable.Number(c.RocAuc),
                    a.SelectedEpoch.ToString(CultureInfo.InvariantCulture), a.TrainingSamples.ToString(CultureInfo.InvariantCulture)]);
            }
            return new ReportTable(["arm", "what", "test accuracy", "test AUC", "epoch (validation)", "training samples"], rows)
            {
                Caption = "Test split, scored once per arm (cf. paper Table 5)",
                RightAligned = new HashSet<int> { 2, 3, 4, 5 },
            };
        }
        foreach (var a in arms)
        {
            var r = a.Test.Regression!;
            rows.Add([a.Arm, a.Description, ReportTable.Number(r.Msle), ReportTable.Number(r.Rmsle), $"{r.SmapePercent:F2}%",
                a.SelectedEpoch.ToString(CultureInfo.InvariantCulture), a.TrainingSamples.ToString(CultureInfo.InvariantCulture)]);
        }
        if (friedewald is { } f)
        {
            void Add(string arm, string what, TestScores? scores)
            {
                if (scores?.Regression is not { } r) rows.Add([arm, what, "-", "-", "-", "-", "-"]);
                else rows.Add([arm, what, ReportTable.Number(r.Msle), ReportTable.Number(r.Rmsle), $"{r.SmapePercent:F2}%", "-", "-"]);
            }
            var formula = $"{f.Columns.TotalCholesterol} - {f.Columns.Hdl} - {f.Columns.Triglycerides}/5, no training";
            Add("friedewald", $"{formula} (all {f.All.Regression!.Samples} test rows)", f.All);
            Add("friedewald (TG<400)", $"the {f.RowsTgBelow400} test rows where the formula is valid", f.TgBelow400);
            Add("friedewald (TG>=400)", $"the {f.RowsTgFrom400} test rows with TG >= 400 mg/dL, where the formula is not valid", f.TgFrom400);
        }
        return new ReportTable(["arm", "what", "MSLE", "RMSLE", "sMAPE (paper eq. 5)", "epoch (validation)", "training samples"], rows)
        {
            Caption = "Test split, scored once per arm (cf. paper Table 7)",
            RightAligned = new HashSet<int> { 2, 3, 4, 5, 6 },
        };
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
