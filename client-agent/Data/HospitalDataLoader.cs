using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Data;

/// <summary>
/// Loads the configured data set through core/Data and cuts this hospital's share the paper's way (DataSplit): images are
/// resized to the model's input and normalised, CSV rows validated (bad rows dropped and counted) and standardised, with
/// statistics computed on this hospital's training rows only.
/// </summary>
public static class HospitalDataLoader
{
    public static HospitalData Load(DataSettings settings, ModelDefinition model, TargetScaling? targetScaling = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(settings.Path) && !(settings.Kind == DataKinds.Images && Directory.Exists(settings.Path)))
        {
            throw new AgentException(ExitCode.Data,
                $"data file {settings.Path} does not exist. Fix data.path in the configuration (relative paths are relative to the configuration file).");
        }
        try
        {
            return settings.Kind switch
            {
                DataKinds.ImagesNpz => LoadImages(settings, model),
                DataKinds.Images => LoadImageSource(settings, model),
                _ => LoadTable(settings, model, targetScaling ?? TargetScaling.Identity),
            };
        }
        catch (DataFormatException e)
        {
            throw new AgentException(ExitCode.Data, $"data error in {e.Message}", e);
        }
        catch (GdcmMissingException e)
        {
            throw new AgentException(ExitCode.Data, e.Message + ".", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentException(ExitCode.Data, $"data file {settings.Path} cannot be read ({e.Message}). Make it readable by the agent's account.", e);
        }
    }

