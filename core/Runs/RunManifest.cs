using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Models;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Runs;

/// <summary>How the hospitals and the function cooperate (ARCHITECTURE.md, "Two training modes").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TrainingMode>))]
public enum TrainingMode
{
    /// <summary>A round trip per batch; every hospital trains its own client layer.</summary>
    Vanilla,

    /// <summary>The paper's Algorithm 1: fixed client layer, features uploaded once, the server trains E epochs on the union.</summary>
    Temporal,

    /// <summary>U-shaped: the head and the tail (with the loss) at the hospital, the middle at the server; labels never leave the hospital.</summary>
    UShaped,
}

/// <summary>Optional privacy settings applied at the hospital.</summary>
public sealed record PrivacySettings
{
    /// <summary>Standard deviation of Gaussian noise added to the activations before upload; 0 turns it off.</summary>
    public double NoiseSigma { get; init; }
}

/// <summary>
/// Regression targets travel as (y - Offset) / Scale so every hospital sends labels on the same scale; predictions
/// come back on that scale and the hospital maps them back. Fixed per run (e.g. clinical reference values), never
/// computed from one hospital's data.
/// </summary>
public sealed record TargetScaling(double Offset, double Scale)
{
    public static TargetScaling Identity { get; } = new(0, 1);

    public float ToWire(float y) => (float)((y - Offset) / Scale);

    public float FromWire(float y) => (float)(y * Scale + Offset);
}

/// <summary>
/// The one document that defines a run (stored at `runs/&lt;run&gt;/manifest.json` and copied to each hospital's
/// container). Agents and the function read it; nothing is implied: every setting is written out.
/// </summary>
public sealed record RunManifest
{
    /// <summary>2: weights and optimizer state are PyTorch 2.x state dicts written by TorchSharp (1: the retired native engine).</summary>
    public const int CurrentVersion = 2;

    /// <summary>Largest manifest accepted: manifests are small, anything bigger is not one.</summary>
    public const int MaxBytes = 64 * 1024;

    [JsonPropertyName("v")] public int Version { get; init; } = CurrentVersion;
    public required string RunId { get; init; }
    public required TaskKind Task { get; init; }
    public required string Model { get; init; }
    /// <summary>
    /// Per-sample input shape of the network: for a tabular model the number of mapped features after categorical
    /// encoding (the catalog entry's first layer takes that width), for an image model the catalog's input.
    /// </summary>
    public required long[] InputShape { get; init; }
    /// <summary>Human-readable cut point, checked against the catalog (the client part's output shape).</summary>
    public required long[] CutShape { get; init; }
    public required TrainingMode Mode { get; init; }
    public required LossKind Loss { get; init; }
    public required OptimizerSettings Optimizer { get; init; }
    /// <summary>Optimizer of the client layer at each hospital (vanilla mode).</summary>
    public required OptimizerSettings ClientOptimizer { get; init; }
    public required int BatchSize { get; init; }
    public required int Epochs { get; init; }
    public required ulong Seed { get; init; }
    /// <summary>Element type of feature and gradient frames on the wire: Float32, Float16 or BFloat16.</summary>
    public required ElementType FeatureType { get; init; }
    public required IReadOnlyList<string> Hospitals { get; init; }
    public PrivacySettings Privacy { get; init; } = new();

    /// <summary>U-shaped mode's settings (second-leg timeout, label-leakage defence); ignored by the other modes.</summary>
    public UShapedSettings UShaped { get; init; } = new();

    /// <summary>Scaling of regression targets on the wire (classification labels are sent as 0/1).</summary>
    public TargetScaling TargetScaling { get; init; } = TargetScaling.Identity;

    /// <summary>The engine that created the run (e.g. "TorchSharp 0.107.0 / libtorch 2.10.0"), for the record.</summary>
    public string Engine { get; init; } = TorchRuntime.EngineVersion;

    /// <summary>The catalog entry this run trains, for this run's input shape.</summary>
    [JsonIgnore]
    public ModelDefinition ModelDefinition => ModelCatalog.Get(Model).WithInputShape(InputShape);

