using System.Globalization;
using System.Text;
using System.Text.Json;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>One mode's insider figures: the run with the insider beside the same run without it, in the same invocation.</summary>
public sealed record InsiderModeFigures(
    string Mode, bool Completed, double BaselineSeconds, double InsiderSeconds, IReadOnlyList<string> UnplannedExits, long? NonFiniteServerValues,
    long StepsLost, long StepsDoubled, long ServerBatchesExpected, long ServerBatchesApplied, IReadOnlyList<HospitalLedger> Hospitals,
    int AttacksSent, int AttacksPoisonedWithReason, IReadOnlyDictionary<string, string> AttacksByKind, IReadOnlyDictionary<string, string> ReasonByKind,
    int ForgedReplies, IReadOnlyList<string> OtherPoisoned, long BaselinePeakRssBytes, long InsiderPeakRssBytes)
{
    /// <summary>The function's peak RSS with the insider over without it.</summary>
    public double RssRatio => BaselinePeakRssBytes > 0 ? (double)InsiderPeakRssBytes / BaselinePeakRssBytes : double.NaN;

    /// <summary>The issue's targets: complete, no crash, a finite model, every honest step once, every attack refused with a reason, RSS within 1.5x.</summary>
    public bool Held => Completed && UnplannedExits.Count == 0 && NonFiniteServerValues == 0 && StepsLost == 0 && StepsDoubled == 0
        && ServerBatchesApplied == ServerBatchesExpected && AttacksPoisonedWithReason == AttacksSent && OtherPoisoned.Count == 0 && RssRatio <= 1.5;
}

/// <summary>The insider run's report (insider-results.json `modes[]`).</summary>
public sealed record InsiderFigures(bool Smoke, int AttacksPerMode, IReadOnlyList<InsiderModeFigures> Modes)
{
    public bool Held => Modes.All(m => m.Held);
}

/// <summary>
/// `splitfn-local chaos --insider`: per mode, the three-hospital run without faults (the baseline: its function's peak
/// RSS), then the same run with a fourth hospital of the run, the insider (<see cref="InsiderMessages"/>), attacking
/// throughout. Kills and outages are left to the fault chaos, so what differs between the two runs is the insider.
/// </summary>
public static class InsiderChaos
{
    public const string InsiderId = "hospital-x";

