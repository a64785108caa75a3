using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>Everything a study run was asked to do; written into results.json so a number can be traced to its settings.</summary>
public sealed record StudyOptions
{
    public required string Name { get; init; }
    public required string Data { get; init; }
    public required string Model { get; init; }
    /// <summary>The model file the network comes from (--model-file) instead of the catalog; null for a preset.</summary>
    public string? ModelFile { get; init; }
    /// <summary>SHA-256 of that file, so --resume refuses a changed network.</summary>
    public string? ModelFileSha256 { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required long Seed { get; init; }
    public required int Hospitals { get; init; }
    public required IReadOnlyList<string> Arms { get; init; }
    public int? MaxSamples { get; init; }
    public ColumnMapping? Mapping { get; init; }
    /// <summary>Images: keep the archive's own val and test splits instead of pooling and re-splitting.</summary>
    public bool KeepSplits { get; init; }
    /// <summary>
    /// Images: a folder of official split lists (train*, val*, test* .txt files of image file names) for the image folder
    /// in <see cref="Data"/>; the listed validation and test images are kept, the train images shared across hospitals.
    /// </summary>
    public string? SplitLists { get; init; }
    /// <summary>Images: class names in index order (binary: negative first); null: the class subfolders' names, sorted.</summary>
    public IReadOnlyList<string>? Classes { get; init; }
    /// <summary>The manifest (path, label, split) written from <see cref="SplitLists"/> in the study folder; every arm reads it.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? ImageManifest { get; init; }
    /// <summary>The U-shaped arm's label-leakage defence at the hospitals (none by default).</summary>
    public GradientDefence UShapedDefence { get; init; } = new();
    /// <summary>Decoder steps of each hospital's leakage audit in the split-learning arms (image data); 0: no audit.</summary>
    public int AuditSteps { get; init; }
    /// <summary>The vanilla arm's batches in flight per hospital (manifest pipelineDepth); null: synchronous.</summary>
    public int? PipelineDepth { get; init; }
    /// <summary>
    /// Images: the training-batch augmentation every arm applies alike (the split arms' agents through data.augmentation, the in-process
    /// arms through the same transform); null: none. Temporal sends each image once and is never augmented.
    /// </summary>
    public AugmentationSettings? Augmentation { get; init; }
    /// <summary>Continue an earlier run of the same settings: arms already in arms/ are not run again.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Resume { get; init; }
    public string OutputFolder { get; init; } = "artifacts/experiments";
}
