using System.Globalization;
using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>
/// What a hospital's image source holds, printed at `init` and when `train` starts: images per class and split,
/// skipped files with their reasons, byte-identical images found in more than one split (public medical sets contain
/// such leaks), image sizes and file modes.
/// </summary>
public sealed record ImageDataReport
{
    public required string Source { get; init; }
    public required int Listed { get; init; }
    public required int Usable { get; init; }
    public required IReadOnlyList<SkippedImage> Skipped { get; init; }
    /// <summary>Class (or label) names, in index order.</summary>
    public required IReadOnlyList<string> Classes { get; init; }
    /// <summary>Images per split name and class index (multi-label: positives per label).</summary>
    public required IReadOnlyDictionary<string, int[]> Counts { get; init; }
    /// <summary>Sets of byte-identical files that sit in different splits.</summary>
    public required IReadOnlyList<IReadOnlyList<string>> CrossSplitDuplicates { get; init; }
    public required IReadOnlyDictionary<string, int> Modes { get; init; }
    /// <summary>One class per image: file modes per class name (a mode that follows the class is a shortcut a network could learn).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> ModesByClass { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, int>>();
    public required (int Width, int Height) Smallest { get; init; }
    public required (int Width, int Height) Largest { get; init; }

    internal static ImageDataReport Create(string source, ImageCatalog catalog, IReadOnlyList<ImageEntry> usable, IReadOnlyList<ImageFileInfo> infos,
        IReadOnlyList<SkippedImage> skipped, string[] splitOf, int[] train, int[] validation, int[] test)
    {
        var multiLabel = catalog.Classes.Count == 0;
        var names = multiLabel ? catalog.LabelNames : catalog.Classes;
        var counts = new Dictionary<string, int[]>(StringComparer.Ordinal);
        void Count(string split, IEnumerable<int> rows)
        {
            var c = new int[names.Count];
            foreach (var r in rows)
            {
                var labels = usable[r].Labels;
                if (multiLabel)
                {
                    for (var k = 0; k < labels.Length; k++) c[k] += labels[k] >= 0.5f ? 1 : 0;
                }
                else if (names.Count > 0 && (int)labels[0] is var k and >= 0 && k < c.Length)
                {
                    c[k]++;
                }
            }
            counts[split] = c;
        }
        Count("train", train);
        Count("validation", validation);
        Count("test", test);
        var others = Enumerable.Range(0, splitOf.Length).Where(i => splitOf[i] == "train (other hospitals)").ToArray();
        if (others.Length > 0) Count("train (other hospitals)", others);

        var duplicates = Enumerable.Range(0, infos.Count)
            .GroupBy(i => infos[i].Sha256, StringComparer.Ordinal)
            .Where(g => g.Select(i => splitOf.Length > i ? splitOf[i] : "").Distinct().Count() > 1)
            .Select(g => (IReadOnlyList<string>)[.. g.Select(i => $"{usable[i].Path} ({splitOf[i]})")])
            .ToList();
        var sizes = infos.Select(i => (i.Width, i.Height)).ToList();
        return new ImageDataReport
        {
            Source = source,
            Listed = catalog.Entries.Count + catalog.Skipped.Count,
            Usable = usable.Count,
            Skipped = skipped,
            Classes = names,
            Counts = counts,
            CrossSplitDuplicates = duplicates,
            Modes = infos.GroupBy(i => i.Mode, StringComparer.Ordinal).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count()),
            ModesByClass = multiLabel ? new Dictionary<string, IReadOnlyDictionary<string, int>>()
                : Enumerable.Range(0, infos.Count).Where(i => (int)usable[i].Labels[0] is var k && k >= 0 && k < names.Count)
                    .GroupBy(i => names[(int)usable[i].Labels[0]], StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, int>)g.GroupBy(i => infos[i].Mode, StringComparer.Ordinal)
                        .OrderByDescending(m => m.Count()).ToDictionary(m => m.Key, m => m.Count()), StringComparer.Ordinal),
            Smallest = sizes.Count == 0 ? (0, 0) : sizes.MinBy(s => (long)s.Width * s.Height),
            Largest = sizes.Count == 0 ? (0, 0) : sizes.MaxBy(s => (long)s.Width * s.Height),
        };
    }

    /// <summary>Skipped files per reason, most frequent first.</summary>
    public IReadOnlyList<(string Reason, int Count)> SkipReasons =>
        [.. Skipped.GroupBy(s => s.Reason.Split(" (manifest line", 2)[0], StringComparer.Ordinal).OrderByDescending(g => g.Count())
            .Select(g => (g.Key, g.Count()))];

    public override string ToString()
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.Append(inv, $"data report for {Source}: {Usable} usable image(s) of {Listed} file(s) listed, {Skipped.Count} skipped").AppendLine();
        var width = Math.Max(5, Classes.Count == 0 ? 5 : Classes.Max(c => c.Length));
        text.Append("  ").Append("split".PadRight(24)).AppendJoin(" ", Classes.Select(c => c.PadLeft(width))).AppendLine();
        foreach (var (split, c) in Counts)
            text.Append("  ").Append(split.PadRight(24)).AppendJoin(" ", c.Select(n => n.ToString(inv).PadLeft(width))).AppendLine();
        if (Usable > 0)
        {
            text.Append(inv, $"  sizes: {Smallest.Width}x{Smallest.Height} to {Largest.Width}x{Largest.Height}; modes: ")
                .AppendJoin(", ", Modes.Select(m => $"{m.Key} {m.Value}")).AppendLine();
            // A mode found in one class only tells the class by the file: say so, and that every file is converted alike.
            var telling = Modes.Keys.Where(m => ModesByClass.Count(c => c.Value.ContainsKey(m)) == 1).ToList();
            if (ModesByClass.Count > 1 && telling.Count > 0)
            {
                text.Append("  modes by class: ").AppendJoin("; ", ModesByClass.Select(c => $"{c.Key}: {string.Join(", ", c.Value.Select(m => $"{m.Key} "
                    + $"{m.Value}"))}")).AppendLine();
                text.Append(inv, $"  note: {string.Join(", ", telling.Select(m => $"{m} only in {ModesByClass.First(c => c.Value.ContainsKey(m)).Key}"))}; ")
                    .Append("every image is converted the same way (to the network's channels, grey by BT.601 luma, alpha dropped, then resized), so the "
                        + "network never sees the file's channel layout (compression artefacts remain)").AppendLine();
            }
        }
        foreach (var (reason, count) in SkipReasons) text.Append(inv, $"  skipped {count}: {reason}").AppendLine();
        foreach (var s in Skipped.Take(5)) text.Append(inv, $"    e.g. {s.Path}: {s.Reason}").AppendLine();
        if (CrossSplitDuplicates.Count > 0)
        {
            text.Append(inv, $"  WARNING: {CrossSplitDuplicates.Count} set(s) of byte-identical images sit in different splits").Append(" (a leak between "
                + "training and evaluation); remove the copies:").AppendLine();
            foreach (var set in CrossSplitDuplicates.Take(5)) text.Append("    ").AppendJoin(" = ", set).AppendLine();
        }
        return text.ToString().TrimEnd();
    }
}
