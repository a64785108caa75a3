using System.Globalization;
using System.Text.Json;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.LocalRun;

/// <summary>
/// The headline of one hospital's leakage audit (audit.json written by `splitfn-agent audit`): the best attack's
/// reconstruction against the mean-image baseline and the attack that re-identifies the most patients, each with its
/// attacker named, the old audit's figure beside them, DCor, and the picture.
/// </summary>
public sealed record AuditSummary(double MeanImageSsim, double BestSsim, string BestAttack, double BestPsnrDb, double Reidentification,
    double Chance, double DistanceCorrelation, double NoiseSigma, [property: System.Text.Json.Serialization.JsonIgnore] string PicturePath)
{
    /// <summary>MSE of the best attack by SSIM.</summary>
    public double BestMse { get; init; }

    /// <summary>
    /// Of the attack that re-identifies the most (<see cref="ReidentifyingAttack"/>): by L2 in pixel space
    /// (<see cref="Reidentification"/> is the higher of L2 and SSIM).
    /// </summary>
    public double ReidentificationL2 { get; init; }

    public string ReidentifyingAttack { get; init; } = "";

    /// <summary>What the audit before issue 29 reported for the same layer (its weaker attacker), when it was run.</summary>
    public double? OldAuditSsim { get; init; }

    public double? OldAuditReidentification { get; init; }

    /// <summary>The multi-view attack's nearest-neighbour linking accuracy, when it ran.</summary>
    public double? LinkingAccuracy { get; init; }

    /// <summary>Every attack's figures, the baseline first (the report's table per attack).</summary>
    public IReadOnlyList<AuditRow> Attacks { get; init; } = [];

    public static AuditSummary? Read(string folder)
    {
        var json = Path.Combine(folder, "audit.json");
        if (!File.Exists(json)) return null;
        using var document = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = document.RootElement;
        double Number(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;
        var attacks = root.GetProperty("attacks").EnumerateArray().Select(a => new AuditRow(
            a.GetProperty("name").GetString()!, Number(a, "ssim"), Number(a, "psnrDb"), Number(a, "mse"), Number(a, "reidentification"),
            Number(a, "reidentificationL2"), a.TryGetProperty("views", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : 1,
            a.TryGetProperty("linkingAccuracy", out var l) && l.ValueKind == JsonValueKind.Number ? l.GetDouble() : null)).ToList();
        // The first entry is the mean-image baseline; the best attack is the closest reconstruction.
        var best = attacks.Skip(1).MaxBy(a => a.Ssim) ?? attacks[0];
        var reid = attacks.Skip(1).MaxBy(a => Math.Max(a.Reid, a.ReidL2)) ?? attacks[0];
        var old = attacks.FirstOrDefault(a => a.Name.EndsWith("(the audit before issue 29)", StringComparison.Ordinal));
        return new AuditSummary(attacks[0].Ssim, best.Ssim, best.Name, best.Psnr, Math.Max(reid.Reid, reid.ReidL2),
            root.GetProperty("chance").GetDouble(), root.GetProperty("distanceCorrelation").GetDouble(), root.GetProperty("noiseSigma").GetDouble(),
            Path.Combine(folder, "audit.png"))
        {
            BestMse = best.Mse,
            ReidentificationL2 = reid.ReidL2,
            ReidentifyingAttack = reid.Name,
            OldAuditSsim = old?.Ssim,
            OldAuditReidentification = old is null ? null : Math.Max(old.Reid, old.ReidL2),
            LinkingAccuracy = attacks.Where(a => a.Linking is < 1).Select(a => a.Linking).FirstOrDefault(),
            Attacks = attacks,
        };
    }

    /// <summary>What the audit table under it shows, for the demo's and the studies' reports alike.</summary>
    public const string Explanation = "After the test evaluation each hospital played the server against its own trained layer on its own data (nothing was "
        + "sent), with the strongest attackers the audit runs: a closed-form ridge map and a decoder trained to its best score on held-out images, from the "
        + "hospital's images plus public ones (the other hospitals' training images here), with the client weights known; the same from 50 and 1,000 leaked "
        + "(image, activation) pairs with the weights unknown; with another hospital's layer (collusion); and averaging every view of a patient the run sends "
        + "(one per epoch), linked exactly (the batch order is known to the server) or by nearest neighbour. The table shows the best of them with its "
        + "attacker, beside the mean image (baseline) and the old audit's weaker attacker. SSIM 1 is a perfect copy; re-identification is how often a "
        + "reconstruction is nearest (by L2 or SSIM) to its own original among all test images. Every attack's row is in the hospital's audit.md.";

    /// <summary>One layer's audit, a row per attack: the attacker, views averaged and how they were linked, and each figure.</summary>
    public static ReportTable AttackTable(string layer, AuditSummary audit)
    {
        ArgumentNullException.ThrowIfNull(audit);
        return new(["attack", "views", "linked", "SSIM", "PSNR dB", "MSE", "re-identified (SSIM)", "re-identified (L2)"],
            [.. audit.Attacks.Select(a => (IReadOnlyList<string>)[a.Name, a.Views.ToString(CultureInfo.InvariantCulture),
                a.Linking is { } l ? ReportTable.Percent(l, 1) : "", ReportTable.Number(a.Ssim, 3), a.Psnr.ToString("F1", CultureInfo.InvariantCulture),
                ReportTable.Number(a.Mse), ReportTable.Percent(a.Reid, 1), ReportTable.Percent(a.ReidL2, 1)])])
        {
            Caption = $"{layer}: every attack of the audit (the best of them is in the table above)",
        };
    }

    /// <summary>One row per audited layer (a hospital, or an arm's hospital): best reconstruction against the mean image.</summary>
    public static ReportTable Table(IEnumerable<(string Name, AuditSummary Audit)> audits) =>
        new(["layer", "mean-image SSIM (baseline)", "best attack SSIM", "PSNR dB", "best attack", "re-identified (chance)", "re-identified by",
            "old audit SSIM / re-identified", "DCor(x, A)", "noise sigma"],
            [.. audits.Select(a => (IReadOnlyList<string>)[a.Name, ReportTable.Number(a.Audit.MeanImageSsim), ReportTable.Number(a.Audit.BestSsim),
                a.Audit.BestPsnrDb.ToString("F1", CultureInfo.InvariantCulture), a.Audit.BestAttack,
                $"{ReportTable.Percent(a.Audit.Reidentification)} ({ReportTable.Percent(a.Audit.Chance)})", a.Audit.ReidentifyingAttack,
                a.Audit.OldAuditSsim is { } s ? $"{ReportTable.Number(s)} / {ReportTable.Percent(a.Audit.OldAuditReidentification ?? 0)}" : "",
                ReportTable.Number(a.Audit.DistanceCorrelation), a.Audit.NoiseSigma.ToString(CultureInfo.InvariantCulture)])])
        {
            Caption = "Leakage audit on the test images: what the server could reconstruct from the activations it decrypts (best of all attacks)",
            RightAligned = new HashSet<int> { 1, 2, 3, 5, 7, 8, 9 },
        };
}

/// <summary>One attack's figures as audit.json holds them.</summary>
public sealed record AuditRow(string Name, double Ssim, double Psnr, double Mse, double Reid, double ReidL2, int Views, double? Linking);
