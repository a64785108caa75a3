using System.Text.Json;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// The multi-hospital split-learning arms, through the real system (Azurite, the function in drain mode, one agent per
/// hospital). Vanilla runs twice: a selection run with per-epoch validation at the hospitals picks the epoch count,
/// then a fresh run of that many epochs is scored once on the test split. Temporal has no per-epoch validation at the
/// hospitals (they are offline while the server trains), so it uses the epoch count selected for vanilla.
/// </summary>
public static class SplitArm
{
    /// <summary>Runs one arm; <paramref name="vanillaEpochs"/> is the epoch count the vanilla arm chose on validation (for temporal).</summary>
    public static async Task<ArmResult> RunAsync(TrainingMode mode, StudyOptions options, ModelDefinition model, StudyMaterial material, string folder,
        int? vanillaEpochs, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(material);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var settings = new SplitRunSettings
        {
            Model = model,
            Mode = mode,
            DataPath = options.ImageManifest ?? options.Data,
            Epochs = options.Epochs,
            BatchSize = options.BatchSize,
            LearningRate = options.LearningRate,
            Seed = options.Seed,
            Hospitals = material.HospitalIds,
            TargetScaling = material.Scaling,
            ExtraInitArguments = InitArguments(options),
            UShaped = new UShapedSettings { Defence = options.UShapedDefence },
            PipelineDepth = mode == TrainingMode.Vanilla ? options.PipelineDepth : null,
        };
        var name = mode.ToString().ToLowerInvariant();
        List<EpochResult> history = [];
        var epochs = options.Epochs;
        // U-shaped validates at the hospitals every epoch as vanilla does, so it selects its own epoch count.
        if (mode is TrainingMode.Vanilla or TrainingMode.UShaped)
        {
            Console.WriteLine($"   selection run: {options.Epochs} epochs with validation at every hospital");
            var selectionFolder = Path.Combine(folder, $"{name}-selection");
            var selection = await Run(() => SplitRun.RunAsync(settings, selectionFolder, "validation", ct), selectionFolder).ConfigureAwait(false);
            RequireSuccess(selection, name, selectionFolder);
            history = MeanHistory(selection, model.Task);
            epochs = history.Count == 0 ? options.Epochs : history.MaxBy(h => h.ValidationScore)!.Epoch;
            Console.WriteLine($"   best mean validation score at epoch {epochs}; final run of {epochs} epochs, scored on test once");
        }
        else
        {
            epochs = vanillaEpochs ?? options.Epochs;
            var how = vanillaEpochs is null ? "as given: run the vanilla arm first to select on validation" : "selected on validation by the vanilla arm";
            Console.WriteLine($"   {epochs} epochs ({how})");
        }
        var finalFolder = Path.Combine(folder, name);
        var (final, serverEpochs) = await Run(()
            => SplitRun.RunWithServerAsync(settings with { Epochs = epochs, AuditSteps = options.AuditSteps }, finalFolder, "test", ct), finalFolder)
            .ConfigureAwait(false);
        RequireSuccess(final, name, finalFolder);
        // Temporal: the hospitals are offline while the server trains, so the curve is the server's own loss per epoch.
        if (mode == TrainingMode.Temporal) history = [.. serverEpochs.Select(e => new EpochResult(e.Epoch, e.Loss, double.NaN, e.Seconds))];

        var perHospital = final.ToDictionary(o => o.HospitalId, o => Scores(o.Evaluation!.Value, model.Task));
        // The run's headline is the sample-weighted mean over hospitals (each scored the same test rows with its own client layer).
        var headline = perHospital.Values.First();
        if (model.Task == TaskKind.Classification)
        {
            var c = perHospital.Values.Select(s => s.Classification!).ToList();
            headline = new TestScores(c[0] with { Accuracy = c.Average(x => x.Accuracy), RocAuc = c.Average(x => x.RocAuc) }, null);
        }
        else
        {
            var r = perHospital.Values.Select(s => s.Regression!).ToList();
            headline = new TestScores(null,
                new RegressionScores(r.Average(x => x.Msle), r.Average(x => x.Rmsle), r.Average(x => x.SmapePercent), r[0].Samples));
        }
        var description = mode switch
        {
            TrainingMode.Vanilla => "multi-hospital split learning, vanilla (a round trip per batch); mean over hospitals",
            TrainingMode.UShaped => "multi-hospital split learning, U-shaped (head and tail with the loss at the hospital, labels never sent); mean over "
                + "hospitals",
            _ => "multi-hospital split learning, temporal (paper Algorithm 1, fixed client layer); mean over hospitals",
        };
        var audits = final.Where(o => o.Audit is not null).ToDictionary(o => o.HospitalId, o => o.Audit!);
        return new ArmResult($"split-{name}", description, history, headline, perHospital, clock.Elapsed.TotalSeconds,
            material.Hospitals.Sum(h => h.Count), epochs)
        {
            Audits = audits.Count == 0 ? null : audits,
            ScoredBy = final.ToDictionary(o => o.HospitalId, o => o.ScoredBy?.Describe() ?? "not recorded"),
        };
    }

