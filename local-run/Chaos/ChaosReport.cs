using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>One mode's figures as reported (results.json `modes[]`).</summary>
public sealed record ChaosModeFigures(
    string Mode, string RunId, bool Completed, double Seconds, IReadOnlyDictionary<string, int> Faults, double OutageSeconds,
    int FaultsNotFired, long StepsLost, long StepsDoubled, IReadOnlyList<HospitalLedger> Hospitals, long ServerBatchesExpected, long ServerBatchesApplied,
    IReadOnlyList<string> UnplannedExits, int HostileSent, int HostilePoisonedWithReason, int HostileNotPoisoned,
    IReadOnlyDictionary<string, string> HostileByKind, IReadOnlyDictionary<string, string> HostileReasonByKind, IReadOnlyList<string> HostileNotPoisonedKinds,
        IReadOnlyList<string> OtherPoisoned,
    bool? TemporalWeightsIdentical);

/// <summary>The whole report: settings, each mode's figures, and whether every invariant held.</summary>
public sealed record ChaosFigures(long Seed, bool Smoke, int KillsPerMode, int HostilePerMode, string OutageSeconds, int RunsCompleted, int Runs,
    IReadOnlyList<ChaosModeFigures> Modes)
{
    /// <summary>
    /// 0 lost, 0 doubled, 0 unplanned crashes, every hostile message poisoned with a reason, no valid message poisoned, identical temporal weights, every run
    /// complete.
    /// </summary>
    public bool InvariantsHeld => RunsCompleted == Runs && Modes.All(m => m.StepsLost == 0 && m.StepsDoubled == 0 && m.UnplannedExits.Count == 0
        && m.HostileNotPoisoned == 0 && m.OtherPoisoned.Count == 0 && m.TemporalWeightsIdentical != false);
}

