using SplitFunctions.Core.Data;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Models;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Training;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// Runs the chosen arms of one study on one machine and writes `artifacts/experiments/&lt;name&gt;/`: results.json (every arm,
/// seeds, configuration), results.md (tables like the paper's 5-7) and report.html (curves, per-sample error CDF).
/// </summary>
public static class Study
{
    public static async Task<int> RunAsync(StudyOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureConfigured();
        var definition = ModelCatalog.Get(options.Model);
        var folder = Path.Combine(options.OutputFolder, options.Name);
        Directory.CreateDirectory(folder);
        if (options.MaxSamples is { } max && options.Mapping is null && options.Data != "synthetic")
        {
            // Every arm, in-process or an agent process, reads the same smaller archive.
            var subset = Path.GetFullPath(Path.Combine(folder, "subset.npz"));
            ImageStudy.WriteSubset(options.Data, (int)definition.InputShape[1], (int)definition.InputShape[2], max, options.Seed, subset);
            options = options with { Data = subset, MaxSamples = null };
        }
        Console.WriteLine($"study '{options.Name}': {definition.Name} on {options.Data}; {options.Epochs} epochs, batch {options.BatchSize}, lr {options.LearningRate}, seed {options.Seed}; {TorchRuntime.Threads} threads on {Environment.ProcessorCount} cores");

        var material = StudyMaterial.Load(options, definition);
        Console.WriteLine(material.Describe());
        var model = definition with { Optimizer = definition.Optimizer with { LearningRate = options.LearningRate } };
        var seed = (ulong)options.Seed;
        var progress = StudyProgress.Console(options.Epochs);
        var arms = new List<ArmResult>();

        foreach (var arm in options.Arms)
        {
            var before = arms.Count;
            ct.ThrowIfCancellationRequested();
            Console.WriteLine($"== arm {arm}");
            switch (arm)
            {
                case "centralised":
                    arms.Add(BaselineArms.Centralised(model, material.PooledHospitals, material.Validation, material.Test, material.ScoreTest, options.Epochs, options.BatchSize, seed, progress));
                    break;
                case "single":
                    for (var h = 0; h < material.Hospitals.Count; h++)
                    {
                        arms.Add(BaselineArms.SingleHospital(material.HospitalIds[h], material.Share(h), model, material.Hospitals[h],
                            material.HospitalValidation(h), material.HospitalTest(h), material.ScoreTest, options.Epochs, options.BatchSize, seed, progress));
                    }
                    break;
                case "federated":
                    arms.Add(BaselineArms.Federated(model, material.PooledHospitals, material.Validation, material.Test, material.ScoreTest, options.Epochs, options.BatchSize, seed, progress));
                    break;
                case "vanilla" or "temporal":
                    arms.Add(await SplitArm.RunAsync(arm == "vanilla" ? TrainingMode.Vanilla : TrainingMode.Temporal, options, model, material, folder, ct).ConfigureAwait(false));
                    break;
                default:
                    throw new ArgumentException($"unknown arm '{arm}'");
            }
            foreach (var added in arms.Skip(before)) Console.WriteLine($"   {Summary(added)}");
        }

        var baseline = material.FriedewaldBaseline();
        StudyReport.Write(folder, options, material, arms, baseline);
        Console.WriteLine($"results: {Path.Combine(folder, "results.json")}, {Path.Combine(folder, "results.md")}, {Path.Combine(folder, "report.html")}");
        return 0;
    }

    public static string Summary(ArmResult arm) => arm.Test.Classification is { } c
        ? $"{arm.Arm}: test accuracy {c.Accuracy:P2}, AUC {c.RocAuc:F4} (epoch {arm.SelectedEpoch} chosen on validation, {arm.Seconds:F0} s)"
        : $"{arm.Arm}: test MSLE {arm.Test.Regression!.Msle:F4}, RMSLE {arm.Test.Regression.Rmsle:F4}, sMAPE {arm.Test.Regression.SmapePercent:F2}% (epoch {arm.SelectedEpoch} chosen on validation, {arm.Seconds:F0} s)";
}
