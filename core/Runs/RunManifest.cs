using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Runs;

/// <summary>How the hospitals and the function cooperate (shared design card, "Two training modes").</summary>
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

/// <summary>Privacy settings applied at the hospital (docs/privacy.md).</summary>
public sealed record PrivacySettings
{
    /// <summary>
    /// Gaussian noise (cryptographically secure, fresh per value) added to the activations before upload; 0 turns it off. With
    /// <see cref="ClipNorm"/> it is the noise multiplier (standard deviation sigma x C); without, the absolute standard deviation.
    /// </summary>
    public double NoiseSigma { get; init; }

    /// <summary>
    /// C: each sample's cut activations (flattened) are clipped to L2 norm C before the noise, so every release is a Gaussian
    /// mechanism and the hospital can state epsilon (docs/privacy.md); 0 leaves them unbounded (no guarantee).
    /// </summary>
    public double ClipNorm { get; init; }

    /// <summary>NoPeek weight: the client layer also minimises alpha * DCor(input, activations) (vanilla mode); 0 turns it off.</summary>
    public double NoPeekAlpha { get; init; }

    /// <summary>
    /// Attacker-aware training (ResSFL): the hospital trains a simulated inversion decoder alongside its client layer on the activations
    /// as it releases them, and the client objective subtracts this weight times the decoder's reconstruction error (vanilla mode,
    /// hospital-side only); 0 turns it off.
    /// </summary>
    public double AttackerAwareWeight { get; init; }

    /// <summary>
    /// Hex HMAC-SHA256 commitment to the consortium secret the hospitals hold (ConsortiumSecret.Commitment); null: no secret, initial client weights from <see
    /// cref="RunManifest.Seed"/>.
    /// </summary>
    public string? ConsortiumCommitment { get; init; }
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
    /// <summary>
    /// 3: the network itself is written out (<see cref="Layers"/>, the cut marked), so a consortium's own network trains like a preset.
    /// (2: catalog models by name only; 1: the retired native engine.)
    /// </summary>
    public const int CurrentVersion = 3;

    /// <summary>Largest manifest accepted: manifests are small (VGG19's layers are under 8 KiB), anything bigger is not one.</summary>
    public const int MaxBytes = 256 * 1024;

    [JsonPropertyName("v")] public int Version { get; init; } = CurrentVersion;
    public required string RunId { get; init; }
    public required TaskKind Task { get; init; }
    /// <summary>The network's name (a catalog preset's or a model file's), for the record: <see cref="Layers"/> is the network.</summary>
    public required string Model { get; init; }
    /// <summary>
    /// Per-sample input shape of the network: for a tabular model the number of mapped features after categorical
    /// encoding, for an image model the network's input (images are resized to it).
    /// </summary>
    public required long[] InputShape { get; init; }
    /// <summary>The network's layers in order, the cut marked: the agents build the part before it, the function the part after.</summary>
    public required SplitLayers Layers { get; init; }
    /// <summary>Human-readable cut point, checked against <see cref="Layers"/> (the client part's output shape).</summary>
    public required long[] CutShape { get; init; }
    public required TrainingMode Mode { get; init; }
    public required LossKind Loss { get; init; }
    public required OptimizerSettings Optimizer { get; init; }
    /// <summary>Optimizer of the client layer at each hospital (vanilla mode).</summary>
    public required OptimizerSettings ClientOptimizer { get; init; }
    public required int BatchSize { get; init; }
    public required int Epochs { get; init; }
    public required ulong Seed { get; init; }
    /// <summary>Element type of feature and gradient frames on the wire: Float32, Float16, BFloat16 or QInt8 (int8, a scale per sample).</summary>
    public required ElementType FeatureType { get; init; }
    public required IReadOnlyList<string> Hospitals { get; init; }
    public PrivacySettings Privacy { get; init; } = new();

    /// <summary>U-shaped mode's settings (second-leg timeout, label-leakage defence); ignored by the other modes.</summary>
    public UShapedSettings UShaped { get; init; } = new();

    /// <summary>Scaling of regression targets on the wire (classification labels are sent as 0/1).</summary>
    public TargetScaling TargetScaling { get; init; } = TargetScaling.Identity;