    private static readonly string[] Hospitals = ["hospital-a", "hospital-b", "hospital-c"];
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> RunAsync(TrainingMode[] modes, int attacks, bool smoke, string folder, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modes);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Say(string line) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}");
        Say($"chaos --insider: per mode a baseline run and a run with insider {InsiderId} sending {attacks} attacks "
            + $"({string.Join(", ", InsiderMessages.Kinds)}) and a forged reply after every third");
        var root = Path.Combine(folder, "insider");
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        Directory.CreateDirectory(root);
        var model = ModelCatalog.Get("pneumonia-cnn");
        var images = SyntheticImages.Generate(smoke ? 240 : 1200, (int)model.InputShape[1], (int)model.InputShape[2], seed: 5);
        var data = Path.Combine(root, "data", "synthetic.npz");
        Directory.CreateDirectory(Path.GetDirectoryName(data)!);
        ImageArchive.Save(data, [new("train", images)]);
        var secretPath = Path.Combine(root, "data", "consortium.secret");
        ConsortiumSecret.Create().Save(secretPath);
        var deadline = smoke ? TimeSpan.FromMinutes(5) : TimeSpan.FromMinutes(30);

        var figures = new List<InsiderModeFigures>();
        foreach (var mode in modes)
        {
            var name = mode.ToString().ToLowerInvariant();
            var settings = new ChaosRunSettings(mode, model, data, mode == TrainingMode.Temporal ? 2 : 1, Seed: 7, secretPath, Hospitals, deadline);
            var baseline = await ChaosRun.RunAsync(settings, null, 0, Path.Combine(root, name + "-baseline", "system"), Say, ct).ConfigureAwait(false);
            var attacked = await ChaosRun.RunAsync(settings with { Insider = InsiderId, InsiderAttacks = attacks }, null, 0,
                Path.Combine(root, name + "-insider", "system"), Say, ct).ConfigureAwait(false);
            figures.Add(Figures(baseline, attacked));
            Say($"{name}: peak function RSS {Mib(baseline.FunctionPeakRss)} MiB without the insider, {Mib(attacked.FunctionPeakRss)} MiB with it");
        }
        var report = new InsiderFigures(smoke, attacks, figures);
        File.WriteAllText(Path.Combine(folder, "insider-results.json"), JsonSerializer.Serialize(report, Json));
        var table = Table(report);
        File.WriteAllText(Path.Combine(folder, "insider-results.md"), table);
        Console.WriteLine();
        Console.WriteLine(table);
        return report.Held ? 0 : (int)Studies.StudyExitCode.InvariantBroken;
    }

    private static InsiderModeFigures Figures(ChaosRunResult baseline, ChaosRunResult run)
    {
        var insider = run.Hostile.Where(h => InsiderMessages.Kinds.Contains(h.Kind)).ToList();
        return new InsiderModeFigures(run.Mode, baseline.Completed && run.Completed, Math.Round(baseline.Seconds, 1), Math.Round(run.Seconds, 1),
            [.. baseline.UnplannedExits.Select(e => "baseline: " + e), .. run.UnplannedExits], run.NonFiniteServerValues, run.Ledger.Lost,
            run.Ledger.Doubled, run.Ledger.ServerBatchesExpected, run.Ledger.ServerBatchesApplied, run.Ledger.Hospitals, insider.Count,
            insider.Count(h => !string.IsNullOrWhiteSpace(h.Reason)),
            insider.GroupBy(h => h.Kind).OrderBy(g => g.Key).ToDictionary(g => g.Key.ToString(),
                g => string.Create(CultureInfo.InvariantCulture, $"{g.Count(h => !string.IsNullOrWhiteSpace(h.Reason))}/{g.Count()}"), StringComparer.Ordinal),
            insider.Where(h => !string.IsNullOrWhiteSpace(h.Reason)).GroupBy(h => h.Kind).OrderBy(g => g.Key)
                .ToDictionary(g => g.Key.ToString(), g => g.First().Reason!, StringComparer.Ordinal),
            run.ForgedReplies, [.. baseline.OtherPoisoned.Select(o => "baseline: " + o), .. run.OtherPoisoned], baseline.FunctionPeakRss,
            run.FunctionPeakRss);
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("F0", CultureInfo.InvariantCulture);

    private static string Table(InsiderFigures f)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine(inv, $"# splitfn-local chaos --insider{(f.Smoke ? " --smoke" : "")}");
        md.AppendLine();
        md.AppendLine(inv, $"Per mode: a three-hospital run without faults, then the same run with insider {InsiderId} (valid key, in the manifest, no "
            + $"agent) sending {f.AttacksPerMode} attacks and a forged reply after every third.");
        md.AppendLine();
        var modes = f.Modes;
        md.AppendLine("| figure | target | " + string.Join(" | ", modes.Select(m => m.Mode)) + " |");
        md.AppendLine("|---|---|" + string.Concat(modes.Select(_ => "---|")));
        void Row(string name, string target, Func<InsiderModeFigures, string> value) =>
            md.AppendLine(inv, $"| {name} | {target} | {string.Join(" | ", modes.Select(value))} |");
        Row("runs completed (both)", "yes", m => m.Completed ? "yes" : "NO");
        Row("crashes (unplanned exits)", "0", m => m.UnplannedExits.Count.ToString(inv));
        Row("non-finite server weights", "0", m => m.NonFiniteServerValues?.ToString(inv) ?? "no checkpoint");
        Row("honest steps lost", "0", m => m.StepsLost.ToString(inv));
        Row("honest steps applied twice", "0", m => m.StepsDoubled.ToString(inv));
        Row("server batches applied / expected", "equal", m => $"{m.ServerBatchesApplied} / {m.ServerBatchesExpected}");
        Row("insider attacks refused with a reason", "all", m => $"{m.AttacksPoisonedWithReason} / {m.AttacksSent}");
        foreach (var kind in InsiderMessages.Kinds.Select(k => k.ToString()))
            Row($"  {kind}", "all", m => m.AttacksByKind.GetValueOrDefault(kind, "-"));
        Row("forged replies to honest agents", "", m => m.ForgedReplies.ToString(inv));
        Row("valid messages poisoned", "0", m => m.OtherPoisoned.Count.ToString(inv));
        Row("function peak RSS without / with insider, MiB", "", m => $"{Mib(m.BaselinePeakRssBytes)} / {Mib(m.InsiderPeakRssBytes)}");
        Row("ratio", "<= 1.5", m => m.RssRatio.ToString("F2", inv));
        Row("seconds without / with insider", "", m => $"{m.BaselineSeconds:F0} / {m.InsiderSeconds:F0}");
        md.AppendLine();
        foreach (var m in modes)
        {
            foreach (var (kind, reason) in m.ReasonByKind) md.AppendLine(inv, $"- {m.Mode} {kind}: {reason}");
            foreach (var exit in m.UnplannedExits) md.AppendLine(inv, $"- {m.Mode} unplanned: {exit}");
            foreach (var other in m.OtherPoisoned.Take(10)) md.AppendLine(inv, $"- {m.Mode} valid message poisoned: {other}");
        }
        md.AppendLine();
        md.AppendLine(f.Held ? "Every target held." : "A TARGET WAS MISSED: see the rows above and the logs under each run's system/logs folder.");
        return md.ToString();
    }
}
