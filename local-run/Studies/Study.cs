using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// Runs the chosen arms of one study on one machine and writes `artifacts/experiments/&lt;name&gt;/`: arms/&lt;arm&gt;.json as
/// each arm ends, and results.json (every arm, seeds, configuration), results.md (tables like the paper's 5-7) and
/// report.html (curves, per-sample error CDF), rebuilt after every arm from the arms finished so far.
/// </summary>
public static class Study
{
    /// <summary>
    /// Runs the study; user errors are <see cref="StudyException"/>s, all raised before Azurite or any agent starts, except an arm that fails while running.
    /// </summary>
    public static async Task<int> RunAsync(StudyOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureConfigured();
        var definition = Model(options);
        var folder = Path.Combine(options.OutputFolder, options.Name);
        Directory.CreateDirectory(folder);
        if (options.Arms.Any(IsSplitArm)) RequireLocalSystem();
        if (options.SplitLists is { } lists)
        {
            // The official lists become a manifest with a split column that the in-process arms and every agent read alike.
            var manifest = Checked(() => SplitLists.WriteManifest(options.Data, lists, Path.GetFullPath(Path.Combine(folder, "manifest.csv")),
                options.Classes));
            Console.WriteLine($"split lists {lists}: {manifest}; manifest {manifest.Path}, classes {string.Join(", ", manifest.Classes)} (index order)");
            options = options with { ImageManifest = manifest.Path, Classes = manifest.Classes };
        }
        var store = ArmStore.Open(folder, options, options.Resume);
        if (options.MaxSamples is { } max && options.Mapping is null && options.Data != "synthetic")
        {
            // Every arm, in-process or an agent process, reads the same smaller archive.
            var subset = Path.GetFullPath(Path.Combine(folder, "subset.npz"));
            Checked(() => ImageStudy.WriteSubset(options.Data, (int)definition.InputShape[1], (int)definition.InputShape[2], max, options.Seed, subset));
            options = options with { Data = subset, MaxSamples = null };
        }
        Console.WriteLine($"study '{options.Name}': {definition.Name} (input [{string.Join(",", definition.InputShape)}]) on {options.Data}; {options.Epochs} "
            + $"epochs, batch {options.BatchSize}, lr {options.LearningRate}, seed {options.Seed}; {TorchRuntime.Threads} threads on "
            + $"{Environment.ProcessorCount} cores");

        var material = Checked(() => StudyMaterial.Load(options, definition));
        RequireFit(material, definition);
        Console.WriteLine(material.Describe());
        var model = definition with { Optimizer = definition.Optimizer with { LearningRate = options.LearningRate } };
        var seed = (ulong)options.Seed;
        var progress = StudyProgress.Console(options.Epochs);
        var baseline = material.FriedewaldBaseline();
        if (baseline is { } f)
        {
            Console.WriteLine($"friedewald ({f.Columns.TotalCholesterol} - {f.Columns.Hdl} - {f.Columns.Triglycerides}/5) on the test rows: MSLE "
                + $"{f.All.Regression!.Msle:F4}, sMAPE {f.All.Regression.SmapePercent:F2}%; "
                + $"{f.RowsTgBelow400} rows TG<400: MSLE {f.TgBelow400?.Regression?.Msle ?? double.NaN:F4}; {f.RowsTgFrom400} rows TG>=400: MSLE "
                + $"{f.TgFrom400?.Regression?.Msle ?? double.NaN:F4}");
        }
        else if (material.IsTabular)
        {
            Console.WriteLine("friedewald: not reported (no total cholesterol, HDL and triglyceride columns recognised among the features; name them with "
                + "--lipids tc=..,hdl=..,tg=..)");
        }
        if (store.Done.Count > 0) Console.WriteLine($"resuming: {string.Join(", ", store.Done.Keys)} done earlier, kept");

        foreach (var arm in options.Arms)
        {
            ct.ThrowIfCancellationRequested();
            if (store.Done.ContainsKey(arm))
            {
                Console.WriteLine($"== arm {arm}: done in an earlier run (arms/{arm}.json), skipped");
                continue;
            }
            Console.WriteLine($"== arm {arm}");
            var results = await RunArmAsync(arm, options, model, material, store, folder, seed, progress, ct).ConfigureAwait(false);
            store.Save(arm, results);
            foreach (var added in results) Console.WriteLine($"   {Summary(added)}");
            StudyReport.Write(folder, options, material, store.All(options.Arms), baseline);
        }

        StudyReport.Write(folder, options, material, store.All(options.Arms), baseline);
        Console.WriteLine($"results: {Path.Combine(folder, "results.json")}, {Path.Combine(folder, "results.md")}, {Path.Combine(folder, "report.html")}");
        return 0;
    }

