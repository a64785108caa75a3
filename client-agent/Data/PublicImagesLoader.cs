using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Data;

/// <summary>
/// Public images of the same kind as the hospital's (e.g. a public chest X-ray set) for the leakage audit's attacker: an
/// .npz with an `images` array or `<split>_images` arrays (labels not needed), resized to the model's input and
/// normalised with this hospital's training statistics, exactly as its own images are.
/// </summary>
public static class PublicImagesLoader
{
    public static TrainingSet Load(string path, ModelDefinition model, ChannelStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(statistics);
        if (!File.Exists(path)) throw new AgentException(ExitCode.Usage, $"--public-images {path} does not exist; give an .npz of public images.");
        var (channels, height, width) = ((int)model.InputShape[0], (int)model.InputShape[1], (int)model.InputShape[2]);
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(height, width) { Normalize = false });
        try
        {
            using var npz = NpzReader.Open(path);
            var names = npz.Contains("images") ? ["images"] : ImageArchive.PoolOrder(npz.Names.Where(n => n.EndsWith("_images", StringComparison.Ordinal))
                .Select(n => n[..^7])).Select(s => s + "_images").ToList();
            if (names.Count == 0) throw new DataFormatException(path, $"holds no image array (it has: {string.Join(", ", npz.Names)}); save `images` or "
                + "`<split>_images`.");
            ImageDataset? all = null;
            foreach (var name in names)
            {
                var images = npz.Read(name);
                var count = images.Rank > 0 ? images.Shape[0] : 0;
                var part = preprocessor.Prepare(images, NpyArray.FromFloats(new float[count], count), $"{path}:{name}");
                all = all is null ? part : all.Concat(part);
            }
            if (all!.Channels != channels) throw new DataFormatException(path, $"public images have {all.Channels} channel(s); the model takes {channels}.");
            statistics.Apply(all);
            return new TrainingSet(all.Images, all.Labels, model.InputShape);
        }
        catch (DataFormatException e)
        {
            throw new AgentException(ExitCode.Data, $"public images: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new AgentException(ExitCode.Data, $"public images {path} cannot be read ({e.Message}).", e);
        }
    }
}
