using System.Text.Json;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// One finished privacy arm on disk (`arm.json` in its folder), so a long grid can be split over several processes
/// (`--arms`) and finished with `--resume`: the figures of both audits, not the pictures (audit.png is beside it).
/// </summary>
public static class PrivacyArmFile
{
    private const string FileName = "arm.json";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private sealed record Stored(string Arm, IReadOnlyList<StoredHospital> Hospitals, double Seconds);

    private sealed record StoredHospital(string Hospital, int TrainCount, double ValidationAuc, double TestAuc, Audit? Validation, Audit? Test,
        double? Epsilon, double Delta);

    private sealed record Audit(IReadOnlyList<AuditAttack> Attacks, double DistanceCorrelation, double ShuffledDistanceCorrelation, int TestImages,
        double NoiseSigma)
    {
        public static Audit? Of(LeakageReport? r) => r is null ? null : new(r.Attacks, r.DistanceCorrelation, r.ShuffledDistanceCorrelation, r.TestImages,
            r.NoiseSigma);

        public LeakageReport ToReport() => new(Attacks, DistanceCorrelation, ShuffledDistanceCorrelation, TestImages, NoiseSigma, []);
    }

    public static void Save(PrivacyArmResult result, string folder)
    {
        ArgumentNullException.ThrowIfNull(result);
        Directory.CreateDirectory(folder);
        var stored = new Stored(result.Arm.Name, [.. result.Hospitals.Select(h => new StoredHospital(h.Hospital, h.TrainCount, h.ValidationAuc, h.TestAuc,
            Audit.Of(h.Validation), Audit.Of(h.Test), h.Epsilon, h.Delta))], result.Seconds);
        var temporary = Path.Combine(folder, FileName + ".tmp");
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(stored, Json));
        File.Move(temporary, Path.Combine(folder, FileName), overwrite: true);
    }

    /// <summary>The arm's stored result, or null when it has not finished (or was a different arm).</summary>
    public static PrivacyArmResult? Load(PrivacyArm arm, string folder)
    {
        ArgumentNullException.ThrowIfNull(arm);
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        var stored = JsonSerializer.Deserialize<Stored>(File.ReadAllBytes(path), Json);
        if (stored is null || stored.Arm != arm.Name || stored.Hospitals is null) return null;
        return new PrivacyArmResult(arm, [.. stored.Hospitals.Select(h => new PrivacyHospitalResult(h.Hospital, h.TrainCount, h.ValidationAuc, h.TestAuc,
            h.Validation?.ToReport(), h.Test?.ToReport(), h.Epsilon, h.Delta))], stored.Seconds);
    }
}
