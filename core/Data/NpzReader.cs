using System.IO.Compression;

namespace SplitFunctions.Core.Data;

/// <summary>Reads the arrays of a NumPy .npz archive (numpy.savez / savez_compressed) by name.</summary>
public sealed class NpzReader : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _members;

    private NpzReader(string path, ZipArchive zip)
    {
        Path = path;
        _zip = zip;
        _members = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries)
        {
            var name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
            _members[name] = entry;
        }
    }

    public string Path { get; }

    /// <summary>Array names as numpy.load shows them (member names without ".npy").</summary>
    public IReadOnlyCollection<string> Names => _members.Keys;

    public static NpzReader Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found. Check the --data path; the folder must be readable by the agent's account.");
        var stream = File.OpenRead(path);
        try
        {
            return new NpzReader(path, new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false));
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw new DataFormatException(path, "not an .npz archive (not a zip file). Save the arrays with numpy.savez(path, train_images=..., "
                + "train_labels=...), or pass a single .npy file.", e);
        }
    }

    /// <summary>Reads every array of an archive.</summary>
    public static IReadOnlyDictionary<string, NpyArray> ReadAll(string path)
    {
        using var npz = Open(path);
        return npz.Names.ToDictionary(n => n, npz.Read, StringComparer.Ordinal);
    }

    public bool Contains(string name) => _members.ContainsKey(name);

    public NpyArray Read(string name)
    {
        if (!_members.TryGetValue(name, out var entry))
            throw new DataFormatException(Path, $"has no array '{name}'; it holds: {string.Join(", ", _members.Keys.Order(StringComparer.Ordinal))}. Name the "
                + $"arrays as expected (e.g. numpy.savez(path, {name}=...)).");
        var source = $"{Path}:{name}";
        try
        {
            using var stream = entry.Open();
            return NpyReader.Read(stream, source);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(source, "the archive member is damaged (zip data error). Copy the file again; it was cut off or corrupted.", e);
        }
    }

    public void Dispose() => _zip.Dispose();
}
