using System.CommandLine;
using System.Globalization;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>`splitfn-local experiments`: the paper's comparisons for one dataset in one run (docs/experiments.md).</summary>
public static class ExperimentsCommand
{
    public static readonly string[] AllArms = ["vanilla", "temporal", "ushaped", "single", "centralised", "federated"];

    public static Command Create()
    {
        var data = new Option<FileInfo>("--data")
        {
            Description = "An image archive (.npz with <split>_images/_labels), an image folder (a subfolder per class), or a CSV file.",
            Required = true,
        };
        var name = new Option<string?>("--name") { Description = "Study name: results go to artifacts/experiments/<name>/ (default: the data file's name)." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Folder the study folder goes in (default artifacts/experiments)." };
        var model = new Option<string?>("--model")
        {
            Description = $"Catalog model ({string.Join(", ", ModelCatalog.Names)}); default pneumonia-cnn for "
            + $"images, ldl-mlp for CSV (its input width follows --features)."
        };
        var modelFile = new Option<FileInfo?>("--model-file")
        {
            Description = "A network of your own as a JSON model file (docs/models/, format in "
            + "docs/architecture.md) instead of --model."
        };
        var epochs = new Option<int?>("--epochs")
        {
            Description = "Epochs (rounds for federated averaging); the best epoch on validation is kept. Default: "
            + "the catalog's."
        };
        var batch = new Option<int?>("--batch-size") { Description = "Batch size. Default: the catalog's." };
        var lr = new Option<double?>("--lr") { Description = "Learning rate (Adam). Default: the catalog's." };
        var seed = new Option<long>("--seed") { Description = "Seed of the split, the initial weights and the batch order.", DefaultValueFactory = _ => 42 };
        var seeds = new Option<long[]>("--seeds")
        {
            Description = "Run the study once per seed (each in <name>/seed-<n>/) and write <name>/summary.md and summary.json: every "
            + "arm's test scores as mean and standard deviation over the seeds. Replaces --seed.",
            AllowMultipleArgumentsPerToken = true
        };
        var arms = new Option<string[]>("--arms")
        {
            Description = $"Arms to run: {string.Join(", ", AllArms)}.",
            DefaultValueFactory = _ => AllArms,
            AllowMultipleArgumentsPerToken = true
        };
        var maxSamples = new Option<int?>("--max-samples") { Description = "Use at most this many samples (quick runs)." };
        var features = new Option<string[]>("--features")
        {
            Description = "CSV: feature columns, any number, space- or comma-separated (default: the NHIS "
            + "lipids columns).",
            AllowMultipleArgumentsPerToken = true
        };
        var target = new Option<string?>("--target") { Description = "CSV: target column (default LDL_chole)." };
        var categorical = new Option<string[]>("--categorical")
        {
            Description = "CSV: categorical encodings, e.g. sex=1:0,2:1 (value:code pairs; repeat per "
            + "column).",
            AllowMultipleArgumentsPerToken = true
        };
        var lipids = new Option<string?>("--lipids")
        {
            Description = "CSV: the Friedewald columns, e.g. tc=chol_total,hdl=hdl_c,tg=trigs (default: found by "
            + "their usual names)."
        };
        var ranges = new Option<string[]>("--range")
        {
            Description = "CSV: a column's plausible range, e.g. hdl_c=1:300 (repeat); rows outside it are dropped "
            + "and counted.",
            AllowMultipleArgumentsPerToken = true
        };
        var noDefaultRanges = new Option<bool>("--no-default-ranges")
        {
            Description = "CSV: check only the --range columns, not the clinical defaults "
            + "(docs/experiments.md)."
        };
        var keepSplits = new Option<bool>("--keep-splits")
        {
            Description = "Images: keep the archive's own val and test splits (MedMNIST's official ones) "
            + "instead of pooling and re-splitting."
        };
        var splitLists = new Option<DirectoryInfo?>("--split-lists")
        {
            Description = "Image folder: a folder of official split lists (.txt files named train*, val*, test*, one image file name "
            + "a line, e.g. COVID-CT's Data-split/); the listed validation and test images are kept, the train images shared across hospitals."
        };
        var classes = new Option<string?>("--classes")
        {
            Description = "Image folder: class names in index order, comma-separated (binary: negative first, e.g. "
            + "CT_NonCOVID,CT_COVID); default the subfolders' names, sorted."
        };
        var auditSteps = new Option<int>("--audit-steps")
        {
            Description = "Image data: most steps per attacker decoder of each hospital's leakage audit after a split arm's "
            + "test evaluation (each stops at its best held-out score; 0: no audit).",
            DefaultValueFactory = _ => 2000
        };
        var privacy = new PrivacyOptions();
        var pipelineDepth = new Option<int?>("--pipeline-depth")
        {
            Description = "Vanilla arm: batches each hospital keeps in flight (1 synchronous, the default; 2-16; 0 the agent "
            + "chooses from its round trip)."
        };
        var augmentation = new Option<string?>("--augmentation")
        {
            Description = "Image data: augment every arm's training batches alike ('on', or e.g. no-flip,rotation=5,shift=0.05; the agents' "
                + "data.augmentation); default off. Temporal mode sends each image once and is not augmented.",
            HelpName = "spec",
        };
        var resume = new Option<bool>("--resume")
        {
            Description = "Continue the study of the same name and settings: arms already finished are kept, the "
            + "others run."
        };

        var command = new Command("experiments", "Reproduce the paper's comparisons on one dataset: split learning (vanilla, temporal) against each hospital "
            + "alone, centralised training and federated averaging.")
        {
            data, name, output, model, modelFile, epochs, batch, lr, seed, seeds, arms, maxSamples, features, target, categorical, lipids, ranges,
                noDefaultRanges, keepSplits, splitLists, classes, auditSteps, pipelineDepth, augmentation, resume,
        };
        privacy.AddTo(command, privacy.UShaped);
        command.SetAction(async (result, ct) =>
        {
            try
            {
                var path = result.GetValue(data)!;
                if (!path.Exists && !Directory.Exists(path.FullName))
                    throw new StudyException(StudyExitCode.Data, $"data file {path.FullName} does not exist: check --data");
                var isCsv = path.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase);
                var chosenArms = result.GetValue(arms)!.SelectMany(a => a.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    .ToArray();
                var unknown = chosenArms.Except(AllArms, StringComparer.Ordinal).ToList();
                if (unknown.Count > 0) throw new StudyException(StudyExitCode.Usage, $"unknown arm(s) {string.Join(", ", unknown)}: choose from "
                    + $"{string.Join(", ", AllArms)}");
                var file = result.GetValue(modelFile);
                if (file is not null && result.GetValue(model) is not null) throw new StudyException(StudyExitCode.Usage, "--model and --model-file do not "
                    + "combine: name a preset or give a file");
                var definition = ModelChoice.Resolve(result.GetValue(model) ?? (isCsv ? "ldl-mlp" : "pneumonia-cnn"), file);
                var mapping = isCsv
                    ? Mapping(path.FullName, result.GetValue(features), result.GetValue(target), result.GetValue(categorical), result.GetValue(lipids),
                        result.GetValue(ranges), result.GetValue(noDefaultRanges))
                    : null;
                if (result.GetValue(keepSplits) && (isCsv || result.GetValue(maxSamples) is not null))
                {
                    throw new StudyException(StudyExitCode.Usage, isCsv
                        ? "--keep-splits keeps an image archive's own val and test splits; a CSV is split by --seed"
                        : "--keep-splits and --max-samples do not combine: the official splits are kept whole");
                }
                var lists = result.GetValue(splitLists);
                var classNames = result.GetValue(classes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if ((lists is not null || classNames is not null) && !Directory.Exists(path.FullName))
                {
                    throw new StudyException(StudyExitCode.Usage, "--split-lists and --classes apply to an image folder (a subfolder per class) given as "
                        + "--data");
                }
                if (lists is not null && (result.GetValue(keepSplits) || result.GetValue(maxSamples) is not null))
                    throw new StudyException(StudyExitCode.Usage, "--split-lists keeps the listed splits whole: leave out --keep-splits and --max-samples");
                if (lists is not null && !lists.Exists)
                    throw new StudyException(StudyExitCode.Data, $"split-list folder {lists.FullName} does not exist: check --split-lists");
                AugmentationSettings? augmented = null;
                if (result.GetValue(augmentation) is { } spec)
                {
                    if (isCsv) throw new StudyException(StudyExitCode.Usage, "--augmentation is for image data; a CSV table is not augmented");
                    augmented = AugmentationSettings.Parse(spec, out var why) ?? throw new StudyException(StudyExitCode.Usage, $"--augmentation: {why}");
                }
                var options = new StudyOptions
                {
                    Name = result.GetValue(name) ?? Path.GetFileNameWithoutExtension(path.Name),
                    Data = path.FullName,
                    Model = definition.Name,
                    ModelFile = file?.FullName,
                    ModelFileSha256 = file is null ? null
                        : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file.FullName))),
                    Epochs = result.GetValue(epochs) ?? definition.Epochs,
                    BatchSize = result.GetValue(batch) ?? definition.BatchSize,
                    LearningRate = result.GetValue(lr) ?? definition.Optimizer.LearningRate,
                    Seed = result.GetValue(seed),
                    Hospitals = 3,
                    Arms = chosenArms,
                    MaxSamples = result.GetValue(maxSamples),
                    Mapping = mapping,
                    KeepSplits = result.GetValue(keepSplits),
                    SplitLists = lists?.FullName,
                    Classes = classNames,
                    UShapedDefence = privacy.UShapedDefence(result),
                    Resume = result.GetValue(resume),
                    AuditSteps = Math.Max(0, result.GetValue(auditSteps)),
                    PipelineDepth = result.GetValue(pipelineDepth),
                    Augmentation = augmented,
                    OutputFolder = result.GetValue(output)?.FullName ?? Path.Combine("artifacts", "experiments"),
                };
                if (privacy.Problem(result) is { } problem) throw new StudyException(StudyExitCode.Usage, problem);
                if (options.Epochs < 1 || options.BatchSize < 1 || !(options.LearningRate > 0))
                    throw new StudyException(StudyExitCode.Usage, "--epochs and --batch-size must be at least 1 and --lr positive");
                if (options.PipelineDepth is < 0 or > Core.Runs.RunManifest.MaxPipelineDepth)
                {
                    throw new StudyException(StudyExitCode.Usage, $"--pipeline-depth {options.PipelineDepth} is out of range: use 1 (synchronous) to "
                        + $"{Core.Runs.RunManifest.MaxPipelineDepth}, or 0 to let the agents choose");
                }
                var seedList = result.GetValue(seeds) ?? [];
                if (seedList.Length == 0) return await Study.RunAsync(options, ct).ConfigureAwait(false);
                if (seedList.Distinct().Count() != seedList.Length) throw new StudyException(StudyExitCode.Usage, "--seeds lists a seed twice");
                // Each seed is a study of its own under <out>/<name>/; the summary is rebuilt after each so a stopped run keeps what finished.
                var parent = Path.Combine(options.OutputFolder, options.Name);
                foreach (var s in seedList)
                {
                    Console.WriteLine($"==== seed {s} ({Array.IndexOf(seedList, s) + 1} of {seedList.Length})");
                    var code = await Study.RunAsync(options with { Seed = s, Name = SeedSummary.SeedFolder(s), OutputFolder = parent }, ct)
                        .ConfigureAwait(false);
                    if (code != 0) return code;
                    SeedSummary.Write(parent);
                }
                Console.WriteLine($"summary over seeds {string.Join(", ", seedList)}: {Path.Combine(parent, "summary.md")}");
                return 0;
            }
            catch (StudyException e)
            {
                await Console.Error.WriteLineAsync($"splitfn-local: {e.Message} (exit code {(int)e.Code})").ConfigureAwait(false);
                return (int)e.Code;
            }
            catch (OperationCanceledException)
            {
                await Console.Error.WriteLineAsync("splitfn-local: stopped; every process it started has been stopped, finished arms are saved (--resume "
                    + "continues)").ConfigureAwait(false);
                return (int)StudyExitCode.Cancelled;
            }
        });
        return command;
    }

    /// <summary>The CSV mapping from the options, checked against the file's header before anything starts.</summary>
    private static ColumnMapping Mapping(string path, string[]? features, string? target, string[]? categorical, string? lipids, string[]? ranges,
        bool noDefaultRanges)
    {
        var names = (features ?? []).SelectMany(f => f.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        var preset = names.Length == 0 && target is null && (categorical is null || categorical.Length == 0);
        var codes = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        foreach (var spec in categorical ?? [])
        {
            var eq = spec.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new StudyException(StudyExitCode.Usage, $"--categorical '{spec}' is not column=value:code,value:code (e.g. "
                + $"sex=Male:0,Female:1)");
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var pair in spec[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var colon = pair.LastIndexOf(':');
                if (colon <= 0 || !double.TryParse(pair[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var code))
                    throw new StudyException(StudyExitCode.Usage, $"--categorical '{spec}': '{pair}' is not value:code");
                values[pair[..colon]] = code;
            }
            codes[spec[..eq].Trim()] = values;
        }
        var explicitRanges = new Dictionary<string, PlausibleRange>(StringComparer.Ordinal);
        foreach (var spec in ranges ?? [])
        {
            var eq = spec.LastIndexOf('=');
            if (eq <= 0 || !PlausibleRange.TryParse(spec[(eq + 1)..], out var range))
                throw new StudyException(StudyExitCode.Usage, $"--range '{spec}' is not column=min:max (e.g. hdl_c=1:300)");
            explicitRanges[spec[..eq].Trim()] = range;
        }
        ColumnMapping mapping;
        try
        {
            var basis = preset ? ColumnMapping.NhisLipids
                : new ColumnMapping(names.Length > 0 ? names : ColumnMapping.NhisLipids.Features, target
                ?? ColumnMapping.NhisLipids.Target)
                { Categorical = codes };
            mapping = basis with
            {
                Ranges = new Dictionary<string,
                    PlausibleRange>(basis.Ranges.Concat(explicitRanges).GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Last().Value)),
                UseDefaultRanges = !noDefaultRanges,
                Lipids = lipids is null ? null : LipidColumns.Parse(lipids, basis.Features),
            };
        }
        catch (ArgumentException e)
        {
            throw new StudyException(StudyExitCode.Usage, e.Message.Split(" (Parameter", 2)[0], e);
        }
        try
        {
            var header = CsvTabularLoader.ReadHeader(path);
            CsvTabularLoader.RequireColumns(header, mapping, path);
            foreach (var column in mapping.Categorical.Keys.Concat(explicitRanges.Keys).Where(c => !mapping.Columns.Contains(c)))
                throw new StudyException(StudyExitCode.Usage, $"column '{column}' has a --categorical or --range setting but is not mapped (--features "
                    + $"{string.Join(",", mapping.Features)}, --target {mapping.Target})");
        }
        catch (DataFormatException e)
        {
            throw new StudyException(StudyExitCode.Data, e.Message, e);
        }
        return mapping;
    }
}
