using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// An image dataset cut the paper's way: every split of the archive pooled, 10% validation and 10% test held out,
/// the rest 7:2:1 (or the given weights) across hospitals. Each hospital's share is written as its own .npz, the
/// file that hospital's agent reads, so no hospital process ever opens another's data.
/// </summary>
public sealed class ImageStudy
{
    private ImageStudy(string source, ImageDataset pooled, DataSplit split)
    {
        Source = source;
        Pooled = pooled;
        Split = split;
    }

    public string Source { get; }

    public ImageDataset Pooled { get; }

    public DataSplit Split { get; }

    public ImageDataset Validation => Pooled.Subset(Split.Validation);

    public ImageDataset Test => Pooled.Subset(Split.Test);

    public ImageDataset Hospital(int index) => Pooled.Subset(Split.Hospitals[index]);

    /// <summary>Loads an archive or image folder with pixels scaled to [0, 1]; normalisation follows whoever trains (see StudyMaterial).</summary>
    public static ImageStudy Load(string path, int height, int width, int hospitals, long seed, int? maxSamples = null,
        IReadOnlyList<string>? classes = null) =>
        Create(path, LoadPooled(path, height, width, classes), hospitals, seed, maxSamples);

    /// <summary>
    /// An image manifest with a split column (e.g. one <see cref="SplitLists"/> wrote from official lists): its validation
    /// and test images are kept as they are, its training images shared across hospitals exactly as each agent given the
    /// manifest with --split-column shares them (ImageSourceLoader: the train rows in manifest order, DataSplit.Predefined).
    /// </summary>
    public static ImageStudy LoadManifest(string manifest, string splitColumn, IReadOnlyList<string>? classes, int height, int width, int hospitals,
        long seed)
    {
        var (all, _, splits) = ImageSourceLoader.LoadAll(new ImageSourceOptions { Path = manifest, SplitColumn = splitColumn, Classes = classes }, 1, height,
            width);
        int[] Rows(string split) => [.. Enumerable.Range(0, all.Count).Where(i => splits[i] == split)];
        var (train, validation, test) = (Rows("train"), Rows("validation"), Rows("test"));
        if (train.Length == 0 || validation.Length == 0 || test.Length == 0)
        {
            throw new DataFormatException(manifest, $"the split column '{splitColumn}' gives {train.Length} train, {validation.Length} validation and "
                + $"{test.Length} test images; a study needs all three.");
        }
        return new ImageStudy(manifest, all.Subset([.. train, .. validation, .. test]),
            DataSplit.Predefined(train.Length, validation.Length, test.Length, seed, HospitalWeights(hospitals)));
    }

    /// <summary>
    /// Keeps the archive's own val and test splits (MedMNIST's official ones, so results compare with published
    /// figures); only its train split is shared 7:2:1 across hospitals. The agents do the same (--predefined-splits).
    /// </summary>
    public static ImageStudy LoadPredefined(string path, int height, int width, int hospitals, long seed)
    {
        var splits = ImageArchive.Splits(path);
        string[] needed = ["train", "val", "test"];
        var missing = needed.Except(splits).ToList();
        if (missing.Count > 0)
            throw new DataFormatException(path, $"--keep-splits needs train, val and test splits, but {string.Join(", ", missing)} is missing (the archive "
                + $"has: {string.Join(", ", splits)}). Leave --keep-splits out to pool and re-split.");
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(height, width) { Normalize = false });
        var parts = ImageArchive.PoolOrder(splits).Select(s => ImageArchive.LoadSplit(path, s, preprocessor)).ToList();
        var pooled = parts.Aggregate((a, b) => a.Concat(b));
        return new ImageStudy(path, pooled, DataSplit.Predefined(parts[0].Count, parts[1].Count, parts[2].Count, seed, HospitalWeights(hospitals)));
    }

    // Every split of the archive, pooled in the order the agents pool it, pixels scaled to [0, 1].
    private static ImageDataset LoadPooled(string path, int height, int width, IReadOnlyList<string>? classes = null)
    {
        // A hospital's image folder (a subfolder per class; PNG, JPEG, DICOM), converted to grey like the agents do.
        if (Directory.Exists(path)) return ImageSourceLoader.LoadAll(new ImageSourceOptions { Path = path, Classes = classes }, 1, height, width).Images;
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(height, width) { Normalize = false });
        var splits = ImageArchive.PoolOrder(ImageArchive.Splits(path));
        if (splits.Count == 0) throw new DataFormatException(path, "no '<split>_images' / '<split>_labels' pairs found. Use an .npz with e.g. train_images "
            + "and train_labels");
        return splits.Select(s => ImageArchive.LoadSplit(path, s, preprocessor)).Aggregate((a, b) => a.Concat(b));
    }

    /// <summary>The built-in synthetic task (a fresh machine without real data).</summary>
    public static ImageStudy Synthetic(int count, int height, int width, int hospitals, long seed) =>
        Create("synthetic", SyntheticImages.Generate(count, height, width, seed), hospitals, seed, null);

    private static ImageStudy Create(string source, ImageDataset pooled, int hospitals, long seed, int? maxSamples)
    {
        if (maxSamples is { } max && max < pooled.Count)
        {
            pooled = pooled.Subset(SeededRandom.Permutation(pooled.Count, seed ^ 0x5eed)[..max]);
        }
        return new ImageStudy(source, pooled, DataSplit.Create(pooled.Count, seed, hospitalWeights: HospitalWeights(hospitals)));
    }

    /// <summary>Writes a seeded random subset of an archive's pooled rows as a new archive (quick runs that every process reads alike).</summary>
    public static int WriteSubset(string path, int height, int width, int maxSamples, long seed, string output)
    {
        var pooled = LoadPooled(path, height, width);
        var subset = pooled.Subset(SeededRandom.Permutation(pooled.Count, seed)[..Math.Min(maxSamples, pooled.Count)]);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        ImageArchive.Save(output, [new("train", subset)]);
        return subset.Count;
    }

    /// <summary>7:2:1 for three hospitals (the paper), equal shares otherwise.</summary>
    public static IReadOnlyList<double> HospitalWeights(int hospitals) =>
        hospitals == 3 ? DataSplit.PaperHospitalWeights : Enumerable.Repeat(1.0, hospitals).ToList();

    /// <summary>Writes hospital <paramref name="index"/>'s file: its training share, plus the common validation and test splits.</summary>
    public string WriteHospitalArchive(int index, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageArchive.Save(path, [new("train", Hospital(index)), new("val", Validation), new("test", Test)]);
        return path;
    }

    /// <summary>Engine-ready images normalised with <paramref name="statistics"/> (the trainer's own training statistics, as the agent does).</summary>
    public static TrainingSet ToTrainingSet(ImageDataset data, ChannelStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(statistics);
        var copy = data.Subset([.. Enumerable.Range(0, data.Count)]);
        statistics.Apply(copy);
        return new TrainingSet(copy.Images, copy.Labels, [data.Channels, data.Height, data.Width]);
    }
}
