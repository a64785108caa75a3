using System.IO.Compression;

namespace SplitFunctions.Core.Data;

/// <summary>Writes named arrays as a NumPy .npz archive (what numpy.savez_compressed produces).</summary>
public static class NpzWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, NpyArray>> arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        using var stream = File.Create(path);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create);
        foreach (var (name, array) in arrays)
        {
            using var member = zip.CreateEntry(name + ".npy", CompressionLevel.Fastest).Open();
            NpyWriter.Write(member, array);
        }
    }
}