    private static HospitalData LoadImages(DataSettings settings, ModelDefinition model)
    {
        if (model.InputShape.Length != 3)
        {
            throw new AgentException(ExitCode.Data,
                $"model '{model.Name}' takes tabular input of shape [{string.Join(",", model.InputShape)}], but data.kind is images-npz. Use a tabular-csv "
                    + $"data set for this run.");
        }
        var (channels, height, width) = ((int)model.InputShape[0], (int)model.InputShape[1], (int)model.InputShape[2]);
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(height, width) { Normalize = false });
        ImageDataset? all = null;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var npz = NpzReader.Open(settings.Path))
        {
            // One pool of rows: either a plain images/labels pair, or every MedMNIST-style split (train, val, test, ...).
            var pairs = npz.Contains("images") && npz.Contains("labels")
                ? ["images"]
                : ImageArchive.PoolOrder(npz.Names.Where(n => n.EndsWith("_images", StringComparison.Ordinal) && npz.Contains(n[..^7] + "_labels"))
                    .Select(n => n[..^7]))
                    .Select(split => split + "_images").ToList();
            if (pairs.Count == 0)
            {
                throw new DataFormatException(settings.Path,
                    $"holds no image arrays with labels (it has: {string.Join(", ", npz.Names)}). Save `images` and `labels`, or `<split>_images` and "
                        + $"`<split>_labels` pairs.");
            }
            foreach (var name in pairs)
            {
                var labelsName = name == "images" ? "labels" : name[..^7] + "_labels";
                var part = preprocessor.Prepare(npz.Read(name), npz.Read(labelsName), $"{settings.Path}:{name}");
                counts[name == "images" ? "" : name[..^7]] = part.Count;
                all = all is null ? part : all.Concat(part);
            }
        }
        if (all!.Channels != channels)
        {
            throw new DataFormatException(settings.Path,
                $"images have {all.Channels} channel(s) but model '{model.Name}' takes {channels}. Convert the images (e.g. to grey) before training.");
        }
        if (all.LabelsPerImage != 1)
        {
            throw new DataFormatException(settings.Path, $"images have {all.LabelsPerImage} labels each; this task needs exactly one (shape (N) or (N, 1)).");
        }
        RequireBinaryLabels(model, all.Labels, settings.Path);
        RequireClassIndices(model, all.Labels, settings.Path);

        var rows = settings.Partition.PredefinedSplits
            ? PredefinedPartition(settings.Partition, counts, settings.Path)
            : Partition(settings.Partition, all.Count, settings.Path);
        var train = all.Subset(rows.Train);
        var statistics = ChannelStatistics.Compute(train);
        TrainingSet Prepare(int[] indices)
        {
            var subset = all.Subset(indices);
            statistics.Apply(subset);
            return new TrainingSet(subset.Images, subset.Labels, model.InputShape);
        }
        var summary = $"{Path.GetFileName(settings.Path)}: {all.Count} images resized to {height}x{width}; this hospital: {rows.Train.Length} train, "
            + $"{rows.Validation.Length} validation, {rows.Test.Length} test";
        return new HospitalData(Prepare(rows.Train), Prepare(rows.Validation), Prepare(rows.Test), summary, null) { ImageStatistics = statistics };
    }

    /// <summary>The image source's options for this run's task (core/Data ImageSourceOptions).</summary>
    public static ImageSourceOptions ImageOptions(DataSettings settings, TaskKind task)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var images = settings.Images ?? new ImageSettings();
        _ = DicomWindow.TryParse(images.Window, out var window);
        return new ImageSourceOptions
        {
            Path = settings.Path,
            ImageRoot = images.ImageRoot,
            PathColumn = images.PathColumn,
            LabelColumns = images.LabelColumns,
            SplitColumn = images.SplitColumn,
            GroupColumn = images.GroupColumn,
            Classes = images.Classes,
            Window = images.Window is null ? null : window,
            CacheMegabytes = images.CacheMegabytes,
            LabelKind = task switch
            {
                TaskKind.Regression => ImageLabelKind.Value,
                TaskKind.MultiLabel => ImageLabelKind.MultiLabel,
                _ => ImageLabelKind.SingleClass,
            },
        };
    }

    /// <summary>How data.partition shares an image source out.</summary>
    public static ImageSplitRule SplitRule(PartitionSettings p)
    {
        ArgumentNullException.ThrowIfNull(p);
        return new ImageSplitRule(p.Seed, p.Weights, p.Index, p.ValidationFraction, p.TestFraction);
    }

    private static HospitalData LoadImageSource(DataSettings settings, ModelDefinition model)
    {
        if (model.InputShape.Length != 3 || model.InputShape[0] is not (1 or 3))
        {
            throw new AgentException(ExitCode.Data, $"model '{model.Name}' takes input [{string.Join(",", model.InputShape)}], not images of 1 or 3 "
                + $"channels; data.kind is images. Use a tabular-csv data set for this run.");
        }
        var (channels, height, width) = ((int)model.InputShape[0], (int)model.InputShape[1], (int)model.InputShape[2]);
        var loaded = ImageSourceLoader.Load(ImageOptions(settings, model.Task), SplitRule(settings.Partition), channels, height, width);
        var report = loaded.Report;
        var wanted = model.Task switch { TaskKind.Classification => 2, TaskKind.Regression => 0, _ => model.OutputWidth };
        if (wanted > 0 && report.Classes.Count != wanted)
        {
            var what = model.Task == TaskKind.MultiLabel ? "labels" : "classes";
            throw new DataFormatException(settings.Path, $"found {report.Classes.Count} {what} ({string.Join(", ", report.Classes)}) but model "
                + $"'{model.Name}' ({model.Task}) takes {wanted}. Set data.images.{(model.Task == TaskKind.MultiLabel ? "labelColumns" : "classes")} to the "
                + $"{wanted} {what} this run uses, in the run's order.");
        }
        var summary = $"{Path.GetFileName(settings.Path.TrimEnd('/', '\\'))}: {report.Usable} images ({report.Skipped.Count} skipped) converted to "
            + $"{(channels == 1 ? "grey" : "RGB")} {height}x{width}; this hospital: {loaded.Train.Count} train, {loaded.Validation.Count} validation, "
            + $"{loaded.Test.Count} test";
        return new HospitalData(loaded.Train, loaded.Validation, loaded.Test, summary, null, report);
    }

    private static HospitalData LoadTable(DataSettings settings, ModelDefinition model, TargetScaling scaling)
    {
        var columns = settings.Columns!;
        if (settings.Partition.PredefinedSplits)
        {
            throw new DataFormatException(settings.Path, "data.partition.predefinedSplits needs an image archive with train, val and test splits; a CSV is "
                + "split by seed. Set it to false.");
        }
        var mapping = new ColumnMapping(columns.Features, columns.Target)
        {
            Categorical = columns.Categorical.ToDictionary(
                c => c.Key,
                c => (IReadOnlyDictionary<string, double>)new Dictionary<string, double>(c.Value, StringComparer.OrdinalIgnoreCase)),
            Ranges = columns.Ranges.ToDictionary(r => r.Key, r => new PlausibleRange(r.Value.Min, r.Value.Max)),
            UseDefaultRanges = columns.UseDefaultRanges,
        };
        // The run manifest fixes the network's input width (inputShape); this hospital's mapping must give exactly that.
        if (model.InputShape.Length != 1 || model.InputShape[0] != mapping.EncodedWidth)
        {
            throw new AgentException(ExitCode.Data,
                $"data.columns.features maps {columns.Features.Count} columns ({mapping.EncodedWidth} inputs after encoding), but the run's model "
                    + $"'{model.Name}' takes input [{string.Join(",", model.InputShape)}] (run manifest inputShape). " +
                "Map the same features, in the same order, as the other hospitals of this run (docs/agent.md, \"Column mapping\").");
        }
        var table = CsvTabularLoader.Load(settings.Path, mapping);
        if (table.Count == 0)
        {
            throw new DataFormatException(settings.Path, $"no usable rows: every row was dropped. {table.Validation}");
        }
        RequireBinaryLabels(model, table.Targets, settings.Path);
        var rows = Partition(settings.Partition, table.Count, settings.Path);
        var standardizer = Standardizer.Fit(table.Subset(rows.Train));
        TrainingSet Prepare(int[] indices)
        {
            var subset = standardizer.Transform(table.Subset(indices));
            var targets = model.Task == TaskKind.Regression ? Array.ConvertAll(subset.Targets, scaling.ToWire) : subset.Targets;
            return new TrainingSet(subset.Features, targets, model.InputShape);
        }
        var report = table.Validation;
        var summary = $"{Path.GetFileName(settings.Path)}: {report?.TotalRows ?? table.Count} rows, {report?.DroppedRows ?? 0} dropped, {table.Count} kept; " +
                      $"this hospital: {rows.Train.Length} train, {rows.Validation.Length} validation, {rows.Test.Length} test";
        return new HospitalData(Prepare(rows.Train), Prepare(rows.Validation), Prepare(rows.Test), summary, report);
    }

    private static (int[] Train, int[] Validation, int[] Test) Partition(PartitionSettings p, int count, string source)
    {
        var split = DataSplit.Create(count, p.Seed, p.ValidationFraction, p.TestFraction, p.Weights);
        var train = split.Hospitals[p.Index];
        if (train.Length == 0)
        {
            throw new DataFormatException(source,
                $"this hospital's share (partition index {p.Index} of weights [{string.Join(", ", p.Weights)}]) of {count} rows is empty. Use more data or a "
                    + $"larger weight.");
        }
        return (train, split.Validation, split.Test);
    }

    // The archive's own splits (pooled train, val, test): this hospital's share of train, and the official val and test.
    private static (int[] Train, int[] Validation, int[] Test) PredefinedPartition(PartitionSettings p, IReadOnlyDictionary<string, int> counts, string source)
    {
        if (!counts.TryGetValue("train", out var train) || !counts.TryGetValue("val", out var validation) || !counts.TryGetValue("test", out var test))
        {
            throw new DataFormatException(source,
                $"data.partition.predefinedSplits needs train, val and test splits (train_images/train_labels, val_..., test_...); the archive has: "
                    + $"{string.Join(", ", counts.Keys.Select(k => k.Length == 0 ? "images" : k))}.");
        }
        var split = DataSplit.Predefined(train, validation, test, p.Seed, p.Weights);
        var mine = split.Hospitals[p.Index];
        if (mine.Length == 0)
        {
            throw new DataFormatException(source, $"this hospital's share (partition index {p.Index} of weights [{string.Join(", ", p.Weights)}]) of the "
                + $"{train} training rows is empty. Use more data or a larger weight.");
        }
        return (mine, split.Validation, split.Test);
    }

    private static void RequireClassIndices(ModelDefinition model, float[] labels, string source)
    {
        if (model.Task == TaskKind.MultiLabel)
            throw new DataFormatException(source, $"model '{model.Name}' is multi-label; a NumPy archive holds one label per image. Use data.kind images "
                + "with a manifest naming one 0/1 column per label.");
        if (model.Task != TaskKind.MultiClass) return;
        var classes = model.OutputWidth;
        var bad = Array.FindIndex(labels, l => l < 0 || l >= classes || l != MathF.Floor(l));
        if (bad >= 0)
            throw new DataFormatException(source, $"label {labels[bad]} of row {bad} is not a class index 0..{classes - 1} of model '{model.Name}'.");
    }

    private static void RequireBinaryLabels(ModelDefinition model, float[] labels, string source)
    {
        if (model.Task != TaskKind.Classification) return;
        var bad = Array.FindIndex(labels, l => l is not (0f or 1f));
        if (bad >= 0)
        {
            throw new DataFormatException(source,
                $"label {labels[bad]} of row {bad} is not 0 or 1; model '{model.Name}' is a binary classifier. Map the labels to 0/1 first.");
        }
    }
}
