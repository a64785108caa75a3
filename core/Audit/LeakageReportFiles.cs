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

    /// <summary>The report as a Markdown table, with DCor and the chance level under it.</summary>
    public static string Markdown(LeakageReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        text.AppendLine("| attack | SSIM | PSNR dB | re-identification |");
        text.AppendLine("|---|---:|---:|---:|");
        foreach (var a in report.Attacks)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {a.Name} | {a.Ssim:F3} | {a.PsnrDb:F1} | {a.Reidentification:P1} |");
        }
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{report.TestImages} test images (re-identification by chance {report.Chance:P2}); noise sigma {report.NoiseSigma}; DCor(x, A) "
                + $"{report.DistanceCorrelation:F3} ({report.ShuffledDistanceCorrelation:F3} for shuffled pairs).");
        return text.ToString();
    }

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