    // The agents must read exactly the rows the in-process arms read: the same mapping, ranges written out, splits kept or not.
    private static string[] InitArguments(StudyOptions options)
    {
        string[] augmented = options.Augmentation is { } a ? ["--augmentation", a.Describe()] : [];
        return [.. DataArguments(options), .. augmented];
    }

    private static string[] DataArguments(StudyOptions options)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (options.ImageManifest is not null)
        {
            return ["--data-kind", "images", "--split-column", StudyMaterial.ManifestSplitColumn, "--classes", string.Join(',', options.Classes!)];
        }
        if (options.Mapping is not { } mapping)
        {
            string[] named = options.Classes is { } classes ? ["--classes", string.Join(',', classes)] : [];
            return options.KeepSplits ? [.. named, "--predefined-splits"] : named;
        }
        List<string> args = ["--features", string.Join(',', mapping.Features), "--target", mapping.Target, "--no-default-ranges"];
        foreach (var (column, codes) in mapping.Categorical)
        {
            args.Add("--categorical");
            args.Add($"{column}={string.Join(',', codes.Select(c => $"{c.Key}:{c.Value.ToString(invariant)}"))}");
        }
        foreach (var column in mapping.Columns.Where(c => !mapping.Categorical.ContainsKey(c)))
        {
            if (mapping.RangeFor(column) is not { } range) continue;
            args.Add("--range");
            args.Add($"{column}={range.Min.ToString("R", invariant)}:{range.Max.ToString("R", invariant)}");
        }
        return [.. args];
    }

    // Starting the local system or enrolling a hospital can fail too (an agent's init refusing the data): that is the arm failing.
    private static async Task<T> Run<T>(Func<Task<T>> run, string folder)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new ArmFailedException(e.Message, Path.Combine(folder, "logs"));
        }
    }

    private static void RequireSuccess(IReadOnlyList<HospitalOutcome> outcomes, string name, string folder)
    {
        var failed = outcomes.Where(o => o.TrainExitCode != 0 || o.EvaluateExitCode != 0 || o.Evaluation is null).ToList();
        if (failed.Count > 0)
        {
            throw new ArmFailedException(
                $"split-{name}: {string.Join(", ", failed.Select(f => $"{f.HospitalId} (train exit {f.TrainExitCode}, evaluate exit {f.EvaluateExitCode})"))} "
                    + $"failed",
                Path.Combine(folder, "logs"));
        }
    }

    /// <summary>Per-epoch mean over hospitals of training loss and validation score (AUC, or minus MSLE).</summary>
    private static List<EpochResult> MeanHistory(IReadOnlyList<HospitalOutcome> outcomes, TaskKind task)
    {
        var perHospital = outcomes.Where(o => o.History is { ValueKind: JsonValueKind.Array })
            .Select(o => o.History!.Value.EnumerateArray().ToList()).ToList();
        if (perHospital.Count == 0) return [];
        var epochs = perHospital.Min(h => h.Count);
        var result = new List<EpochResult>();
        for (var e = 0; e < epochs; e++)
        {
            var loss = perHospital.Average(h => h[e].GetProperty("meanTrainLoss").GetDouble());
            var values = perHospital.Select(h => h[e].TryGetProperty("validationValue", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                : double.NaN).ToList();
            var validation = values.Average();
            result.Add(new EpochResult(e + 1, loss, task == TaskKind.Classification ? validation : -validation, 0));
        }
        return result;
    }

    private static TestScores Scores(JsonElement evaluation, TaskKind task)
    {
        if (task == TaskKind.Classification)
        {
            var c = evaluation.GetProperty("classification");
            var confusion = new ConfusionMatrix(c.GetProperty("truePositives").GetInt32(), c.GetProperty("falsePositives").GetInt32(),
                c.GetProperty("trueNegatives").GetInt32(), c.GetProperty("falseNegatives").GetInt32());
            return new TestScores(new ClassificationScores(c.GetProperty("accuracy").GetDouble(), c.GetProperty("rocAuc").GetDouble(), confusion,
                c.GetProperty("threshold").GetDouble()), null);
        }
        var r = evaluation.GetProperty("regression");
        return new TestScores(null,
            new RegressionScores(r.GetProperty("msle").GetDouble(), r.GetProperty("rmsle").GetDouble(), r.GetProperty("smapePercent").GetDouble(),
            evaluation.GetProperty("samples").GetInt32()));
    }
}