    public static bool IsSplitArm(string arm) => arm is "vanilla" or "temporal" or "ushaped";

    // The in-process arms augment as the agents do (same transform and settings), keyed by a secret kept in the study folder as an agent keeps
    // its own: so a --resume draws the same augmentations, and the draws never follow from the seed.
    private static ImageAugmentation? Augmentation(StudyOptions options, ModelDefinition model, string folder, string arm, ulong seed) =>
        options.Augmentation is { } settings && model.InputShape.Length == 3
            ? new ImageAugmentation(settings, Core.Privacy.OrderSecret.LoadOrCreate(folder), FormattableString.Invariant($"{arm}-{seed}"), model.InputShape)
            : null;

    private static async Task<IReadOnlyList<ArmResult>> RunArmAsync(string arm, StudyOptions options, ModelDefinition model, StudyMaterial material,
        ArmStore store,
        string folder, ulong seed, EpochProgress progress, CancellationToken ct)
    {
        try
        {
            switch (arm)
            {
                case "centralised":
                    return [BaselineArms.Centralised(model, material.PooledHospitals, material.Validation, material.Test, material.ScoreTest, options.Epochs,
                        options.BatchSize, seed, progress, Augmentation(options, model, folder, arm, seed))];
                case "single":
                    return [.. Enumerable.Range(0, material.Hospitals.Count)
                        .Select(h => BaselineArms.SingleHospital(material.HospitalIds[h], material.Share(h), model, material.Hospitals[h],
                        material.HospitalValidation(h), material.HospitalTest(h), material.ScoreTest, options.Epochs, options.BatchSize, seed, progress,
                        Augmentation(options, model, folder, $"{arm}-{h}", seed)))];
                case "federated":
                    return [BaselineArms.Federated(model, material.PooledHospitals, material.Validation, material.Test, material.ScoreTest, options.Epochs,
                        options.BatchSize, seed, progress, Augmentation(options, model, folder, arm, seed))];
                case "vanilla" or "temporal" or "ushaped":
                    // Temporal has no validation at the hospitals while the server trains: it takes the epochs vanilla chose.
                    var vanillaEpochs = store.Done.TryGetValue("vanilla", out var vanilla) ? vanilla[0].SelectedEpoch : (int?)null;
                    var mode = arm switch { "vanilla" => TrainingMode.Vanilla, "ushaped" => TrainingMode.UShaped, _ => TrainingMode.Temporal };
                    return [await SplitArm.RunAsync(mode, options, model, material, folder, vanillaEpochs, ct).ConfigureAwait(false)];
                default:
                    throw new StudyException(StudyExitCode.Usage, $"unknown arm '{arm}'");
            }
        }
        catch (ArmFailedException e)
        {
            throw Failed(arm, e.Message, e.LogFolder, store, folder, e);
        }
        catch (Exception e) when (e is not (StudyException or OperationCanceledException))
        {
            // An in-process arm has no processes of its own: its log is the failure in full.
            var logs = Path.Combine(folder, "logs");
            Directory.CreateDirectory(logs);
            await File.WriteAllTextAsync(Path.Combine(logs, arm + ".log"), e.ToString(), CancellationToken.None).ConfigureAwait(false);
            throw Failed(arm, $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}", logs, store, folder, e);
        }
    }

    private static StudyException Failed(string arm, string why, string logFolder, ArmStore store, string folder, Exception inner)
    {
        var kept = store.Done.Count == 0 ? "no arm had finished" : $"finished arms ({string.Join(", ", store.Done.Keys)}) are saved in "
            + $"{Path.Combine(folder, "arms")}";
        return new StudyException(StudyExitCode.ArmFailed, $"arm '{arm}' failed: {why}; logs: {logFolder}; {kept}; fix it and rerun with --resume to "
            + $"continue", inner);
    }

