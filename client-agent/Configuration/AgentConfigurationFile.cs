using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Configuration;

/// <summary>
/// Reads, validates and writes the configuration file; every problem is an <see cref="ExitCode.Configuration"/> naming the field and the fix.
/// </summary>
public static class AgentConfigurationFile
{
    /// <summary>Where the agent looks when --config is not given.</summary>
    public const string DefaultFileName = "agent.json";

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Loads the file, resolves relative paths against its folder and validates every field.</summary>
    public static AgentConfiguration Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw Fail(full, "the file does not exist. Create it with `splitfn-agent init` or pass --config <file>.");
        }
        AgentConfiguration? config;
        try
        {
            using var stream = File.OpenRead(full);
            config = JsonSerializer.Deserialize<AgentConfiguration>(stream, Json);
        }
        catch (JsonException e)
        {
            throw Fail(full, $"it is not valid configuration JSON ({e.Message}). Compare it with the format in docs/agent.md.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail(full, $"it cannot be read ({e.Message}). Make it readable by the agent's account.", e);
        }
        if (config is null) throw Fail(full, "it is empty (JSON null).");
        var baseDir = Path.GetDirectoryName(full)!;
        config = config with
        {
            StateFolder = Resolve(baseDir, config.StateFolder),
            Key = config.Key is null ? null! : config.Key with { Directory = Resolve(baseDir, config.Key.Directory) },
            Data = config.Data is null ? null! : config.Data with
            {
                Path = Resolve(baseDir, config.Data.Path),
                Images = config.Data.Images is { ImageRoot: { } root } images ? images with { ImageRoot = Resolve(baseDir, root) } : config.Data.Images,
            },
            ConsortiumSecretFile = config.ConsortiumSecretFile is null ? null : Resolve(baseDir, config.ConsortiumSecretFile),
        };
        Validate(config, full);
        return config;
    }

    /// <summary>Writes the file readable by its owner only: it may hold SAS tokens.</summary>
    public static void Save(string path, AgentConfiguration config)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(config, Json);
        State.AtomicFile.Write(full, bytes);
    }

    /// <summary>Checks every field; <paramref name="source"/> names the file in messages.</summary>
    public static void Validate(AgentConfiguration config, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Version != AgentConfiguration.CurrentVersion)
            throw Fail(source, $"v is {config.Version}; this agent reads version {AgentConfiguration.CurrentVersion}. Re-create it with `splitfn-agent init`.");
        if (!StorageNames.IsValidHospitalId(config.HospitalId))
            throw Fail(source, $"hospitalId '{config.HospitalId}' is invalid: use 1-{StorageNames.MaxHospitalIdLength} lowercase letters, digits and single "
                + $"hyphens (the operator gives you this id).");
        if (!StorageNames.IsValidRunId(config.RunId))
            throw Fail(source, $"runId '{config.RunId}' is invalid: use 1-63 lowercase letters, digits and single hyphens (the operator gives you this id).");
        if (string.IsNullOrWhiteSpace(config.StateFolder)) throw Fail(source, "stateFolder is missing: name a folder the agent may write to.");
        ValidateStorage(config.Storage, source);
        if (config.Key is null || string.IsNullOrWhiteSpace(config.Key.Directory) || string.IsNullOrWhiteSpace(config.Key.KeyId))
            throw Fail(source, "key.directory and key.keyId are required: `splitfn-agent init` creates the key and writes both.");
        ValidateData(config.Data, source);
        if (config.Timeouts is null || config.Timeouts.ReplySeconds is < 1 or > 86400 || config.Timeouts.StorageOutageSeconds is < 1 or > 86400)
            throw Fail(source, "timeouts.replySeconds and timeouts.storageOutageSeconds must be whole seconds from 1 to 86400.");
        ValidatePrivacy(config.Privacy, source);
    }

    private static void ValidatePrivacy(AgentPrivacySettings? privacy, string source)
    {
        if (privacy is null) throw Fail(source, "privacy is null: leave it out for the recommended floor (docs/privacy.md).");
        if (privacy.MaxEpsilon is { } max && !(double.IsFinite(max) && max > 0))
            throw Fail(source, "privacy.maxEpsilon must be a positive number (or left out for no budget).");
        if (privacy.Delta is { } delta && !(delta > 0 && delta < 1)) throw Fail(source, "privacy.delta must be in (0, 1) (or left out for 1/N).");
        if (privacy.Floor?.Problem() is { } floor) throw Fail(source, floor + ".");
        if (privacy.Floor is null) throw Fail(source, "privacy.floor is null: leave it out for the recommended floor.");
        if (privacy.Gradients?.Problem() is { } gradients) throw Fail(source, gradients + ".");
        if (privacy.Gradients is null) throw Fail(source, "privacy.gradients is null: leave it out for the default bound.");
    }

    private static void ValidateStorage(StorageSettings? storage, string source)
    {
        if (storage is null) throw Fail(source, "storage is missing: give storage.connectionString, storage.identity, or storage.containerUri, "
            + "featuresQueueUri and repliesQueueUri.");
        var hasSas = storage.ContainerUri is not null || storage.FeaturesQueueUri is not null || storage.RepliesQueueUri is not null;
        if (storage.Identity is { } identity)
        {
            if (storage.ConnectionString is not null || hasSas)
                throw Fail(source, "storage has an identity and also a connectionString or SAS URIs: keep one way to sign in.");
            if (string.IsNullOrWhiteSpace(identity.AccountName)) throw Fail(source, "storage.identity.accountName is missing: the storage account's name "
                + "(from the deployment's outputs).");
            var certificateParts = new[] { identity.TenantId, identity.ClientId, identity.CertificatePath }.Count(v => !string.IsNullOrWhiteSpace(v));
            if (certificateParts is not (0 or 3))
                throw Fail(source, "storage.identity needs tenantId, clientId and certificatePath together (a service principal with a certificate), or none "
                    + "of them (managed identity / DefaultAzureCredential).");
            return;
        }
        if (storage.ConnectionString is not null && hasSas)
            throw Fail(source, "storage has both a connectionString and SAS URIs: keep one (SAS URIs in production, a connection string for development).");
        if (storage.ConnectionString is not null) return;
        foreach (var (name, value) in new[] { ("containerUri", storage.ContainerUri), ("featuresQueueUri", storage.FeaturesQueueUri),
            ("repliesQueueUri", storage.RepliesQueueUri) })
        {
            if (string.IsNullOrWhiteSpace(value))
                throw Fail(source, $"storage.{name} is missing: SAS-based storage needs containerUri, featuresQueueUri and repliesQueueUri (from the "
                    + $"operator's onboarding).");
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
                throw Fail(source, $"storage.{name} is not an absolute http(s) URI.");
            if (string.IsNullOrEmpty(uri.Query))
                throw Fail(source, $"storage.{name} has no SAS token (the part after '?'): ask the operator for the URI with its SAS.");
        }
    }

    private static void ValidateData(DataSettings? data, string source)
    {
        if (data is null || string.IsNullOrWhiteSpace(data.Path)) throw Fail(source, "data.path is missing: name the local data file.");
        if (data.Kind is not (DataKinds.ImagesNpz or DataKinds.TabularCsv or DataKinds.Images))
            throw Fail(source, $"data.kind '{data.Kind}' is unknown: use '{DataKinds.Images}', '{DataKinds.ImagesNpz}' or '{DataKinds.TabularCsv}'.");
        if (data.Images is { } images)
        {
            if (data.Kind != DataKinds.Images) throw Fail(source, $"data.images is set but data.kind is '{data.Kind}': set data.kind to '{DataKinds.Images}'.");
            if (string.IsNullOrWhiteSpace(images.PathColumn) || images.LabelColumns is not { Count: > 0 } || images.LabelColumns.Any(string.IsNullOrWhiteSpace))
                throw Fail(source, "data.images.pathColumn and data.images.labelColumns must name manifest columns.");
            if (images.Window is not null && !DicomWindow.TryParse(images.Window, out _))
                throw Fail(source, $"data.images.window '{images.Window}' is not center:width with a width of at least 1 (e.g. \"40:400\").");
            if (images.CacheMegabytes is < 0 or > 1_000_000) throw Fail(source, "data.images.cacheMegabytes must be 0 to 1000000.");
            if (images.Classes is { } classes && (classes.Count < 2 || classes.Distinct(StringComparer.OrdinalIgnoreCase).Count() != classes.Count))
                throw Fail(source, "data.images.classes must list at least two different class names.");
        }
        if (data.Augmentation is { Enabled: true } augmentation)
        {
            if (data.Kind == DataKinds.TabularCsv) throw Fail(source, "data.augmentation is for images; remove it for tabular-csv data.");
            if (augmentation.Problem() is { } problem) throw Fail(source, problem + ".");
        }
        if (data.Kind == DataKinds.TabularCsv
            && (data.Columns is null || data.Columns.Features is not { Count: > 0 } || string.IsNullOrWhiteSpace(data.Columns.Target)))
            throw Fail(source, "data.columns is required for tabular-csv: list data.columns.features and data.columns.target (see docs/agent.md).");
        var p = data.Partition;
        if (p is null) throw Fail(source, "data.partition is null: leave it out for the defaults, or give seed, weights, index, validationFraction, "
            + "testFraction.");
        if (p.Weights is not { Count: > 0 } || p.Weights.Any(w => !double.IsFinite(w) || w < 0) || p.Weights.Sum() <= 0)
            throw Fail(source, "data.partition.weights must be non-negative numbers with a positive sum, e.g. [0.7, 0.2, 0.1].");
        if (p.Index < 0 || p.Index >= p.Weights.Count)
            throw Fail(source, $"data.partition.index {p.Index} is outside 0..{p.Weights.Count - 1} (one index per weight).");
        if (p.ValidationFraction < 0 || p.TestFraction < 0 || p.ValidationFraction + p.TestFraction >= 1)
            throw Fail(source, "data.partition.validationFraction and testFraction must be >= 0 and leave rows for training (sum < 1).");
    }

    private static string Resolve(string baseDir, string? path) =>
        string.IsNullOrWhiteSpace(path) ? path! : Path.GetFullPath(Path.Combine(baseDir, path));

    private static AgentException Fail(string source, string why, Exception? inner = null) =>
        inner is null
            ? new AgentException(ExitCode.Configuration, $"configuration {source}: {why}")
            : new AgentException(ExitCode.Configuration, $"configuration {source}: {why}", inner);
}
