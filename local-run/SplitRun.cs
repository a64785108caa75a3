using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>One temporal epoch as the function recorded it in the run state (server side, over the union of features).</summary>
public sealed record ServerEpoch(int Epoch, double Loss, int Samples, double Seconds);

/// <summary>What one hospital reported at the end: its evaluation (computed at the hospital) and its per-epoch history.</summary>
public sealed record HospitalOutcome(string HospitalId, JsonElement? Evaluation, JsonElement? History, int TrainExitCode, int EvaluateExitCode)
{
    /// <summary>The hospital's leakage audit of its trained layer, when the run asked for one.</summary>
    public AuditSummary? Audit { get; init; }

    /// <summary>The server model that made every prediction of the hospital's evaluation, as its agent recorded it (evaluation.json).</summary>
    public ModelVersion? ScoredBy => Evaluation is { } e && e.TryGetProperty("serverModel", out var model) && model.ValueKind == JsonValueKind.Object
        ? MessageCodec.ParseModel(model.GetRawText())
        : null;
}

/// <summary>The settings of one multi-hospital split-learning run on the local system.</summary>
public sealed record SplitRunSettings
{
    public required ModelDefinition Model { get; init; }
    public required TrainingMode Mode { get; init; }
    public required string DataPath { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required long Seed { get; init; }
    public required IReadOnlyList<string> Hospitals { get; init; }
    public TargetScaling TargetScaling { get; init; } = TargetScaling.Identity;
    public string[] ExtraInitArguments { get; init; } = [];
    public int Threads { get; init; } = 1;
    /// <summary>U-shaped runs: the second-leg timeout and the hospitals' label-leakage defence.</summary>
    public UShapedSettings UShaped { get; init; } = new();
    /// <summary>Noise the hospitals add to what they send (privacy.noiseSigma; from their CSPRNG).</summary>
    public double NoiseSigma { get; init; }
    /// <summary>Per-sample clip norm C of what the hospitals send (privacy.clipNorm); with it the noise is NoiseSigma x C. 0: no clipping.</summary>
    public double ClipNorm { get; init; }

    /// <summary>Attacker-aware training's weight (privacy.attackerAwareWeight, vanilla).</summary>
    public double AttackerAwareWeight { get; init; }
    /// <summary>Most steps per attacker decoder of each hospital's leakage audit after evaluation (image models); 0: no audit.</summary>
    public int AuditSteps { get; init; }
    /// <summary>Vanilla: batches each hospital keeps in flight (manifest pipelineDepth); null: synchronous.</summary>
    public int? PipelineDepth { get; init; }
}

/// <summary>
/// One multi-hospital split-learning run end to end on real processes: provision, enroll every hospital, start the
/// function, train all hospitals concurrently, evaluate at each hospital, stop the function.
/// </summary>
public static class SplitRun
{
    public static async Task<IReadOnlyList<HospitalOutcome>> RunAsync(SplitRunSettings settings, string folder, string split, CancellationToken ct) =>
        (await RunWithServerAsync(settings, folder, split, ct).ConfigureAwait(false)).Hospitals;

    /// <summary>As <see cref="RunAsync"/>, plus the server's per-epoch record (temporal mode) read from the run's latest checkpoint.</summary>
    public static async Task<(IReadOnlyList<HospitalOutcome> Hospitals, IReadOnlyList<ServerEpoch> ServerEpochs)> RunWithServerAsync(
        SplitRunSettings settings, string folder, string split, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // Absolute: every agent runs in its own hospital folder, so paths handed to it must not depend on ours.
        folder = Path.GetFullPath(folder);
        var runId = "run-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + settings.Mode.ToString().ToLowerInvariant();
        var request = new RunRequest
        {
            RunId = runId,
            Model = settings.Model,
            Mode = settings.Mode,
            Hospitals = settings.Hospitals,
            Seed = (ulong)settings.Seed,
            Epochs = settings.Epochs,
            BatchSize = settings.BatchSize,
            LearningRate = settings.LearningRate,
            TargetScaling = settings.TargetScaling,
            UShaped = settings.UShaped,
            PipelineDepth = settings.PipelineDepth,
        };
        // The hospitals' shared secret (initial client weights): the operator and the function get only its commitment.
        Directory.CreateDirectory(folder);
        var secretPath = Path.Combine(folder, "consortium.secret");
        var secret = File.Exists(secretPath) ? ConsortiumSecret.Load(secretPath) : ConsortiumSecret.Create();
        if (!File.Exists(secretPath)) secret.Save(secretPath);
        request = request with
        {
            Privacy = request.Privacy with
            {
                ConsortiumCommitment = secret.Commitment,
                NoiseSigma = settings.NoiseSigma,
                ClipNorm = settings.ClipNorm,
                AttackerAwareWeight = settings.AttackerAwareWeight
            },
        };
        string[] initArguments = [.. settings.ExtraInitArguments, "--consortium-secret", secretPath];
        var manifest = RunCreation.BuildManifest(request);
        await using var system = await LocalSystem.StartAsync(folder, ct).ConfigureAwait(false);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, system.Cancelled);
        var token = linked.Token;
        Console.WriteLine($"run {runId}: {manifest.Model} ({manifest.Mode}), {manifest.Epochs} epochs, batch {manifest.BatchSize}, hospitals "
            + $"{string.Join(", ", manifest.Hospitals)}; Azurite on ports {system.Azurite.BlobPort}/{system.Azurite.QueuePort}");
        // The operator's steps, with the operator tool's code: onboard every hospital, then create the run.
        foreach (var hospital in settings.Hospitals) await system.OnboardAsync(hospital, token).ConfigureAwait(false);
        await system.CreateRunAsync(request, token).ConfigureAwait(false);
        File.WriteAllBytes(Path.Combine(folder, "manifest.json"), manifest.ToJson());

