using System.Text.Json;
using SplitFunctions.Core.Data;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>
/// What a simulated hospital's leakage audit gets beyond its own data, so its attacker is as strong as the one the
/// audit claims to bound: public images of the same kind (here the other hospitals' training images, disjoint from this
/// hospital's rows and from the test images) and a colluding hospital's trained layer (the largest other hospital).
/// </summary>
public static class AuditInputs
{
    /// <summary>The extra `splitfn-agent audit` arguments of each hospital (none for a lone hospital).</summary>
    public static IReadOnlyDictionary<string, string[]> Arguments(SplitRunSettings settings, IReadOnlyList<EnrolledHospital> hospitals, string runId,
        string folder)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(hospitals);
        var result = hospitals.ToDictionary(h => h.HospitalId, _ => Array.Empty<string>());
        if (hospitals.Count < 2 || settings.Model.InputShape.Length != 3) return result;
        var (height, width) = ((int)settings.Model.InputShape[1], (int)settings.Model.InputShape[2]);
        // The same pooled rows and seeded split the agents cut their shares from (SplitRun enrolls hospital i with partition index i).
        var arguments = settings.ExtraInitArguments;
        var at = Array.IndexOf(arguments, "--classes");
        IReadOnlyList<string>? classes = at >= 0 && at + 1 < arguments.Length ? arguments[at + 1].Split(',') : null;
        var splitColumn = Array.IndexOf(arguments, "--split-column");
        var study = splitColumn >= 0 && splitColumn + 1 < arguments.Length
            ? ImageStudy.LoadManifest(settings.DataPath, arguments[splitColumn + 1], classes, height, width, hospitals.Count, settings.Seed)
            : arguments.Contains("--predefined-splits")
            ? ImageStudy.LoadPredefined(settings.DataPath, height, width, hospitals.Count, settings.Seed)
            : ImageStudy.Load(settings.DataPath, height, width, hospitals.Count, settings.Seed, classes: classes);
        Directory.CreateDirectory(folder);
        for (var i = 0; i < hospitals.Count; i++)
        {
            var others = Enumerable.Range(0, hospitals.Count).Where(j => j != i).ToList();
            var publicImages = others.Select(study.Hospital).Aggregate((a, b) => a.Concat(b));
            var path = Path.Combine(folder, $"public-for-{hospitals[i].HospitalId}.npz");
            ImageArchive.Save(path, [new("train", publicImages)]);
            List<string> args = ["--public-images", path, "--public-name", "other hospitals' training"];
            // Hospital index 0 has the largest share (7:2:1): the most useful colluder for everyone else.
            var colluder = hospitals[others[0]];
            if (ClientWeights(colluder, runId) is { } weights) args.AddRange(["--colluder-weights", weights, "--colluder-name", colluder.HospitalId]);
            result[hospitals[i].HospitalId] = [.. args];
        }
        return result;
    }

    // The trained client weights a hospital's state names, or null when it has none (e.g. it failed before its first step).
    private static string? ClientWeights(EnrolledHospital hospital, string runId)
    {
        var state = hospital.StatePath(runId);
        if (!File.Exists(state)) return null;
        using var document = JsonDocument.Parse(File.ReadAllBytes(state));
        if (!document.RootElement.TryGetProperty("clientWeights", out var name) || name.ValueKind != JsonValueKind.String) return null;
        var path = Path.Combine(Path.GetDirectoryName(state)!, name.GetString()!);
        return File.Exists(path) ? path : null;
    }
}
