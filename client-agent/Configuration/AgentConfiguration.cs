using System.Text.Json.Serialization;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.ClientAgent.Configuration;

/// <summary>One hospital's agent configuration (docs/agent.md, "Configuration"): who it is, which run, where storage, key, data and state are.</summary>
public sealed record AgentConfiguration
{
    public const int CurrentVersion = 1;

    [JsonPropertyName("v")] public int Version { get; init; } = CurrentVersion;
    public required string HospitalId { get; init; }
    public required string RunId { get; init; }
    public required StorageSettings Storage { get; init; }
    public required KeySettings Key { get; init; }
    public required DataSettings Data { get; init; }
    /// <summary>Folder for local state (weights, optimizer, cursor, pending message); relative paths are relative to the configuration file.</summary>
    public required string StateFolder { get; init; }
    public TimeoutSettings Timeouts { get; init; } = new();
    /// <summary>The consortium secret file the hospitals share at onboarding (never the function); relative to the configuration file.</summary>
    public string? ConsortiumSecretFile { get; init; }
    /// <summary>What this hospital accepts and spends: its floor, its epsilon budget, the bound on the gradients it applies (docs/privacy.md).</summary>
    public AgentPrivacySettings Privacy { get; init; } = new();
}

/// <summary>The hospital's own privacy settings, which the operator's manifest cannot lower.</summary>
public sealed record AgentPrivacySettings
{
    /// <summary>Largest epsilon this hospital spends on the run; the agent stops before a release would exceed it. Null: no budget.</summary>
    public double? MaxEpsilon { get; init; }

    /// <summary>Delta of the (epsilon, delta) guarantee; null: 1 / N for the hospital's N samples.</summary>
    public double? Delta { get; init; }

    /// <summary>The least protection a manifest must give (modes, cut depth, noise, NoPeek, label defence).</summary>
    public PrivacyFloor Floor { get; init; } = PrivacyFloor.Recommended;

    /// <summary>The bound on the per-sample gradients from the server that the client layer applies.</summary>
    public GradientBoundSettings Gradients { get; init; } = new();
}

/// <summary>
/// One of: a connection string (development, Azurite); the hospital's SAS URIs (container, features queue, reply queue);
/// or a Microsoft Entra identity (<see cref="Identity"/>) with roles scoped to its container and queues (docs/deploy.md).
/// </summary>
public sealed record StorageSettings
{
    public string? ConnectionString { get; init; }
    /// <summary>Identity-based access: the storage account, and the identity the hospital signs in with.</summary>
    public IdentitySettings? Identity { get; init; }
    /// <summary>`https://&lt;account&gt;.blob.../h-&lt;hospital&gt;?&lt;sas&gt;`.</summary>
    public string? ContainerUri { get; init; }
    /// <summary>`https://&lt;account&gt;.queue.../features?&lt;sas&gt;` (add permission).</summary>
    public string? FeaturesQueueUri { get; init; }
    /// <summary>`https://&lt;account&gt;.queue.../replies-&lt;hospital&gt;?&lt;sas&gt;` (read and process permissions).</summary>
    public string? RepliesQueueUri { get; init; }
}

/// <summary>
/// A Microsoft Entra identity for storage: a service principal with a certificate whose private key never left the
/// hospital (tenantId, clientId, certificatePath), or, with only accountName, the machine's managed identity or
/// developer sign-in (DefaultAzureCredential).
/// </summary>
public sealed record IdentitySettings
{
    public required string AccountName { get; init; }
    public string? BlobServiceUri { get; init; }
    public string? QueueServiceUri { get; init; }
    public string? TenantId { get; init; }
    public string? ClientId { get; init; }
    /// <summary>PEM or PFX file holding the certificate and its private key (owner-only).</summary>
    public string? CertificatePath { get; init; }
}

/// <summary>The hospital key: the local key store folder and the key id frames are sealed under.</summary>
public sealed record KeySettings
{
    public required string Directory { get; init; }
    public required string KeyId { get; init; }
}

/// <summary>Kinds of local data set the agent reads.</summary>
public static class DataKinds
{
    public const string ImagesNpz = "images-npz";
    public const string TabularCsv = "tabular-csv";
    /// <summary>PNG, JPEG or DICOM files: a folder of class subfolders, or a CSV/TSV manifest (<see cref="ImageSettings"/>).</summary>
    public const string Images = "images";
}

