using System.Globalization;
using System.Text.Json;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.LocalRun;

/// <summary>
/// The headline of one hospital's leakage audit (audit.json written by `splitfn-agent audit`): the best attack's
/// reconstruction against the mean-image baseline, re-identification against chance, DCor, and the picture.
/// </summary>
public sealed record AuditSummary(double MeanImageSsim, double BestSsim, string BestAttack, double BestPsnrDb, double Reidentification,
    double Chance, double DistanceCorrelation, double NoiseSigma, [property: System.Text.Json.Serialization.JsonIgnore] string PicturePath)
{
    public static AuditSummary? Read(string folder)
    {
        var json = Path.Combine(folder, "audit.json");
        if (!File.Exists(json)) return null;
        using var document = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = document.RootElement;
        var attacks = root.GetProperty("attacks").EnumerateArray().Select(a => (
            Name: a.GetProperty("name").GetString()!, Ssim: a.GetProperty("ssim").GetDouble(),
            Psnr: a.GetProperty("psnrDb").GetDouble(), Reid: a.GetProperty("reidentification").GetDouble())).ToList();
        // The first entry is the mean-image baseline; the best attack is the closest reconstruction.
        var best = attacks.Skip(1).MaxBy(a => a.Ssim);
        return new AuditSummary(attacks[0].Ssim, best.Ssim, best.Name, best.Psnr, attacks.Skip(1).Max(a => a.Reid),
            root.GetProperty("chance").GetDouble(), root.GetProperty("distanceCorrelation").GetDouble(), root.GetProperty("noiseSigma").GetDouble(),
            Path.Combine(folder, "audit.png"));
    }

    /// <summary>What the audit table under it shows, for the demo's and the studies' reports alike.</summary>
    public const string Explanation = "After the test evaluation each hospital played the server against its own trained layer on its own data (nothing was "
        + "sent): decoders from the activations back to the images, trained with the client weights known and from 50 and 1,000 leaked (image, activation) "
        + "pairs, against the mean image as baseline. SSIM 1 is a perfect copy; re-identification is how often a reconstruction is nearest to its own "
        + "original among all test images.";

    /// <summary>One row per audited layer (a hospital, or an arm's hospital): best reconstruction against the mean image.</summary>
    public static ReportTable Table(IEnumerable<(string Name, AuditSummary Audit)> audits) =>
        new(["layer", "mean-image SSIM (baseline)", "best attack SSIM", "best attack", "PSNR dB", "re-identification (chance)", "DCor(x, A)", "noise sigma"],
            [.. audits.Select(a => (IReadOnlyList<string>)[a.Name, ReportTable.Number(a.Audit.MeanImageSsim), ReportTable.Number(a.Audit.BestSsim),
                a.Audit.BestAttack,
                a.Audit.BestPsnrDb.ToString("F1", CultureInfo.InvariantCulture), $"{ReportTable.Percent(a.Audit.Reidentification)} "
                    + $"({ReportTable.Percent(a.Audit.Chance)})",
                ReportTable.Number(a.Audit.DistanceCorrelation), a.Audit.NoiseSigma.ToString(CultureInfo.InvariantCulture)])])
        {
            Caption = "Leakage audit on the test images: what the server could reconstruct from the activations it decrypts",
            RightAligned = new HashSet<int> { 1, 2, 4, 5, 6, 7 },
        };
}
