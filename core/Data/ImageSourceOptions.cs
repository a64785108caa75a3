namespace SplitFunctions.Core.Data;

/// <summary>How labels are read from an image source, by the run's task.</summary>
public enum ImageLabelKind
{
    /// <summary>One class per image (binary or multi-class): a class name or index.</summary>
    SingleClass,
    /// <summary>Several 0/1 labels per image, one column each.</summary>
    MultiLabel,
    /// <summary>One number per image.</summary>
    Value,
}

/// <summary>
/// Where a hospital's images are and how they are labelled: a folder with a subfolder per class, or a CSV/TSV manifest
/// with a path column, label column(s) and optional split and patient (group) columns.
/// </summary>
public sealed record ImageSourceOptions
{
    /// <summary>A folder of class subfolders, or a .csv/.tsv manifest.</summary>
    public required string Path { get; init; }

    /// <summary>Manifest only: the folder its paths are relative to (default: the manifest's folder).</summary>
    public string? ImageRoot { get; init; }

    /// <summary>Manifest only: the column holding each image's path (relative to <see cref="ImageRoot"/>) or file name.</summary>
    public string PathColumn { get; init; } = "path";

    /// <summary>Manifest only: the label column(s): one for a class or value, one per label for multi-label.</summary>
    public IReadOnlyList<string> LabelColumns { get; init; } = ["label"];

    /// <summary>Manifest only: a column saying train, val(idation) or test; without it the split is drawn by seed.</summary>
    public string? SplitColumn { get; init; }

    /// <summary>Manifest only: a patient (or study) column; a patient's images always fall in the same split.</summary>
    public string? GroupColumn { get; init; }

    /// <summary>Class names in index order (binary: negative first). Null: the names found, sorted; give them so every hospital numbers alike.</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>DICOM window for every file; null: the file's own window, else the image's range.</summary>
    public DicomWindow? Window { get; init; }

    public ImageLabelKind LabelKind { get; init; } = ImageLabelKind.SingleClass;

    /// <summary>Decoded, resized images kept in memory (megabytes); older ones are decoded again when needed.</summary>
    public int CacheMegabytes { get; init; } = 256;

    public bool IsManifest => File.Exists(Path);
}
