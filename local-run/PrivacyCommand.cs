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
        var grid = new Option<string>("--grid") { Description = "default (15 arms) or tiny (2 arms).", DefaultValueFactory = _ => "default" };
        grid.AcceptOnlyFromAmong("default", "tiny");
        var maxTrain = new Option<int?>("--max-train")
        {
            Description = "Use at most this many training images; the rest become the audit's public images (the attacker's, disjoint from the hospital's)."
        };
        var seed = new Option<long>("--seed") { Description = "Seed of initial weights, batch order and attackers.", DefaultValueFactory = _ => 42 };
        var output = new Option<string>("--out") { Description = "Folder for privacy.md and each arm's audit.", DefaultValueFactory = _ => "privacy-study" };
        var arms = new Option<string?>("--arms")
        {
            Description = "Run only these arms of the grid (comma-separated names, e.g. \"none,cut 3 blocks\"); the "
            + "table is written once every arm has a result."
        };
        var resume = new Option<bool>("--resume") { Description = "Arms already finished in --out (arm.json) are read, not run again." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var command = new Command("privacy", "Privacy/accuracy trade-off: train each defence arm, audit what a curious server rebuilds, choose the default on "
            + "validation.")
        {
            data, epochs, steps, grid, maxTrain, seed, output, arms, resume, threads,
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
                    heldApart = trainImages.Subset(order[max..]);
                    trainImages = trainImages.Subset(order[..max]);
                }
                var statistics = ChannelStatistics.Compute(trainImages);
                var train = ImageStudy.ToTrainingSet(trainImages, statistics);
                var validation = ImageStudy.ToTrainingSet(study.Validation, statistics);
                var test = ImageStudy.ToTrainingSet(study.Test, statistics);
                Console.WriteLine($"privacy study on {study.Source}: {train.Count} train, {validation.Count} validation, {test.Count} test; "
                    + $"{parse.GetValue(epochs)} epochs; {TorchRuntime.Threads} threads on {Environment.ProcessorCount} cores");
                var results = new List<PrivacyArmResult>();
                var audit = new AuditOptions
                {
                    DecoderSteps = parse.GetValue(steps),
                    PublicImages = heldApart is null ? null : ImageStudy.ToTrainingSet(heldApart, statistics),
                    PublicName = "held-apart training",
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
                    var r = PrivacyStudy.RunArm(arm, train, validation, test, parse.GetValue(epochs), 64, 1e-3, (ulong)s, audit);
                    results.Add(r);
                    LeakageReportFiles.Save(r.Test, armFolder);
                    PrivacyArmFile.Save(r, armFolder);
                    Console.WriteLine(FormattableString.Invariant($"{arm.Name}: val AUC {r.ValidationAuc:F4}, test AUC {r.TestAuc:F4}; best test SSIM ")
                        + FormattableString.Invariant($"{r.Test.Best.Ssim:F3} (mean image {r.Test.Baseline.Ssim:F3}), re-identified ")
                        + FormattableString.Invariant($"{r.Test.MostReidentifying.BestReidentification:P1}; {r.Seconds:F0} s"));
                    foreach (var line in LeakageReportFiles.Summary(r.Test)) Console.WriteLine($"  {line}");
                }
                if (results.Count < gridArms.Count || results[0].Arm.Name != gridArms[0].Name)
                {
                    Console.WriteLine($"{results.Count} of {gridArms.Count} arms have results in {folder}; run again with --resume once the others have "
                        + $"finished to write the table.");
                    return (int)StudyExitCode.Ok;
                }
                var chosen = PrivacyStudy.Choose(results, 0.01);
                var table = PrivacyStudy.Table(results, chosen);
                File.WriteAllText(Path.Combine(folder, "privacy.md"),
                    $"# Privacy trade-off\n\n{table}\nChosen on validation (AUC within 0.01 of no defence, lowest best SSIM): **{chosen.Arm.Name}**.\n\n## "
                        + $"Audit of the chosen arm (test)\n\n{LeakageReportFiles.Markdown(chosen.Test)}\n![audit]({Slug(chosen.Arm.Name)}/audit.png)\n");
                Console.WriteLine(table);
                Console.WriteLine($"chosen on validation: {chosen.Arm.Name}; written to {Path.Combine(folder, "privacy.md")}");
                return (int)StudyExitCode.Ok;
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
