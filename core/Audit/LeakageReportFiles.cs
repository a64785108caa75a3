using System.Globalization;
using System.Text;
using System.Text.Json;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Core.Audit;

/// <summary>Writes an audit as audit.json (figures), audit.md (table) and audit.png (originals above reconstructions).</summary>
public static class LeakageReportFiles
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The report as a Markdown table (one row per attack), the best figures with their attackers, DCor and the chance level under it.</summary>
    public static string Markdown(LeakageReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        text.AppendLine("| attack | views | linked | SSIM | PSNR dB | MSE | re-identified (SSIM) | re-identified (L2) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var a in report.Attacks)
        {
            var linked = a.LinkingAccuracy is { } l ? l.ToString("P1", CultureInfo.InvariantCulture) : "";
            text.AppendLine(CultureInfo.InvariantCulture, $"| {a.Name} | {a.Views} | {linked} | {a.Ssim:F3} | {a.PsnrDb:F1} | {a.Mse:F4} | "
                + $"{Percent(a.Reidentification)} | {a.ReidentificationL2:P1} |");
        }
        text.AppendLine();
        if (report.Attacks.Any(a => a.Reidentification is null))
        {
            text.AppendLine("Re-identification by SSIM (an n x n SSIM matrix per attack) is computed for the attacks leading by L2 re-identification or "
                + "by mean SSIM; the others (-) by L2 only.\n");
        }
        foreach (var line in Summary(report)) text.AppendLine(line);
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{report.TestImages} test images (re-identification by chance {report.Chance:P2}); noise sigma {report.NoiseSigma}; DCor(x, A) "
                + $"{report.DistanceCorrelation:F3} ({report.ShuffledDistanceCorrelation:F3} for shuffled pairs).");
        return text.ToString();
    }

    /// <summary>The best attack by each measure, the attacker named beside each figure, and the old audit's figure for comparison.</summary>
    public static IReadOnlyList<string> Summary(LeakageReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var best = report.Best;
        var psnr = report.BestPsnr;
        var reid = report.MostReidentifying;
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"- best attack by SSIM: {best.Ssim:F3} (mean image {report.Baseline.Ssim:F3}), {best.Name}"),
            string.Create(CultureInfo.InvariantCulture, $"- best attack by PSNR: {psnr.PsnrDb:F1} dB, MSE {psnr.Mse:F4} (mean image "
                + $"{report.Baseline.PsnrDb:F1} dB), {psnr.Name}"),
            string.Create(CultureInfo.InvariantCulture, $"- most re-identified: {reid.ReidentificationL2:P1} by L2, {Percent(reid.Reidentification)} by SSIM "
                + $"(chance {report.Chance:P2}), {reid.Name}"),
        };
        if (report.Legacy is { } old)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"- the audit before issue 29 reported SSIM {old.Ssim:F3}, re-identified "
                + $"{Percent(old.Reidentification)} by SSIM ({old.ReidentificationL2:P1} by L2) with its attacker: {old.Name}"));
        }
        return lines;
    }

    private static string Percent(double? value) => value is { } v ? v.ToString("P1", CultureInfo.InvariantCulture) : "-";

    /// <summary>Writes the three files into <paramref name="folder"/>; returns the picture's path.</summary>
    public static string Save(LeakageReport report, string folder)
    {
        ArgumentNullException.ThrowIfNull(report);
        // The picture's top row is test patients' images: owner-only, like everything derived from them.
        PrivateFiles.CreateFolder(folder);
        var json = JsonSerializer.SerializeToUtf8Bytes(new
        {
            report.TestImages,
            report.Chance,
            report.NoiseSigma,
            report.DistanceCorrelation,
            report.ShuffledDistanceCorrelation,
            best = new { report.Best.Name, report.Best.Ssim, report.Best.PsnrDb, report.Best.Mse },
            bestPsnr = new { report.BestPsnr.Name, report.BestPsnr.PsnrDb, report.BestPsnr.Mse },
            mostReidentified = new { report.MostReidentifying.Name, report.MostReidentifying.ReidentificationL2, report.MostReidentifying.Reidentification },
            report.Attacks,
        }, Json);
        PrivateFiles.WriteAllBytes(Path.Combine(folder, "audit.json"), json);
        PrivateFiles.WriteAllText(Path.Combine(folder, "audit.md"), Markdown(report) + "\n![originals (top row), then the mean image and each attack's "
            + "reconstructions](audit.png)\n");
        var png = Path.Combine(folder, "audit.png");
        PrivateFiles.WriteAllBytes(png, report.Png);
        return png;
    }
}
