using Azure;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>
/// What `run create` is asked for. The model arrives resolved (<see cref="ModelDefinition"/>): a catalog preset today;
/// a model file resolves to the same type, so the rest of run creation does not change with it.
/// </summary>
public sealed record RunRequest
{
    public required string RunId { get; init; }
    public required ModelDefinition Model { get; init; }
    public required TrainingMode Mode { get; init; }
    public required IReadOnlyList<string> Hospitals { get; init; }
    public required ulong Seed { get; init; }
    /// <summary>Null: the model's own setting.</summary>
    public int? Epochs { get; init; }
    public int? BatchSize { get; init; }
    public double? LearningRate { get; init; }
    public long[]? InputShape { get; init; }
    public ElementType FeatureType { get; init; } = DefaultFeatureType;

    /// <summary>
    /// The wire type of a run created without `--feature-type` (`run create`, `splitfn-local`'s runs): int8 with a scale
    /// per sample (issue 33), a quarter of fp32's bytes. On PneumoniaMNIST (pneumonia-cnn, vanilla, seeds 7, 8, 9) its
    /// test AUC was 0.9476 +- 0.0032 against fp32's 0.9423 +- 0.0078, within 0.01 of fp32 at every seed (-0.0010 to
    /// +0.0093; `wire` in bench/README.md). `--feature-type Float32` keeps full precision.
    /// </summary>
    public const ElementType DefaultFeatureType = ElementType.QInt8;
    public PrivacySettings Privacy { get; init; } = new();
    public TargetScaling TargetScaling { get; init; } = TargetScaling.Identity;
    public UShapedSettings UShaped { get; init; } = new();
    /// <summary>Vanilla: batches each hospital keeps in flight (manifest pipelineDepth); null: synchronous.</summary>
    public int? PipelineDepth { get; init; }
}

/// <summary>`run create`: a validated manifest, then the run's containers, queues and manifest copies (<see cref="RunProvisioner"/>).</summary>
public sealed class RunCreation(StorageConnection storage)
{
    /// <summary>The manifest the request describes, validated; nothing is written. Problems are <see cref="ConsortiumException"/>s.</summary>
    public static RunManifest BuildManifest(RunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            var model = request.InputShape is { } shape ? request.Model.WithInputShape(shape) : request.Model;
            var manifest = RunManifest.ForModel(request.RunId, model, request.Mode, request.Hospitals, request.Seed);
            var optimizer = request.LearningRate is { } lr ? manifest.Optimizer with { LearningRate = lr } : manifest.Optimizer;
            manifest = manifest with
            {
                Epochs = request.Epochs ?? manifest.Epochs,
                BatchSize = request.BatchSize ?? manifest.BatchSize,
                Optimizer = optimizer,
                ClientOptimizer = optimizer,
                FeatureType = request.FeatureType,
                Privacy = request.Privacy,
                TargetScaling = request.TargetScaling,
                UShaped = request.UShaped,
                PipelineDepth = request.PipelineDepth,
            };
            manifest.Validate();
            return manifest;
        }
        catch (RunManifestException e)
        {
            throw new ConsortiumException(ConsortiumError.Invalid, e.Message, e);
        }
        catch (ArgumentException e)
        {
            throw new ConsortiumException(ConsortiumError.Invalid, "run: " + e.Message.Split(" (Parameter", 2)[0], e);
        }
    }

    /// <summary>
    /// Validates the request, that every hospital is onboarded and not revoked, and that the run does not exist yet; then
    /// provisions it. Nothing is written when a check fails.
    /// </summary>
    public async Task<RunManifest> CreateAsync(RunRequest request, CancellationToken ct = default)
    {
        var manifest = BuildManifest(request);
        var registry = new HospitalRegistry(storage);
        foreach (var hospital in manifest.Hospitals)
        {
            var record = await registry.GetAsync(hospital, ct).ConfigureAwait(false);
            if (record is null) throw new ConsortiumException(ConsortiumError.NotFound, $"hospital '{hospital}' is not onboarded: run `hospital add "
                + $"{hospital}` first");
            if (record.IsRevoked) throw new ConsortiumException(ConsortiumError.Revoked, $"hospital '{hospital}' was revoked at {record.RevokedAt:u}: leave "
                + $"it out of --hospitals or onboard it again");
        }
        try
        {
            if (await storage.GetBlobContainerClient(StorageNames.RunsContainer).GetBlobClient(RunLayout.Manifest(manifest.RunId)).ExistsAsync(ct)
                .ConfigureAwait(false))
            {
                throw new ConsortiumException(ConsortiumError.AlreadyExists, $"run '{manifest.RunId}' exists already: choose another --run-id (a run's "
                    + $"manifest is never replaced under its state)");
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // No `runs` container yet: no run exists.
        }
        await new RunProvisioner(storage).ProvisionAsync(manifest, ct).ConfigureAwait(false);
        return manifest;
    }
}
