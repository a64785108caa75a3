using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>What <see cref="SplitLists.WriteManifest"/> wrote: rows per split, and the images and names it could not place.</summary>
public sealed record SplitManifest(string Path, IReadOnlyDictionary<string, int> PerSplit, IReadOnlyList<string> Classes, int Unlisted,
    IReadOnlyList<string> ListedButMissing)
{
    public override string ToString() =>
        $"{string.Join(", ", PerSplit.Select(s => $"{s.Value} {s.Key}"))}; {Unlisted} image(s) in no list left out; "
        + $"{ListedButMissing.Count} listed name(s) without an image";
}

/// <summary>
/// A data set's official split lists (COVID-CT's Data-split/ for instance): text files under one folder whose names
/// start with train, val(idation) or test, one image file name (or relative path) per line. They are turned into a
/// manifest with path, label and split columns, so the official validation and test images stay what they are and
/// only the training images are shared across hospitals (the agent's own split-column handling does the rest).
/// </summary>
public static class SplitLists
{
    /// <summary>Every listed file name and its split (train, validation or test), from the lists anywhere under <paramref name="folder"/>.</summary>
    public static IReadOnlyDictionary<string, string> Read(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DataFormatException(folder, "the split-list folder does not exist. Point it at the folder holding the train/val/test lists.");
        var splitOf = new Dictionary<string, string>(StringComparer.Ordinal);
        var lists = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*.txt", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (SplitOfList(System.IO.Path.GetFileName(file)) is not { } split) continue;
            lists++;
            foreach (var line in File.ReadLines(file))
            {
                var name = System.IO.Path.GetFileName(line.Trim());
                if (name.Length == 0) continue;
                if (splitOf.TryGetValue(name, out var other) && other != split)
                {
                    throw new DataFormatException(file, $"'{name}' is listed in both the {other} and the {split} lists: an image must be in one split. "
                        + "Fix the lists.");
                }
                splitOf[name] = split;
            }
        }
        if (lists == 0)
            throw new DataFormatException(folder, "holds no split list: expected .txt files named train*, val* and test*, one image file name a line.");
        return splitOf;
    }

    /// <summary>
    /// Writes a CSV manifest (path, label, split) of the images in <paramref name="imageFolder"/> (a subfolder per
    /// class) that the lists in <paramref name="listsFolder"/> name. Images are matched by file name; an image in no list
    /// is left out and counted, as is a listed name with no image.
    /// </summary>
    public static SplitManifest WriteManifest(string imageFolder, string listsFolder, string manifestPath, IReadOnlyList<string>? classes = null)
    {
        var splitOf = Read(listsFolder);
        var catalog = ImageCatalog.Scan(new ImageSourceOptions { Path = imageFolder, Classes = classes });
        var byName = catalog.Entries.GroupBy(e => System.IO.Path.GetFileName(e.Path), StringComparer.Ordinal).ToList();
        if (byName.FirstOrDefault(g => g.Count() > 1 && splitOf.ContainsKey(g.Key)) is { } clash)
        {
            throw new DataFormatException(imageFolder, $"the listed name '{clash.Key}' matches {clash.Count()} images "
                + $"({string.Join(", ", clash.Select(e => e.Path))}); the lists name files, so names must be unique.");
        }
        var perSplit = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var unlisted = 0;
        var text = new StringBuilder("path,label,split\n");
        foreach (var entry in catalog.Entries)
        {
            if (!splitOf.TryGetValue(System.IO.Path.GetFileName(entry.Path), out var split))
            {
                unlisted++;
                continue;
            }
            perSplit[split] = perSplit.GetValueOrDefault(split) + 1;
            text.Append(Quote(System.IO.Path.GetFullPath(entry.Path))).Append(',').Append(Quote(catalog.Classes[(int)entry.Labels[0]])).Append(',')
                .Append(split).Append('\n');
        }
        if (perSplit.Count == 0)
            throw new DataFormatException(listsFolder, $"none of the {splitOf.Count} listed names is an image in {imageFolder}: check both folders.");
        var names = byName.Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        var missing = splitOf.Keys.Where(n => !names.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(manifestPath))!);
        File.WriteAllText(manifestPath, text.ToString());
        return new SplitManifest(manifestPath, perSplit, catalog.Classes, unlisted, missing);
    }

    // trainCT_COVID.txt -> train, valCT_COVID.txt -> validation, testCT_COVID.txt -> test; other .txt files are not lists.
    private static string? SplitOfList(string fileName)
    {
        var name = fileName.ToLowerInvariant();
        if (name.StartsWith("train", StringComparison.Ordinal)) return "train";
        if (name.StartsWith("val", StringComparison.Ordinal)) return "validation";
        if (name.StartsWith("test", StringComparison.Ordinal)) return "test";
        return null;
    }

    private static string Quote(string field) => "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