    /// <summary>A manifest with the catalog's settings for <paramref name="model"/>; callers override what they need.</summary>
    public static RunManifest ForModel(string runId, ModelDefinition model, TrainingMode mode, IReadOnlyList<string> hospitals, ulong seed)
    {
        using var client = model.BuildClient();
        return new RunManifest
        {
            RunId = runId,
            Task = model.Task,
            Model = model.Name,
            InputShape = model.InputShape,
            CutShape = client.OutputShape,
            Mode = mode,
            Loss = model.Loss,
            Optimizer = model.Optimizer,
            ClientOptimizer = model.Optimizer,
            BatchSize = model.BatchSize,
            Epochs = model.Epochs,
            Seed = seed,
            FeatureType = ElementType.Float32,
            Hospitals = hospitals,
        };
    }

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Options);

    /// <summary>Parses and validates a manifest; every problem is a <see cref="RunManifestException"/> naming the field.</summary>
    public static RunManifest Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxBytes)
        {
            throw new RunManifestException($"manifest is {json.Length} bytes; at most {MaxBytes} are accepted");
        }
        RunManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<RunManifest>(json, Options);
        }
        catch (JsonException e)
        {
            throw new RunManifestException($"manifest is not valid JSON for version {CurrentVersion}: {e.Message}", e);
        }
        if (manifest is null) throw new RunManifestException("manifest is empty (JSON null)");
        manifest.Validate();
        return manifest;
    }

    /// <summary>Checks every field and the consistency with the model catalog.</summary>
    public void Validate()
    {
        if (Version != CurrentVersion)
        {
            throw new RunManifestException($"manifest version {Version} is not supported (this build reads version {CurrentVersion}); upgrade the agent and the function together");
        }
        if (!StorageNames.IsValidRunId(RunId)) throw new RunManifestException($"runId '{RunId}' is invalid: use 1-63 lowercase letters, digits and single hyphens");
        ModelDefinition model;
        try
        {
            model = ModelCatalog.Get(Model);
        }
        catch (UnknownModelException e)
        {
            throw new RunManifestException($"model: {e.Message}", e);
        }
        if (InputShape is null || InputShape.Length == 0) throw new RunManifestException($"inputShape is missing: write the network's per-sample input, e.g. [{string.Join(",", model.InputShape)}] for '{Model}'");
        try
        {
            model = model.WithInputShape(InputShape);
        }
        catch (ArgumentException e)
        {
            throw new RunManifestException($"inputShape [{string.Join(",", InputShape)}] does not fit: {e.Message.Split(" (Parameter", 2)[0]}", e);
        }
        if (Task != model.Task) throw new RunManifestException($"task {Task} does not match model '{Model}', which is a {model.Task} model");
        var expectedLoss = model.Task == TaskKind.Classification
            ? Loss is LossKind.BinaryCrossEntropy
            : Loss is LossKind.MeanSquaredError;
        if (!expectedLoss) throw new RunManifestException($"loss {Loss} does not fit model '{Model}' (its catalog loss is {model.Loss})");
        if (BatchSize is < 1 or > 65536) throw new RunManifestException($"batchSize {BatchSize} is out of range 1..65536");
        if (Epochs is < 1 or > 100000) throw new RunManifestException($"epochs {Epochs} is out of range 1..100000");
        if (FeatureType is not (ElementType.Float32 or ElementType.Float16 or ElementType.BFloat16))
        {
            throw new RunManifestException($"featureType {FeatureType} cannot travel on the wire: use Float32, Float16 or BFloat16");
        }
        ValidateOptimizer("optimizer", Optimizer);
        ValidateOptimizer("clientOptimizer", ClientOptimizer);
        if (Hospitals is null || Hospitals.Count == 0) throw new RunManifestException("hospitals is empty: list at least one hospital id");
        foreach (var hospital in Hospitals)
        {
            if (!StorageNames.IsValidHospitalId(hospital)) throw new RunManifestException($"hospital id '{hospital}' is invalid: use 1-{StorageNames.MaxHospitalIdLength} lowercase letters, digits and single hyphens");
        }
        if (Hospitals.Distinct(StringComparer.Ordinal).Count() != Hospitals.Count) throw new RunManifestException("hospitals lists the same id twice");
        if (Privacy is null || !double.IsFinite(Privacy.NoiseSigma) || Privacy.NoiseSigma < 0)
        {
            throw new RunManifestException("privacy.noiseSigma must be a finite number >= 0");
        }
        UShaped?.Validate();
        if (UShaped is null) throw new RunManifestException("uShaped is null: leave it out for the defaults");
        if (TargetScaling is null || !double.IsFinite(TargetScaling.Offset) || !double.IsFinite(TargetScaling.Scale) || TargetScaling.Scale <= 0)
        {
            throw new RunManifestException("targetScaling needs a finite offset and a positive scale");
        }
        long[] cut;
        using (var client = model.BuildClient()) cut = client.OutputShape;
        if (CutShape is null || !CutShape.SequenceEqual(cut))
        {
            throw new RunManifestException($"cutShape [{string.Join(",", CutShape ?? [])}] does not match model '{Model}', whose client part outputs [{string.Join(",", cut)}]");
        }
    }

    private static void ValidateOptimizer(string field, OptimizerSettings? settings)
    {
        if (settings is null) throw new RunManifestException($"{field} is missing");
        if (!double.IsFinite(settings.LearningRate) || settings.LearningRate <= 0 || settings.LearningRate > 10)
        {
            throw new RunManifestException($"{field}.learningRate {settings.LearningRate} must be in (0, 10]");
        }
        if (settings.Momentum < 0 || settings.WeightDecay < 0) throw new RunManifestException($"{field}: momentum and weightDecay must be >= 0");
    }

    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter() },
        MaxDepth = 8,
    };
}

/// <summary>A run manifest is missing, malformed or inconsistent with the model catalog.</summary>
public sealed class RunManifestException : Exception
{
    public RunManifestException(string message) : base("run manifest: " + message) { }

    public RunManifestException(string message, Exception inner) : base("run manifest: " + message, inner) { }
}