/// <summary>The local data set and how this hospital's share of it is chosen.</summary>
public sealed record DataSettings
{
    public required string Path { get; init; }
    /// <summary><see cref="DataKinds.ImagesNpz"/> or <see cref="DataKinds.TabularCsv"/>.</summary>
    public required string Kind { get; init; }
    /// <summary>CSV only: which columns are features and target.</summary>
    public ColumnSettings? Columns { get; init; }
    /// <summary>Images only: how a manifest is read, the class names, the DICOM window, the cache.</summary>
    public ImageSettings? Images { get; init; }
    /// <summary>
    /// Images only: random flips, small rotations and shifts of training batches (core/Data AugmentationSettings); null (the default) or
    /// <c>enabled: false</c>: none. Validation, evaluation and audit images are never augmented.
    /// </summary>
    public AugmentationSettings? Augmentation { get; init; }
    public PartitionSettings Partition { get; init; } = new();
}

/// <summary>CSV column mapping (core/Data ColumnMapping).</summary>
public sealed record ColumnSettings
{
    public required IReadOnlyList<string> Features { get; init; }
    public required string Target { get; init; }
    public Dictionary<string, Dictionary<string, double>> Categorical { get; init; } = [];
    public Dictionary<string, RangeSettings> Ranges { get; init; } = [];
    public bool UseDefaultRanges { get; init; } = true;
}

/// <summary>
/// An image source (docs/agent.md, "Images and DICOM"): data.path is a folder with a subfolder per class, or a CSV/TSV
/// manifest with these columns.
/// </summary>
public sealed record ImageSettings
{
    /// <summary>Manifest: the column holding each image's path (relative to <see cref="ImageRoot"/>) or file name.</summary>
    public string PathColumn { get; init; } = "path";
    /// <summary>Manifest: the label column(s): one class or value column, or one 0/1 column per label (multi-label).</summary>
    public IReadOnlyList<string> LabelColumns { get; init; } = ["label"];
    /// <summary>Manifest: a column saying train, val or test (optional; without it the split is drawn by data.partition).</summary>
    public string? SplitColumn { get; init; }
    /// <summary>Manifest: the patient (or study) column; a patient's images never straddle train, validation and test.</summary>
    public string? GroupColumn { get; init; }
    /// <summary>Manifest: the folder its paths are relative to (default: the manifest's folder); relative to the configuration file.</summary>
    public string? ImageRoot { get; init; }
    /// <summary>Class names in index order, the same at every hospital of a run (binary: the negative class first).</summary>
    public IReadOnlyList<string>? Classes { get; init; }
    /// <summary>DICOM window "center:width" (e.g. "40:400"); default: each file's own window.</summary>
    public string? Window { get; init; }
    /// <summary>Megabytes of decoded, resized images kept in memory.</summary>
    public int CacheMegabytes { get; init; } = 256;
}

/// <summary>A plausible range of one column.</summary>
public sealed record RangeSettings(double Min, double Max);

/// <summary>
/// The paper's split: seeded shuffle, validation and test held out, the rest shared by weight; this hospital takes share <see cref="Index"/>.
/// </summary>
public sealed record PartitionSettings
{
    public long Seed { get; init; }
    public IReadOnlyList<double> Weights { get; init; } = [1.0];
    public int Index { get; init; }
    public double ValidationFraction { get; init; } = 0.1;
    public double TestFraction { get; init; } = 0.1;
    /// <summary>
    /// Images only: keep the archive's own val and test splits (MedMNIST's official ones) and share only its train split by weight; the fractions are then
    /// unused.
    /// </summary>
    public bool PredefinedSplits { get; init; }
}

/// <summary>How long the agent waits before giving up.</summary>
public sealed record TimeoutSettings
{
    /// <summary>Seconds to wait for the function's reply to one message (while storage is reachable).</summary>
    public int ReplySeconds { get; init; } = 300;

    /// <summary>Seconds a storage outage may last before the agent stops (it resumes on the next start).</summary>
    public int StorageOutageSeconds { get; init; } = 600;
}
