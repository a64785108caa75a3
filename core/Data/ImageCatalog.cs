using System.Globalization;
using CsvHelper;

namespace SplitFunctions.Core.Data;

/// <summary>One image the source lists: its file, its label(s), and the split and patient the hospital gave it (if any).</summary>
public sealed record ImageEntry(string Path, float[] Labels, string? Split, string? Group);

/// <summary>A file the source could not use, with the reason (shown in the data report).</summary>
public sealed record SkippedImage(string Path, string Reason);

/// <summary>
/// The images of a source before decoding: a folder of class subfolders (torchvision's ImageFolder layout) or a CSV/TSV
/// manifest. Rows naming a missing file, a file of another type, or an unknown label are skipped with their reason; a
/// manifest that lacks a named column is an error (a typo, not dirty data).
/// </summary>
public sealed record ImageCatalog(IReadOnlyList<ImageEntry> Entries, IReadOnlyList<SkippedImage> Skipped, IReadOnlyList<string> Classes,
    IReadOnlyList<string> LabelNames)
{
    /// <summary>Extensions an image folder is searched for (case-insensitive); other files are skipped and counted.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".dcm", ".dicom"];

    /// <summary>Split names accepted in a split column, and what they mean.</summary>
    public static string? NormaliseSplit(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "train" or "training" => "train",
        "val" or "valid" or "validation" => "validation",
        "test" or "testing" => "test",
        _ => null,
    };

    public static ImageCatalog Scan(ImageSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (File.Exists(options.Path)) return ScanManifest(options);
        if (Directory.Exists(options.Path)) return ScanFolder(options);
        throw new DataFormatException(options.Path, "neither a folder nor a manifest file exists there. Fix data.path (a folder of class subfolders, or a "
            + ".csv/.tsv manifest).");
    }

    private static ImageCatalog ScanFolder(ImageSourceOptions options)
    {
        if (options.LabelKind != ImageLabelKind.SingleClass)
        {
            throw new DataFormatException(options.Path, $"a folder of class subfolders gives one class per image, but this run's task needs "
                + $"{(options.LabelKind == ImageLabelKind.MultiLabel ? "several labels" : "a value")} per image. Use a CSV/TSV manifest with label columns.");
        }
        var skipped = new List<SkippedImage>();
        var found = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories(options.Path, "*", Listing).Order(StringComparer.Ordinal))
        {
            if (IsSystemName(System.IO.Path.GetFileName(folder))) skipped.Add(new(folder, SystemFolderReason));
            else found.Add(System.IO.Path.GetFileName(folder));
        }
        var classes = options.Classes ?? found;
        if (classes.Count < 2)
        {
            throw new DataFormatException(options.Path, $"found {found.Count} class subfolder(s) ({string.Join(", ", found)}); a classifier needs one "
                + $"subfolder per class, at least two (e.g. normal/ and pneumonia/).");
        }
        var entries = new List<ImageEntry>();
        // Folders already read, by their real path: a symbolic link back up the tree (or a second link to a class) is read once, not forever.
        var visited = new HashSet<string>(StringComparer.Ordinal) { RealPath(options.Path) };
        foreach (var name in found) visited.Add(RealPath(System.IO.Path.Combine(options.Path, name)));
        foreach (var name in found)
        {
            var index = IndexOf(classes, name);
            var folder = System.IO.Path.Combine(options.Path, name);
            foreach (var (file, problem) in FilesUnder(folder, RealPath(folder), visited))
            {
                if (problem is not null) skipped.Add(new(file, problem));
                else if (index < 0) skipped.Add(new(file, $"folder '{name}' is not among the configured classes"));
                else if (UnsupportedType(file) is { } reason) skipped.Add(new(file, reason));
                else entries.Add(new(file, [index], null, null));
            }
        }
        foreach (var file in Directory.EnumerateFiles(options.Path, "*", Listing).Order(StringComparer.Ordinal))
            skipped.Add(new(file, IsSystemName(System.IO.Path.GetFileName(file)) ? SystemFileReason : "not inside a class subfolder"));
        return new ImageCatalog(entries, skipped, classes, ["class"]);
    }

    // Every entry, hidden ones included (the report counts them); links are followed, loops cut by the visited set.
    private static readonly EnumerationOptions Listing = new() { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = false };

    private const string SystemFileReason = "hidden or system file (OS metadata)";
    private const string SystemFolderReason = "hidden or system folder (OS metadata, not a class)";

    // Hidden entries (".DS_Store", "._x.png" AppleDouble forks, ".ipynb_checkpoints") and what macOS and Windows leave in copied folders.
    private static bool IsSystemName(string name) =>
        name.StartsWith('.') || name.Equals("__MACOSX", StringComparison.OrdinalIgnoreCase) || name.Equals("Thumbs.db", StringComparison.OrdinalIgnoreCase)
        || name.Equals("ehthumbs.db", StringComparison.OrdinalIgnoreCase) || name.Equals("desktop.ini", StringComparison.OrdinalIgnoreCase)
        || name.Equals("$RECYCLE.BIN", StringComparison.OrdinalIgnoreCase) || name.Equals("System Volume Information", StringComparison.OrdinalIgnoreCase);

    private static List<(string File, string? Problem)> FilesUnder(string folder, string real, HashSet<string> visited)
    {
        string[] files, folders;
        try
        {
            files = [.. Directory.EnumerateFiles(folder, "*", Listing).Order(StringComparer.Ordinal)];
            folders = [.. Directory.EnumerateDirectories(folder, "*", Listing).Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [(folder, $"folder cannot be read ({e.Message})")];
        }
        var result = new List<(string, string?)>();
        foreach (var file in files) result.Add((file, IsSystemName(System.IO.Path.GetFileName(file)) ? SystemFileReason : null));
        foreach (var sub in folders)
        {
            var name = System.IO.Path.GetFileName(sub);
            if (IsSystemName(name))
            {
                result.Add((sub, SystemFolderReason));
                continue;
            }
            var subReal = new DirectoryInfo(sub).LinkTarget is null ? System.IO.Path.Combine(real, name) : RealPath(sub);
            if (!visited.Add(subReal)) result.Add((sub, "folder link to a folder already read (a symbolic link loop or a second path to the same images)"));
            else result.AddRange(FilesUnder(sub, subReal, visited));
        }
        return result;
    }

    // The folder's path with every symbolic link on it resolved (a loop that cannot be resolved keeps its own path: it is then read once).
    private static string RealPath(string folder)
    {
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(folder));
        var parent = System.IO.Path.GetDirectoryName(full);
        var here = parent is null ? full : System.IO.Path.Combine(RealPath(parent), System.IO.Path.GetFileName(full));
        try
        {
            return new DirectoryInfo(here).ResolveLinkTarget(returnFinalTarget: true) is { } target ? RealPath(target.FullName) : here;
        }
        catch (IOException)
        {
            return here;
        }
    }

    private static ImageCatalog ScanManifest(ImageSourceOptions options)
    {
        var path = options.Path;
        var root = options.ImageRoot ?? System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var readerOptions = new CsvReaderOptions
        {
            TrimWhitespace = true,
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Throw,
            FieldCountMismatch = CsvFieldCountHandling.Throw,
        };
        using var text = new StreamReader(path);
        using var csv = CsvReader.Create(text, readerOptions, leaveOpen: true);
        var header = csv.Headers.ToArray();
        if (header.Length == 0) throw new DataFormatException(path, "the manifest is empty; expected a header line naming its columns.");
        int Column(string name, string setting)
        {
            var i = Array.FindIndex(header, h => string.Equals(h, name, StringComparison.OrdinalIgnoreCase));
            if (i < 0)
            {
                throw new DataFormatException(path, $"has no column '{name}' ({setting}); its columns are: {string.Join(", ", header)}.");
            }
            return i;
        }
        var pathColumn = Column(options.PathColumn, "data.images.pathColumn");
        if (options.LabelColumns.Count == 0) throw new DataFormatException(path, "data.images.labelColumns is empty: name the label column(s).");
        if (options.LabelKind != ImageLabelKind.MultiLabel && options.LabelColumns.Count != 1)
        {
            throw new DataFormatException(path, $"this run's task takes one label per image, but data.images.labelColumns names {options.LabelColumns.Count} "
                + $"({string.Join(", ", options.LabelColumns)}). Name one column.");
        }
        var labelColumns = options.LabelColumns.Select(c => Column(c, "data.images.labelColumns")).ToArray();
        var splitColumn = options.SplitColumn is { } s ? Column(s, "data.images.splitColumn") : -1;
        var groupColumn = options.GroupColumn is { } g ? Column(g, "data.images.groupColumn") : -1;

        var rows = new List<(string File, string[] Labels, string? Split, string? Group, long Line)>();
        var skipped = new List<SkippedImage>();
        var rootFull = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(root)) + System.IO.Path.DirectorySeparatorChar;
        var firstLine = new Dictionary<string, (long Line, string Labels)>(StringComparer.Ordinal);
        while (Read(csv, path))
        {
            var file = csv.GetString(pathColumn);
            var line = csv.LineNumber;
            if (string.IsNullOrWhiteSpace(file))
            {
                skipped.Add(new($"{path}:{line}", "empty path"));
                continue;
            }
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, file));
            var labelText = string.Join("\u001f", labelColumns.Select(c => csv.GetString(c)));
            // A relative path that climbs out of the image folder is a manifest moved from where it was written (its paths now name other files):
            // refused. An absolute path names its file on purpose (SplitLists writes them) and is read where it is.
            if (!System.IO.Path.IsPathRooted(file) && !full.StartsWith(rootFull, StringComparison.Ordinal))
                skipped.Add(new(full, $"relative path leaves the image folder (data.images.imageRoot) (manifest line {line})"));
            else if (firstLine.TryGetValue(full, out var first))
            {
                skipped.Add(new(full, first.Labels == labelText ? $"listed again (first at manifest line {first.Line})"
                    : $"listed again with another label (first at manifest line {first.Line})"));
            }
            else if (!File.Exists(full)) skipped.Add(new(full, $"file not found (manifest line {line})"));
            else if (UnsupportedType(full) is { } reason) skipped.Add(new(full, $"{reason} (manifest line {line})"));
            else
            {
                firstLine[full] = (line, labelText);
                var split = splitColumn >= 0 ? csv.GetString(splitColumn) : null;
                if (split is not null && NormaliseSplit(split) is null)
                {
                    skipped.Add(new(full, $"split '{split}' is not train, val(idation) or test (manifest line {line})"));
                    continue;
                }
                var group = groupColumn >= 0 ? csv.GetString(groupColumn) : null;
                rows.Add((full, [.. labelColumns.Select(c => csv.GetString(c))], NormaliseSplit(split), group, line));
            }
        }

        var classes = options.LabelKind == ImageLabelKind.SingleClass ? options.Classes ?? FoundClasses(rows.Select(r => r.Labels[0])) : [];
        var entries = new List<ImageEntry>();
        foreach (var (file, labels, split, group, line) in rows)
        {
            var values = new float[labels.Length];
            string? problem = null;
            for (var i = 0; i < labels.Length && problem is null; i++)
            {
                problem = options.LabelKind switch
                {
                    ImageLabelKind.SingleClass => IndexOf(classes, labels[i]) is var k and >= 0 ? Set(values, i, k) : $"label '{labels[i]}' is not a class "
                        + $"({string.Join(", ", classes)})",
                    ImageLabelKind.MultiLabel => ParseFlag(labels[i]) is { } flag ? Set(values, i, flag) : $"label '{labels[i]}' in column "
                        + $"'{options.LabelColumns[i]}' is not 0/1 (or true/false, yes/no)",
                    _ => double.TryParse(labels[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
                        ? Set(values, i, (float)v)
                        : $"value '{labels[i]}' is not a number",
                };
            }
            if (problem is null) entries.Add(new ImageEntry(file, values, split, string.IsNullOrWhiteSpace(group) ? null : group));
            else skipped.Add(new(file, $"{problem} (manifest line {line})"));
        }
        return new ImageCatalog(entries, skipped, classes, options.LabelColumns);
    }

    private static string? Set(float[] values, int i, float value)
    {
        values[i] = value;
        return null;
    }

    // Binary labels written as booleans (True/False, yes/no) map to the classes 0 and 1; other names sort.
    private static IReadOnlyList<string> FoundClasses(IEnumerable<string> labels)
    {
        var names = labels.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (names.Count <= 2 && names.All(n => ParseFlag(n) is not null)) return ["0", "1"];
        if (names.All(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            var count = names.Max(n => int.Parse(n, CultureInfo.InvariantCulture)) + 1;
            return [.. Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture))];
        }
        return [.. names.Order(StringComparer.Ordinal)];
    }

    private static int IndexOf(IReadOnlyList<string> classes, string label)
    {
        for (var i = 0; i < classes.Count; i++)
            if (string.Equals(classes[i], label, StringComparison.OrdinalIgnoreCase)) return i;
        // "True"/"yes" name class 1 of a 0/1 class list.
        if (classes is ["0", "1"] && ParseFlag(label) is { } flag) return (int)flag;
        return -1;
    }

    private static float? ParseFlag(string text) => text.Trim().ToLowerInvariant() switch
    {
        "1" or "1.0" or "true" or "yes" or "y" => 1f,
        "0" or "0.0" or "false" or "no" or "n" => 0f,
        _ => null,
    };

    // Null for a file to decode: an image extension (any case), or DICOM magic in a file without a lettered extension (PACS exports name
    // files by UID: "1.2.840.113619.2.55").
    private static string? UnsupportedType(string file)
    {
        var extension = System.IO.Path.GetExtension(file);
        if (Extensions.Contains(extension.ToLowerInvariant(), StringComparer.Ordinal)) return null;
        var unsupported = $"unsupported file type '{extension}'";
        if (extension.Any(char.IsLetter)) return unsupported;
        Span<byte> head = stackalloc byte[132];
        try
        {
            // Not opened when empty: a named pipe reports no size, and opening it would wait for a writer.
            if (new FileInfo(file).Length == 0) return unsupported;
            using var stream = File.OpenRead(file);
            return stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && DicomImageDecoder.IsDicom(head) ? null : unsupported;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot be read ({e.Message})";
        }
    }

    private static bool Read(CsvReader csv, string source)
    {
        try
        {
            return csv.Read();
        }
        catch (CsvFormatException e)
        {
            throw new DataFormatException(source, string.Create(CultureInfo.InvariantCulture,
                $"manifest line {e.LineNumber} is malformed (a different number of fields than the header, or an unclosed quote). Fix that line."), e);
        }
    }
}