    // The network for this data: a preset's tabular network takes the mapped features' width; a model file's must already
    // take it (its layers are the user's). The run manifest carries the network to the agents and the function.
    private static ModelDefinition Model(StudyOptions options)
    {
        ModelDefinition definition;
        try
        {
            definition = options.ModelFile is { } file ? ModelFile.Load(file) : ModelCatalog.Get(options.Model);
        }
        catch (Exception e) when (e is UnknownModelException or ModelDefinitionException)
        {
            throw new StudyException(StudyExitCode.Model, options.ModelFile is null ? $"--model: {e.Message}" : $"--model-file: {e.Message}", e);
        }
        if (definition.TailLayers.Count > 0)
            throw new StudyException(StudyExitCode.Model, $"--model-file: '{definition.Name}' marks a tail (a U-shaped split); splitfn-local trains the "
                + $"two-part split only");
        var isTable = options.Mapping is not null;
        if (isTable != definition.IsTabular)
        {
            var flag = options.ModelFile is null ? $"--model {definition.Name}" : $"--model-file {Path.GetFileName(options.ModelFile)}";
            var presets = string.Join(", ", ModelCatalog.All.Where(m => m.IsTabular == isTable).Select(m => m.Name));
            throw new StudyException(StudyExitCode.Model, isTable
                ? $"{flag} takes images [{string.Join(",", definition.InputShape)}], but {options.Data} is a CSV (rows of {options.Mapping!.EncodedWidth} "
                    + $"features): use a tabular model ({presets})"
                : $"{flag} takes rows of features [{string.Join(",", definition.InputShape)}], but {options.Data} is an image archive: use an image model "
                    + $"({presets})");
        }
        if (options.Mapping is not { } mapping) return definition;
        if (options.ModelFile is null) return definition.WithInputShape([mapping.EncodedWidth]);
        long[] data = [mapping.EncodedWidth];
        try
        {
            definition.Validate(data);
        }
        catch (ModelDefinitionException e)
        {
            throw new StudyException(StudyExitCode.Model, $"--model-file {Path.GetFileName(options.ModelFile)}: {e.Message} ({mapping.Features.Count} "
                + $"--features columns)", e);
        }
        if (!data.SequenceEqual(definition.InputShape))
            throw new StudyException(StudyExitCode.Model, $"--model-file {Path.GetFileName(options.ModelFile)}: inputShape is "
                + $"[{string.Join(",", definition.InputShape)}], but the data gives input [{mapping.EncodedWidth}]: write inputShape [{mapping.EncodedWidth}]");
        return definition;
    }

    // The samples the data gives must be what the network takes (e.g. RGB images for a one-channel network do not fit).
    private static void RequireFit(StudyMaterial material, ModelDefinition model)
    {
        var shape = material.Validation.SampleShape;
        if (!shape.SequenceEqual(model.InputShape))
        {
            throw new StudyException(StudyExitCode.Model,
                $"width mismatch: the data gives samples of shape [{string.Join(",", shape)}], but model '{model.Name}' takes "
                    + $"[{string.Join(",", model.InputShape)}]" +
                (model.IsTabular ? "" : "; convert the images (e.g. to grey) or choose a model for them"));
        }
    }

    private static void RequireLocalSystem()
    {
        foreach (var dll in new[] { LocalSystem.FunctionDll, LocalSystem.AgentDll })
        {
            if (!File.Exists(dll)) throw new StudyException(StudyExitCode.Setup, $"{dll} is not built: run scripts/setup.sh (it builds the solution)");
        }
        var azurite = Path.Combine(AzuriteProcess.FindRepositoryRoot(AppContext.BaseDirectory), "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(azurite)) throw new StudyException(StudyExitCode.Setup, $"Azurite is not installed ({azurite} is missing): run scripts/setup.sh (it "
            + $"runs npm ci)");
    }

    // Data problems found while loading become one line with the data exit code.
    private static T Checked<T>(Func<T> load)
    {
        try
        {
            return load();
        }
        catch (DataFormatException e)
        {
            throw new StudyException(StudyExitCode.Data, e.Message, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StudyException(StudyExitCode.Data, $"data cannot be read: {e.Message}", e);
        }
    }

    public static string Summary(ArmResult arm) => arm.Test.Classification is { } c
        ? $"{arm.Arm}: test accuracy {c.Accuracy:P2}, AUC {c.RocAuc:F4} (epoch {arm.SelectedEpoch} chosen on validation, {arm.Seconds:F0} s)"
        : $"{arm.Arm}: test MSLE {arm.Test.Regression!.Msle:F4}, RMSLE {arm.Test.Regression.Rmsle:F4}, sMAPE {arm.Test.Regression.SmapePercent:F2}% (epoch "
            + $"{arm.SelectedEpoch} chosen on validation, {arm.Seconds:F0} s)";
}
