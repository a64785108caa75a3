using SplitFunctions.Core.Data;
using SplitFunctions.Core.Training;

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

    /// <summary>Loads an archive (pixels scaled to [0, 1], no normalisation: the agents and baselines normalise alike).</summary>
    public static ImageStudy Load(string path, int height, int width, int hospitals, long seed, int? maxSamples = null)
    {
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(height, width) { Normalize = false });
        ImageDataset? pooled = null;
        foreach (var split in ImageArchive.Splits(path))
        {
            var part = ImageArchive.LoadSplit(path, split, preprocessor);
            pooled = pooled is null ? part : pooled.Concat(part);
        }
        if (pooled is null) throw new DataFormatException(path, "no '<split>_images' / '<split>_labels' pairs found. Use an .npz with e.g. train_images and train_labels");
        return Create(path, pooled, hospitals, seed, maxSamples);
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
        var weights = hospitals == 3 ? DataSplit.PaperHospitalWeights : Enumerable.Repeat(1.0, hospitals).ToList();
        return new ImageStudy(source, pooled, DataSplit.Create(pooled.Count, seed, hospitalWeights: weights));
    }

    /// <summary>Writes hospital <paramref name="index"/>'s file: its training share, plus the common validation and test splits.</summary>
    public string WriteHospitalArchive(int index, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageArchive.Save(path, [new("train", Hospital(index)), new("val", Validation), new("test", Test)]);
        return path;
    }

    public static TrainingSet ToTrainingSet(ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new TrainingSet(data.Images, data.Labels, [data.Channels, data.Height, data.Width]);
    }
}