/// <summary>Writes results.json and results.md and prints the table.</summary>
public static class ChaosReport
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static ChaosModeFigures Figures(ChaosRunResult run, ChaosRunResult? reference, SplitFunctions.Core.Model.ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(run);
        var byKind = run.Hostile.GroupBy(h => h.Kind).OrderBy(g => g.Key).ToDictionary(
            g => g.Key.ToString(), g => string.Create(CultureInfo.InvariantCulture, $"{g.Count(h => !string.IsNullOrWhiteSpace(h.Reason))}/{g.Count()}"),
                StringComparer.Ordinal);
        bool? identical = run.ServerWeights is null && reference is null ? null
            : run.ServerWeights is { } mine && reference?.ServerWeights is { } theirs && ServerWeights.Identical(mine, theirs, model);
        return new ChaosModeFigures(run.Mode, run.RunId, run.Completed, Math.Round(run.Seconds, 1), run.Faults, Math.Round(run.OutageSeconds, 1),
            run.FaultsNotFired, run.Ledger.Lost, run.Ledger.Doubled, run.Ledger.Hospitals, run.Ledger.ServerBatchesExpected, run.Ledger.ServerBatchesApplied,
                run.UnplannedExits,
            run.Hostile.Count, run.Hostile.Count(h => !string.IsNullOrWhiteSpace(h.Reason)), run.Hostile.Count(h => string.IsNullOrWhiteSpace(h.Reason)),
            byKind, run.Hostile.Where(h => !string.IsNullOrWhiteSpace(h.Reason)).GroupBy(h => h.Kind).OrderBy(g => g.Key)
                .ToDictionary(g => g.Key.ToString(), g => g.First().Reason!, StringComparer.Ordinal),
                    [.. run.Hostile.Where(h => string.IsNullOrWhiteSpace(h.Reason)).Select(h => h.Kind.ToString()).Distinct()], run.OtherPoisoned,
            identical);
    }

    public static void Write(string folder, ChaosFigures figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(figures, Json));
        var table = Table(figures);
        File.WriteAllText(Path.Combine(folder, "results.md"), table);
        Console.WriteLine();
        Console.WriteLine(table);
    }

    private static string Table(ChaosFigures f)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine(inv, $"# splitfn-local chaos (seed {f.Seed}{(f.Smoke ? ", smoke" : "")})");
        md.AppendLine();
        md.AppendLine(inv, $"Planned per mode: {f.KillsPerMode} kills, {f.HostilePerMode} hostile messages, outages of {f.OutageSeconds} s. Runs completed: "
            + $"{f.RunsCompleted}/{f.Runs} (with the temporal reference run).");
        md.AppendLine();
        var modes = f.Modes;
        md.AppendLine("| figure | target | " + string.Join(" | ", modes.Select(m => m.Mode)) + " |");
        md.AppendLine("|---|---|" + string.Concat(modes.Select(_ => "---|")));
        void Row(string name, string target, Func<ChaosModeFigures, string> value) => md.AppendLine(inv, $"| {name} | {target} | "
            + $"{string.Join(" | ", modes.Select(value))} |");
        var kinds = modes.SelectMany(m => m.Faults.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var kind in kinds) Row($"faults: {kind}", "", m => m.Faults.GetValueOrDefault(kind).ToString(inv));
        Row("faults: kills (function + "
            + "agents)", f.KillsPerMode.ToString(inv), m => (m.Faults.GetValueOrDefault("kill function") + m.Faults.GetValueOrDefault("kill agent"))
                .ToString(inv));
        Row("storage down, seconds in all", "", m => m.OutageSeconds.ToString("F0", inv));
        Row("planned faults not fired (the run ended first)", "", m => m.FaultsNotFired.ToString(inv));
        Row("run completed", "yes", m => m.Completed ? "yes" : "NO");
        Row("steps lost", "0", m => m.StepsLost.ToString(inv));
        Row("steps applied twice", "0", m => m.StepsDoubled.ToString(inv));
        Row("server batches applied / expected", "equal", m => $"{m.ServerBatchesApplied} / {m.ServerBatchesExpected}");
        Row("unplanned crashes (non-zero exits not killed)", "0", m => m.UnplannedExits.Count.ToString(inv));
        Row("hostile messages sent", f.HostilePerMode.ToString(inv), m => m.HostileSent.ToString(inv));
        Row("hostile poisoned with a reason", "100%", m => m.HostileSent == 0 ? "-" : string.Create(inv, $"{m.HostilePoisonedWithReason} "
            + $"({100.0 * m.HostilePoisonedWithReason / m.HostileSent:F1}%)"));
        Row("hostile not poisoned", "0", m => m.HostileNotPoisoned.ToString(inv));
        foreach (var kind in Enum.GetNames<HostileKind>().Where(k => modes.Any(m => m.HostileByKind.ContainsKey(k))))
            Row($"  {kind}: poisoned / sent", "all", m => m.HostileByKind.GetValueOrDefault(kind, "-"));
        Row("valid messages poisoned", "0", m => m.OtherPoisoned.Count.ToString(inv));
        Row("temporal weights = uninterrupted run, bit for bit", "yes", m => m.TemporalWeightsIdentical switch { null => "-", true => "yes", false => "NO" });
        Row("seconds", "", m => m.Seconds.ToString("F0", inv));
        md.AppendLine();
        foreach (var m in modes)
        {
            foreach (var h in m.Hospitals)
            {
                md.AppendLine(inv, $"- {m.Mode} {h.Hospital}: committed {h.Committed} of {h.Expected} {(m.Mode == "temporal" ? "chunks" : "steps")}, server "
                    + $"records {h.ServerRecords} ({h.ServerDistinct} distinct), lost {h.Lost}, doubled {h.Doubled}");
            }
            foreach (var exit in m.UnplannedExits) md.AppendLine(inv, $"- {m.Mode} unplanned: {exit}");
            foreach (var (kind, reason) in m.HostileReasonByKind) md.AppendLine(inv, $"- {m.Mode} {kind} poisoned, e.g.: {reason}");
            foreach (var other in m.OtherPoisoned.Take(10)) md.AppendLine(inv, $"- {m.Mode} valid message poisoned: {other}");
        }
        md.AppendLine();
        md.AppendLine(f.InvariantsHeld ? "Every invariant held." : "AN INVARIANT BROKE: see the rows above and the logs under each mode's system/logs folder.");
        return md.ToString();
    }
}