    /// <summary>Largest <see cref="PipelineDepth"/>: the function tells a late pipelined step from an applied one within this many sequences.</summary>
    public const int MaxPipelineDepth = 16;

    /// <summary>
    /// Vanilla mode: training batches a hospital keeps in flight at once (docs/agent.md, "Pipelined training"). Null or 1:
    /// synchronous, one batch per round trip; 2..<see cref="MaxPipelineDepth"/>: that many, each backward exact for its own
    /// forward (weight stashing), applied up to depth - 1 steps late; 0: the agent chooses from the round trip and step
    /// time it measures. Left out of the manifest when null, so synchronous runs' manifests are unchanged.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? PipelineDepth { get; init; }

    /// <summary>The engine that created the run (e.g. "TorchSharp 0.107.0 / libtorch 2.10.0"), for the record.</summary>
    public string Engine { get; init; } = TorchRuntime.EngineVersion;

    /// <summary>The network this run trains, as the manifest describes it.</summary>
    [JsonIgnore]
    public ModelDefinition ModelDefinition =>
        new(Model, "", Task, InputShape, Layers.Client, Layers.Server, Loss, BatchSize, Epochs, Optimizer) { TailLayers = Layers.Tail };

    /// <summary>A manifest with <paramref name="model"/>'s network and settings (a preset or a model file's); callers override what they need.</summary>
    public static RunManifest ForModel(string runId, ModelDefinition model, TrainingMode mode, IReadOnlyList<string> hospitals, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new RunManifest
        {
            RunId = runId,
            Task = model.Task,
            Model = model.Name,
            InputShape = model.InputShape,
            Layers = model.Layers,
            CutShape = model.CutShape,
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
        RequireVersion(json);
        RunManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<RunManifest>(json, Options);
        }
        catch (JsonException e)
        {
            throw new RunManifestException($"manifest is not valid JSON for version {CurrentVersion}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        catch (ModelDefinitionException e)
        {
            throw new RunManifestException(e.Message, e);
        }
        if (manifest is null) throw new RunManifestException("manifest is empty (JSON null)");
        manifest.Validate();
        return manifest;
    }

    // A manifest of another version is refused by its version before its fields are read (version 2 has no layers).
    private static void RequireVersion(ReadOnlySpan<byte> json)
    {
        int? version = null;
        try
        {
            using var document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = Options.MaxDepth });
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("v", out var v)
                && v.TryGetInt32(out var number)) version = number;
        }
        catch (JsonException)
        {
            return; // malformed: the deserializer names where
        }
        if (version is { } other && other != CurrentVersion) throw VersionNotSupported(other);
    }

    private static RunManifestException VersionNotSupported(int version) =>
        new($"manifest version {version} is not supported (this build reads version {CurrentVersion}); upgrade the agent and the function together");

    /// <summary>Checks every field and that the network it describes trains (<see cref="ModelDefinition.Validate"/>).</summary>
    public void Validate()
    {
        if (Version != CurrentVersion) throw VersionNotSupported(Version);
        if (!StorageNames.IsValidRunId(RunId)) throw new RunManifestException($"runId '{RunId}' is invalid: use 1-63 lowercase letters, digits and single "
            + $"hyphens");
        if (string.IsNullOrWhiteSpace(Model) || Model.Length > 64) throw new RunManifestException("model must name the network (1-64 characters)");
        if (InputShape is null || InputShape.Length == 0) throw new RunManifestException("inputShape is missing: write the network's per-sample input, e.g. "
            + "[1,28,28] or [7]");
        if (Layers is null) throw new RunManifestException("layers is missing: write the network's layers with the cut marked");
        if (Layers.Tail.Count > 0) throw new RunManifestException("layers marks a tail (a U-shaped split); this build trains the two-part split only: remove "
            + "the \"tail\" marker");
        if (BatchSize is < 1 or > 65536) throw new RunManifestException($"batchSize {BatchSize} is out of range 1..65536");
        if (Epochs is < 1 or > 100000) throw new RunManifestException($"epochs {Epochs} is out of range 1..100000");
        if (PipelineDepth is < 0 or > MaxPipelineDepth)
        {
            throw new RunManifestException($"pipelineDepth {PipelineDepth} is out of range 0..{MaxPipelineDepth} (1: synchronous, 0: the agent chooses)");
        }
        if (PipelineDepth is not (null or 1) && Mode != TrainingMode.Vanilla)
        {
            throw new RunManifestException($"pipelineDepth {PipelineDepth} applies to vanilla runs only; this run is {Mode}: leave it out");
        }
        if (PipelineDepth is not (null or 1) && Privacy.AttackerAwareWeight > 0)
        {
            // The stashed backward of a pipelined step carries NoPeek but not the simulated decoder's penalty.
            throw new RunManifestException($"pipelineDepth {PipelineDepth} does not combine with privacy.attackerAwareWeight: train synchronously "
                + "(pipelineDepth 1) or set the weight to 0");
        }
        if (!TensorFrame.IsWireType(FeatureType))
        {
            throw new RunManifestException($"featureType {FeatureType} cannot travel on the wire: use Float32, Float16, BFloat16 or QInt8");
        }
        ValidateOptimizer("optimizer", Optimizer);
        ValidateOptimizer("clientOptimizer", ClientOptimizer);
        var model = ModelDefinition;
        long[] cut;
        try
        {
            cut = model.Validate().Cut;
        }
        catch (ModelDefinitionException e)
        {
            throw new RunManifestException($"network '{Model}': {e.Message}", e);
        }
        if (Hospitals is null || Hospitals.Count == 0) throw new RunManifestException("hospitals is empty: list at least one hospital id");
        foreach (var hospital in Hospitals)
        {
            if (!StorageNames.IsValidHospitalId(hospital)) throw new RunManifestException($"hospital id '{hospital}' is invalid: use "
                + $"1-{StorageNames.MaxHospitalIdLength} lowercase letters, digits and single hyphens");
        }
        if (Hospitals.Distinct(StringComparer.Ordinal).Count() != Hospitals.Count) throw new RunManifestException("hospitals lists the same id twice");
        if (Privacy is null || !double.IsFinite(Privacy.NoiseSigma) || Privacy.NoiseSigma < 0)
        {
            throw new RunManifestException("privacy.noiseSigma must be a finite number >= 0");
        }
        if (!double.IsFinite(Privacy.ClipNorm) || Privacy.ClipNorm < 0) throw new RunManifestException("privacy.clipNorm must be a finite number >= 0 "
            + "(0: no clipping)");
        if (!double.IsFinite(Privacy.NoPeekAlpha) || Privacy.NoPeekAlpha < 0) throw new RunManifestException("privacy.noPeekAlpha must be a finite number >= "
            + "0");
        if (!double.IsFinite(Privacy.AttackerAwareWeight) || Privacy.AttackerAwareWeight < 0)
            throw new RunManifestException("privacy.attackerAwareWeight must be a finite number >= 0 (0: off)");
        if (Privacy.ConsortiumCommitment is { } commitment && (commitment.Length != 64 || !commitment.All(char.IsAsciiHexDigitLower)))
        {
            throw new RunManifestException("privacy.consortiumCommitment must be 64 lowercase hex digits (the commitment `splitfn-agent init` prints)");
        }
        UShaped?.Validate();
        if (UShaped is null) throw new RunManifestException("uShaped is null: leave it out for the defaults");
        if (UShaped.Defence.MarvellPower > 0 && Loss is not (LossKind.BinaryCrossEntropy or LossKind.BinaryCrossEntropyWithLogits))
        {
            throw new RunManifestException($"uShaped.defence.marvellPower is for binary tasks (its per-class noise is defined for two classes), but "
                + $"this run's loss is {Loss}: use maxNorm, noiseMultiplier or directionNoise");
        }
        if (TargetScaling is null || !double.IsFinite(TargetScaling.Offset) || !double.IsFinite(TargetScaling.Scale) || TargetScaling.Scale <= 0)
        {
            throw new RunManifestException("targetScaling needs a finite offset and a positive scale");
        }
        if (CutShape is null || !CutShape.SequenceEqual(cut))
        {
            throw new RunManifestException($"cutShape [{string.Join(",", CutShape ?? [])}] does not match network '{Model}', whose client part outputs "
                + $"[{string.Join(",", cut)}]");
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
