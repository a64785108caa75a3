using System.CommandLine;
using System.Globalization;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>`splitfn-local privacy`: the defence grid on an image archive, test AUC beside the leakage audit per arm (docs/privacy.md).</summary>
public static class PrivacyCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data")
        {
            Description = "Image archive with train, val and test splits (e.g. PneumoniaMNIST's .npz); omitted: "
            + "synthetic images."
        };
        var epochs = new Option<int>("--epochs") { Description = "Training epochs per arm.", DefaultValueFactory = _ => 3 };
        var steps = new Option<int>("--audit-steps")
        {
            Description = "Most optimizer steps per attacker decoder (each stops at its best held-out score).",
            DefaultValueFactory = _ => 2000
        };
        var grid = new Option<string>("--grid")
        {
            Description = "issue29 (no defence, then cut depth x clipped noise x NoPeek x attacker-aware, 11 arms), default (the earlier "
                + "absolute-noise grid, 15 arms) or tiny (2 arms).",
            DefaultValueFactory = _ => "issue29"
        };
        grid.AcceptOnlyFromAmong("issue29", "default", "tiny");
        var hospitalCount = new Option<int>("--hospitals")
        {
            Description = "Hospitals sharing the training images 7:2:1 (3) or equally, each with its own client layer against one server.",
            DefaultValueFactory = _ => 3
        };
        var leaked = new Option<string>("--leaked-pairs")
        {
            Description = "Sizes of the leaked (image, activation) sets of the weights-unknown attackers, comma-separated; \"\": none.",
            DefaultValueFactory = _ => "50,1000"
        };
        var maxPublic = new Option<int?>("--max-public")
        {
            Description = "Give the attacker at most this many of the held-apart public images (fewer: a quicker, weaker audit)."
        };
        var auditHospitals = new Option<int>("--audit-hospitals")
        {
            Description = "Audit this many hospitals, the largest first (its layer learns the most and leaks the most); 0: every hospital.",
            DefaultValueFactory = _ => 0
        };
        var maxAuditImages = new Option<int>("--max-audit-images")
        {
            Description = "Score each audit on at most this many validation and test images (re-identification is among them; chance 1 / this).",
            DefaultValueFactory = _ => 1000
        };
        var legacySteps = new Option<int>("--legacy-steps")
        {
            Description = "Steps of the audit's attacker before issue 29, kept as a comparison row (0: left out).",
            DefaultValueFactory = _ => AuditOptions.DefaultLegacyDecoderSteps
        };
        var ssimReid = new Option<int>("--ssim-reid-attacks")
        {
            Description = "SSIM re-identification (an n x n SSIM matrix) for this many leading attacks by L2 re-identification and by mean SSIM; 0: every "
                + "attack. Every attack is re-identified by L2.",
            DefaultValueFactory = _ => 2
        };
        var maxTrain = new Option<int?>("--max-train")
        {
            Description = "Use at most this many training images; the rest become the audit's public images (the attacker's, disjoint from the "
                + "hospitals'; each hospital's audit also has the other hospitals' training images)."
        };
        var seed = new Option<long>("--seed") { Description = "Seed of initial weights, batch order and attackers.", DefaultValueFactory = _ => 42 };
        var output = new Option<string>("--out") { Description = "Folder for privacy.md and each arm's audit.", DefaultValueFactory = _ => "privacy-study" };
        var arms = new Option<string?>("--arms")
        {
            Description = "Run only these arms of the grid (comma-separated names, e.g. \"none,cut 3 blocks\"); the "
            + "table is written once every arm has a result (with --resume: from the arms that have one, the undefended arm included)."
        };
        var resume = new Option<bool>("--resume") { Description = "Arms already finished in --out (arm.json) are read, not run again." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var command = new Command("privacy", "Privacy/accuracy trade-off: train each defence arm, audit what a curious server rebuilds, choose the default on "
            + "validation.")
        {
            data, epochs, steps, grid, hospitalCount, ssimReid, leaked, legacySteps, maxPublic, auditHospitals, maxAuditImages, maxTrain, seed, output,
            arms, resume, threads,
        };
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(threads) > 0) TorchRuntime.Threads = parse.GetValue(threads);
                var folder = Path.GetFullPath(parse.GetValue(output)!);
                var s = parse.GetValue(seed);
                var study = parse.GetValue(data) is { } path
                    ? ImageStudy.LoadPredefined(path, 28, 28, 1, s)
                    : ImageStudy.Synthetic(1200, 28, 28, 1, s);
                var trainImages = study.Hospital(0);
                ImageDataset? heldApart = null;
                if (parse.GetValue(maxTrain) is { } max && max < trainImages.Count)
                {
                    // The training images left out stay apart as the attacker's public images (disjoint from the hospital's and the test images).
                    var order = SeededRandom.Permutation(trainImages.Count, s);
                    var publicEnd = parse.GetValue(maxPublic) is { } cap ? Math.Min(order.Length, max + Math.Max(0, cap)) : order.Length;
                    heldApart = trainImages.Subset(order[max..publicEnd]);
                    trainImages = trainImages.Subset(order[..max]);
                }
                var count = Math.Max(1, parse.GetValue(hospitalCount));
                var weights = ImageStudy.HospitalWeights(count);
                var shares = SeededRandom.Permutation(trainImages.Count, s ^ 0x7210);
                var owns = new List<ImageDataset>();
                var taken = 0;
                for (var i = 0; i < count; i++)
                {
                    var size = i == count - 1 ? trainImages.Count - taken : (int)Math.Round(trainImages.Count * weights[i] / weights.Sum());
                    owns.Add(trainImages.Subset(shares[taken..(taken + size)]));
                    taken += size;
                }
                var hospitals = new List<PrivacyStudy.Hospital>();
                for (var i = 0; i < count; i++)
                {
                    // Each hospital normalises with its own training statistics, as its agent does.
                    var statistics = ChannelStatistics.Compute(owns[i]);
                    // The attacker's public images, as the demo's audit gives them: the held-apart images and the other hospitals' training
                    // images (chest X-rays of the same kind, disjoint from this hospital's rows and from the validation and test images).
                    var others = owns.Where((_, j) => j != i).ToList();
                    if (heldApart is not null) others.Insert(0, heldApart);
                    var publicImages = others.Count == 0 ? null : ImageStudy.ToTrainingSet(others.Aggregate((a, b) => a.Concat(b)), statistics);
                    hospitals.Add(new PrivacyStudy.Hospital($"hospital-{(char)('a' + i)}", ImageStudy.ToTrainingSet(owns[i], statistics),
                        ImageStudy.ToTrainingSet(study.Validation, statistics), ImageStudy.ToTrainingSet(study.Test, statistics), publicImages));
                }
                Console.WriteLine($"privacy study on {study.Source}: {string.Join(", ", hospitals.Select(h => $"{h.Name} {h.Train.Count}"))} train, "
                    + $"{study.Validation.Count} validation, {study.Test.Count} test; {heldApart?.Count ?? 0} public (held apart); "
                    + $"{parse.GetValue(epochs)} epochs; {TorchRuntime.Threads} threads on {Environment.ProcessorCount} cores");
                var results = new List<PrivacyArmResult>();
                var audit = new AuditOptions
                {
                    DecoderSteps = parse.GetValue(steps),
                    PublicName = "held-apart and other hospitals' training",
                    SsimReidentifiedAttacks = parse.GetValue(ssimReid) is > 0 and var k ? k : int.MaxValue,
                    LeakedPairs = [.. parse.GetValue(leaked)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(v => int.Parse(v, CultureInfo.InvariantCulture))],
                    LegacyDecoderSteps = Math.Max(0, parse.GetValue(legacySteps)),
                    MaxTestImages = Math.Max(2, parse.GetValue(maxAuditImages)),
                    Progress = line => Console.WriteLine($"  {line}"),
                };
                var gridArms = PrivacyStudy.Grid(parse.GetValue(grid)!);
                var selected = parse.GetValue(arms) is { } list ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    : [.. gridArms.Select(a => a.Name)];
                if (selected.FirstOrDefault(n => gridArms.All(a => a.Name != n)) is { } unknown)
                {
                    Console.Error.WriteLine($"splitfn-local privacy: no arm '{unknown}' in the grid; arms: {string.Join(", ", gridArms.Select(a => a.Name))} "
                        + $"(exit code {(int)StudyExitCode.Usage})");
                    return (int)StudyExitCode.Usage;
                }
                foreach (var arm in gridArms)
                {
                    var armFolder = Path.Combine(folder, Slug(arm.Name));
                    if (parse.GetValue(resume) && PrivacyArmFile.Load(arm, armFolder) is { } done)
                    {
                        results.Add(done);
                        continue;
                    }
                    if (!selected.Contains(arm.Name)) continue;
                    Console.WriteLine($"arm {arm.Name}: training {parse.GetValue(epochs)} epochs, then the audit");
                    var r = PrivacyStudy.RunArm(arm, hospitals, parse.GetValue(epochs), 64, 1e-3, (ulong)s, audit,
                        parse.GetValue(auditHospitals) is > 0 and var audited ? audited : int.MaxValue);
                    results.Add(r);
                    foreach (var h in r.Hospitals.Where(h => h.Test is not null))
                    {
                        LeakageReportFiles.Save(h.Test!, Path.Combine(armFolder, h.Hospital));
                    }
                    PrivacyArmFile.Save(r, armFolder);
                    foreach (var h in r.Hospitals)
                    {
                        Console.WriteLine(FormattableString.Invariant($"{arm.Name} {h.Hospital}: val AUC {h.ValidationAuc:F4}")
                            + (h.Validation is not { } v ? ""
                                : FormattableString.Invariant($"; best val SSIM {v.Best.Ssim:F3} (mean image {v.Baseline.Ssim:F3}), re-identified ")
                                + FormattableString.Invariant($"{v.MostReidentifying.BestReidentification:P1}; scoring {v.ScoringSeconds:F0} s")));
                    }
                    Console.WriteLine(FormattableString.Invariant($"{arm.Name}: {r.Seconds:F0} s"));
                }
                // The table needs the undefended arm (the reference); with --resume it is written from the arms that have results.
                if (results.Count == 0 || results[0].Arm.Name != gridArms[0].Name || (results.Count < gridArms.Count && !parse.GetValue(resume)))
                {
                    Console.WriteLine($"{results.Count} of {gridArms.Count} arms have results in {folder}; run again with --resume once the others have "
                        + $"finished to write the table.");
                    return (int)StudyExitCode.Ok;
                }
                var missing = gridArms.Where(a => results.All(r => r.Arm.Name != a.Name)).Select(a => a.Name).ToList();
                var chosen = PrivacyStudy.Choose(results, 0.01);
                var table = PrivacyStudy.Table(results, chosen);
                var test = PrivacyStudy.TestTable(chosen == results[0] ? [chosen] : [results[0], chosen]);
                File.WriteAllText(Path.Combine(folder, "privacy.md"),
                    $"# Privacy trade-off\n\n## Validation (every arm with a result)\n\n{table}\n"
                        + (missing.Count > 0 ? $"Not run: {string.Join(", ", missing)}.\n\n" : "")
                        + "Chosen on validation (every hospital's AUC within 0.01 of no defence, or when no defence keeps that, within 0.01 of "
                        + "the cheapest defence's worst hospital; then the least best-attack SSIM above the mean image at the worst hospital, then "
                        + $"the fewest re-identified): **{chosen.Arm.Name}**.\n\n"
                        + $"## Test, scored once: the chosen arm and no defence\n\n{test}\n"
                        + string.Concat(chosen.Hospitals.Where(h => h.Test is not null)
                            .Select(h => $"\n### {h.Hospital} (test)\n\n{LeakageReportFiles.Markdown(h.Test!)}\n")));
                Console.WriteLine(table);
                Console.WriteLine(test);
                Console.WriteLine($"chosen on validation: {chosen.Arm.Name}; written to {Path.Combine(folder, "privacy.md")}");
                return (int)StudyExitCode.Ok;
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                Console.Error.WriteLine($"splitfn-local privacy: --leaked-pairs takes whole numbers separated by commas ({e.Message}) (exit code "
                    + $"{(int)StudyExitCode.Usage})");
                return (int)StudyExitCode.Usage;
            }
            catch (Exception e) when (e is DataFormatException or FileNotFoundException or IOException)
            {
                Console.Error.WriteLine($"splitfn-local privacy: {e.Message}");
                return (int)StudyExitCode.Data;
            }
        });
        return command;
    }

    private static string Slug(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-'))
        .Replace("--", "-", StringComparison.Ordinal).ToLower(CultureInfo.InvariantCulture);
}
