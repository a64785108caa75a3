namespace SplitFunctions.Core.Data;

/// <summary>Image splits stored MedMNIST-style in one .npz: arrays `<split>_images` and `<split>_labels`.</summary>
public static class ImageArchive
{
    /// <summary>The split names (train, val, test, ...) that have both arrays.</summary>
    public static IReadOnlyList<string> Splits(string path)
    {
        using var npz = NpzReader.Open(path);
        return [.. npz.Names
            .Where(n => n.EndsWith("_images", StringComparison.Ordinal) && npz.Contains(n[..^7] + "_labels"))
            .Select(n => n[..^7])
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The order every process pools an archive's splits in (train, val, test, then the rest by name), so that one seeded
    /// split of the pooled rows names the same rows in the agents and in the experiment driver.
    /// </summary>
    public static IReadOnlyList<string> PoolOrder(IEnumerable<string> splits) =>
        [.. splits.OrderBy(n => n switch { "train" => 0, "val" => 1, "test" => 2, _ => 3 }).ThenBy(n => n, StringComparer.Ordinal)];

    /// <summary>Reads one split and prepares it; reuse the preprocessor so every split gets the training statistics.</summary>
    public static ImageDataset LoadSplit(string path, string split, ImagePreprocessor preprocessor)
    {
        ArgumentNullException.ThrowIfNull(preprocessor);
        using var npz = NpzReader.Open(path);
        var images = npz.Read(split + "_images");
        var labels = npz.Read(split + "_labels");
        return preprocessor.Prepare(images, labels, $"{path}:{split}");
    }

    /// <summary>Writes splits in the same layout (uint8 images scaled back from [0, 1], float labels).</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, ImageDataset>> splits)
    {
        ArgumentNullException.ThrowIfNull(splits);
        var arrays = new List<KeyValuePair<string, NpyArray>>();
        foreach (var (split, data) in splits)
        {
            var bytes = new byte[data.Images.Length];
            for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Clamp(MathF.Round(data.Images[i] * 255f), 0f, 255f);
            arrays.Add(new(split + "_images", new NpyArray(NpyDType.UInt8, [data.Count, data.Channels, data.Height, data.Width], bytes)));
            arrays.Add(new(split + "_labels", NpyArray.FromFloats(data.Labels, data.Count, data.LabelsPerImage)));
        }
        NpzWriter.Write(path, arrays);
    }
}