        var weights = ImageStudy.HospitalWeights(settings.Hospitals.Count);
        var enrolled = new List<EnrolledHospital>();
        for (var i = 0; i < settings.Hospitals.Count; i++)
        {
            enrolled.Add(await system.EnrollAsync(runId,
                new HospitalShare(settings.Hospitals[i], i, weights, settings.Seed, settings.DataPath, initArguments), token).ConfigureAwait(false));
        }
        system.StartFunction(settings.Threads);
        var trained = await system.TrainAsync(enrolled, settings.Threads, token).ConfigureAwait(false);
        var outcomes = new List<HospitalOutcome>();
        var auditing = settings.AuditSteps > 0 && settings.Model.InputShape.Length == 3;
        var auditInputs = auditing ? AuditInputs.Arguments(settings, enrolled, runId, Path.Combine(folder, "audit-inputs")) : null;
        foreach (var hospital in enrolled)
        {
            var evaluated = trained[hospital.HospitalId] == 0 ? await system.EvaluateAsync(hospital, split, settings.Threads, token).ConfigureAwait(false) : -1;
            AuditSummary? audit = null;
            if (evaluated == 0 && auditInputs is not null
                && await system.AuditAsync(hospital, settings.AuditSteps, settings.Threads, auditInputs[hospital.HospitalId], token).ConfigureAwait(false) == 0)
            {
                audit = AuditSummary.Read(hospital.AuditFolder);
            }
            outcomes.Add(new HospitalOutcome(hospital.HospitalId, ReadJson(hospital.EvaluationPath(runId)), ReadJson(hospital.HistoryPath(runId)),
                trained[hospital.HospitalId], evaluated)
            { Audit = audit });
        }
        await system.StopFunctionAsync().ConfigureAwait(false);
        return (outcomes, await ServerEpochsAsync(system, runId, token).ConfigureAwait(false));
    }

    // The run state is the function's, read as its RunProgress (RunLayout.LatestCheckpoint names the newest checkpoint).
    private static async Task<IReadOnlyList<ServerEpoch>> ServerEpochsAsync(LocalSystem system, string runId, CancellationToken ct)
    {
        var runs = system.Azurite.Connection.GetBlobContainerClient(StorageNames.RunsContainer);
        try
        {
            var pointer = (await runs.GetBlobClient(RunLayout.LatestCheckpoint(runId)).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            var latest = JsonSerializer.Deserialize<LatestCheckpoint>(pointer.ToMemory().Span, RunLayout.Json)
                ?? throw new InvalidDataException("latest checkpoint pointer is JSON null");
            var content = (await runs.GetBlobClient(RunLayout.CheckpointFile(runId, latest.Number, RunLayout.StateFile)).DownloadContentAsync(ct)
                .ConfigureAwait(false)).Value.Content;
            var state = JsonSerializer.Deserialize<RunProgress>(content.ToMemory().Span, RunLayout.Json)
                ?? throw new InvalidDataException("run state is JSON null");
            return [.. state.Epochs.Select(e => new ServerEpoch(e.Epoch, e.Loss, e.Samples, e.Seconds))];
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }
    }

    private static JsonElement? ReadJson(string path) =>
        File.Exists(path) ? JsonDocument.Parse(File.ReadAllBytes(path)).RootElement.Clone() : null;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull
    };
}
