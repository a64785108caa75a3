using System.Security.Cryptography;

namespace SplitFunctions.Core.Data;

/// <summary>How a source's images are shared out: the paper's seeded split, or the hospital's own split column; this hospital takes share Index.</summary>
public sealed record ImageSplitRule(long Seed, IReadOnlyList<double> Weights, int Index, double ValidationFraction = 0.1, double TestFraction = 0.1);

/// <summary>What one decoding pass learnt about a usable image: for the report, the duplicate check and the training statistics.</summary>
public sealed record ImageFileInfo(int Width, int Height, string Mode, string Sha256, double[] Sum, double[] SumSquares, long Values);

/// <summary>A source's images cut into this hospital's training rows and the held-out rows, read on demand, and its data report.</summary>
public sealed record ImageSourceData(TrainingSet Train, TrainingSet Validation, TrainingSet Test, ImageDataReport Report, ChannelStatistics Statistics);

/// <summary>
/// Loads an image source for a network input [C, H, W]: lists it, decodes every file once (unusable ones skipped with
/// their reason; sizes, modes and content hashes recorded; per-image channel sums for the statistics), splits it by
/// patient, and returns sets that decode on demand, normalised with this hospital's training statistics only.
/// </summary>
public static class ImageSourceLoader
{
    public static ImageSourceData Load(ImageSourceOptions options, ImageSplitRule rule, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rule);
        var catalog = ImageCatalog.Scan(options);
        var (usable, infos, skipped) = Inspect(catalog, options, channels, height, width);
        if (usable.Count == 0)
        {
            var reasons = skipped.GroupBy(s => s.Reason).OrderByDescending(g => g.Count()).Take(3).Select(g => $"{g.Count()} {g.Key}");
            throw new DataFormatException(options.Path, $"no usable image ({catalog.Entries.Count + catalog.Skipped.Count} files listed; "
                + $"{(skipped.Count == 0 ? "none found" : string.Join("; ", reasons))}). Point data.path at a folder of PNG, JPEG or DICOM images.");
        }
        RequireTwoClasses(options, catalog, usable);
        var (train, validation, test, splitOf) = Split(usable, rule, options.Path);
        if (train.Length == 0)
        {
            throw new DataFormatException(options.Path, $"this hospital's share (partition index {rule.Index} of weights [{string.Join(", ", rule.Weights)}]) "
                + $"of {usable.Count} usable images has no training image. Use more images or a larger weight.");
        }
        var statistics = Statistics([.. train.Select(i => infos[i])], channels);
        var report = ImageDataReport.Create(options.Path, catalog, usable, infos, skipped, splitOf, train, validation, test);
        TrainingSet Set(int[] rows)
        {
            var samples = new ImageSamples([.. rows.Select(r => usable[r].Path)], channels, height, width, statistics, options.Window,
                (long)options.CacheMegabytes * 1024 * 1024);
            var targets = rows.SelectMany(r => usable[r].Labels).ToArray();
            // Multi-label sources carry one 0/1 value per label column; the others one class index or value.
            return new TrainingSet(samples, targets, [channels, height, width], options.LabelKind == ImageLabelKind.MultiLabel ? catalog.LabelNames.Count : 1);
        }
        return new ImageSourceData(Set(train), Set(validation), Set(test), report, statistics);
    }

    /// <summary>
    /// Every usable image of a source in memory, pixels in [0, 1] (not normalised), labels as the source gives them: for
    /// the local studies, which cut a whole set into simulated hospitals' archives. The agent never does this. Splits:
    /// each image's split from the manifest's split column (train, validation, test), null without one.
    /// </summary>
    public static (ImageDataset Images, ImageDataReport Report, IReadOnlyList<string?> Splits) LoadAll(ImageSourceOptions options, int channels, int height,
        int width)
    {
        ArgumentNullException.ThrowIfNull(options);
        var catalog = ImageCatalog.Scan(options);
        var (usable, infos, skipped) = Inspect(catalog, options, channels, height, width);
        if (usable.Count == 0)
            throw new DataFormatException(options.Path, $"no usable image ({catalog.Entries.Count + catalog.Skipped.Count} files listed).");
        RequireTwoClasses(options, catalog, usable);
        var size = channels * height * width;
        var pixels = new float[(long)usable.Count * size];
        Parallel.For(0, usable.Count, i => ImageFiles.ReadPrepared(usable[i].Path, options.Window, channels, height, width).Planes
            .CopyTo(pixels, (long)i * size));
        var rows = Enumerable.Range(0, usable.Count).ToArray();
        var report = ImageDataReport.Create(options.Path, catalog, usable, infos, skipped, [.. rows.Select(_ => "pool")], rows, [], []);
        return (new ImageDataset(pixels, usable.Count, channels, height, width, [.. usable.SelectMany(e => e.Labels)]), report,
            [.. usable.Select(e => e.Split)]);
    }

    /// <summary>
    /// A source whose every usable image is one class cannot train a classifier (the network would learn a constant): one error, not a
    /// run that reports perfect accuracy. Only the whole source counts; one hospital's share may lack a class.
    /// </summary>
    public static void RequireTwoClasses(ImageSourceOptions options, ImageCatalog catalog, IReadOnlyList<ImageEntry> usable)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(usable);
        if (options.LabelKind != ImageLabelKind.SingleClass || usable.Count == 0) return;
        var first = usable[0].Labels[0];
        if (usable.Any(e => e.Labels[0] != first)) return;
        var name = (int)first < catalog.Classes.Count ? catalog.Classes[(int)first] : first.ToString(System.Globalization.CultureInfo.InvariantCulture);
        throw new DataFormatException(options.Path, $"every usable image is class '{name}' ({usable.Count} images): a classifier needs images of at "
            + $"least two classes ({string.Join(", ", catalog.Classes)}). Add the other classes' images, or check the labels and the skipped files.");
    }

    /// <summary>Lists and decodes the source once for the report alone (at `init`, before the run's network is known).</summary>
    public static ImageDataReport Report(ImageSourceOptions options, ImageSplitRule rule)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rule);
        var catalog = ImageCatalog.Scan(options);
        var (usable, infos, skipped) = Inspect(catalog, options, 1, 8, 8);
        if (usable.Count == 0)
            return ImageDataReport.Create(options.Path, catalog, usable, infos, skipped, [], [], [], []);
        RequireTwoClasses(options, catalog, usable);
        var (train, validation, test, splitOf) = Split(usable, rule, options.Path);
        return ImageDataReport.Create(options.Path, catalog, usable, infos, skipped, splitOf, train, validation, test);
    }

    private static (List<ImageEntry> Usable, List<ImageFileInfo> Infos, List<SkippedImage> Skipped) Inspect(ImageCatalog catalog,
        ImageSourceOptions options, int channels, int height, int width)
    {
        var results = new (ImageFileInfo? Info, string? Reason)[catalog.Entries.Count];
        var gdcmMissing = false;
        Parallel.For(0, catalog.Entries.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            var path = catalog.Entries[i].Path;
            try
            {
                var (image, planes) = ImageFiles.ReadPrepared(path, options.Window, channels, height, width);
                var sum = new double[channels];
                var squares = new double[channels];
                var plane = height * width;
                for (var c = 0; c < channels; c++)
                {
                    foreach (var v in planes.AsSpan(c * plane, plane))
                    {
                        sum[c] += v;
                        squares[c] += (double)v * v;
                    }
                }
                results[i] = (new ImageFileInfo(image.Width, image.Height, image.Mode, Hash(path), sum, squares, plane), null);
            }
            catch (UnusableImageException e)
            {
                results[i] = (null, e.Reason);
            }
            catch (GdcmMissingException)
            {
                gdcmMissing = true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                results[i] = (null, $"cannot be read ({e.Message})");
            }
        });
        if (gdcmMissing) throw new GdcmMissingException(DicomImageDecoder.InstallHint);
        var usable = new List<ImageEntry>();
        var infos = new List<ImageFileInfo>();
        var skipped = new List<SkippedImage>(catalog.Skipped);
        for (var i = 0; i < results.Length; i++)
        {
            if (results[i].Info is { } info)
            {
                usable.Add(catalog.Entries[i]);
                infos.Add(info);
            }
            else
            {
                skipped.Add(new(catalog.Entries[i].Path, results[i].Reason!));
            }
        }
        return (usable, infos, skipped);
    }

    private static string Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    /// <summary>
    /// Splits usable images by patient: the hospital's split column when given (a patient in two splits is an error),
    /// otherwise the paper's seeded split drawn over patients (each image its own patient without a group column).
    /// Returns this hospital's training rows, the validation and test rows, and every row's split name.
    /// </summary>
    internal static (int[] Train, int[] Validation, int[] Test, string[] SplitOf) Split(IReadOnlyList<ImageEntry> usable, ImageSplitRule rule, string source)
    {
        var groupOf = usable.Select((e, i) => e.Group ?? $"\0{i}").ToArray();
        var groups = groupOf.Distinct(StringComparer.Ordinal).ToArray();
        var groupIndex = groups.Select((g, i) => (g, i)).ToDictionary(p => p.g, p => p.i, StringComparer.Ordinal);
        var membersOf = new List<int>[groups.Length];
        for (var i = 0; i < groups.Length; i++) membersOf[i] = [];
        for (var i = 0; i < usable.Count; i++) membersOf[groupIndex[groupOf[i]]].Add(i);
        int[] Rows(IEnumerable<int> groupIds) => [.. groupIds.SelectMany(g => membersOf[g]).Order()];

        var splitOf = new string[usable.Count];
        int[] train, validation, test;
        if (usable.Any(e => e.Split is not null))
        {
            foreach (var members in membersOf)
            {
                var splits = members.Select(m => usable[m].Split).Distinct().ToList();
                if (splits.Count > 1)
                {
                    throw new DataFormatException(source, $"patient '{usable[members[0]].Group}' has images in {string.Join(" and ", splits)}: a patient's "
                        + $"images must all be in one split (fix the split column).");
                }
            }
            var trainGroups = Enumerable.Range(0, groups.Length).Where(g => usable[membersOf[g][0]].Split == "train").ToArray();
            var shares = DataSplit.Predefined(trainGroups.Length, 0, 0, rule.Seed, rule.Weights);
            train = Rows(shares.Hospitals[rule.Index].Select(k => trainGroups[k]));
            validation = [.. Enumerable.Range(0, usable.Count).Where(i => usable[i].Split == "validation")];
            test = [.. Enumerable.Range(0, usable.Count).Where(i => usable[i].Split == "test")];
            for (var h = 0; h < shares.Hospitals.Count; h++)
                foreach (var row in Rows(shares.Hospitals[h].Select(k => trainGroups[k]))) splitOf[row] = h == rule.Index ? "train" : "train (other hospitals)";
        }
        else
        {
            var split = DataSplit.Create(groups.Length, rule.Seed, rule.ValidationFraction, rule.TestFraction, rule.Weights);
            train = Rows(split.Hospitals[rule.Index]);
            validation = Rows(split.Validation);
            test = Rows(split.Test);
            for (var h = 0; h < split.Hospitals.Count; h++)
                foreach (var row in Rows(split.Hospitals[h])) splitOf[row] = h == rule.Index ? "train" : "train (other hospitals)";
        }
        foreach (var row in validation) splitOf[row] = "validation";
        foreach (var row in test) splitOf[row] = "test";
        return (train, validation, test, splitOf);
    }

    private static ChannelStatistics Statistics(IReadOnlyList<ImageFileInfo> train, int channels)
    {
        var mean = new float[channels];
        var std = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            // Double accumulators over every pixel of every training image (as ChannelStatistics.Compute).
            double sum = train.Sum(i => i.Sum[c]), squares = train.Sum(i => i.SumSquares[c]), count = train.Sum(i => (double)i.Values);
            var m = sum / count;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(0, (squares / count) - (m * m)));
        }
        return new ChannelStatistics(mean, std);
    }
}
