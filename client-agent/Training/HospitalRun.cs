using System.Security.Cryptography;
using Azure;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Data;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Storage;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The hospital's side of one run (the server's is <c>LeasedRun</c>): everything one agent start works with, opened in the order that gives the most useful
/// first error: configuration,
/// state lock, key, storage and manifest, local data, local state. Owns the state folder's lock until disposed.
/// </summary>
public sealed class HospitalRun : IDisposable
{
    private HospitalRun(AgentConfiguration config, StateFolder folder, RunManifest manifest, HospitalData data, HospitalFrameStore frames,
        StorageResilience resilience, IAgentOutput output, AgentState state, ConsortiumSecret? secret, OrderSecret orderSecret)
    {
        ConsortiumSecret = secret;
        Config = config;
        Folder = folder;
        Manifest = manifest;
        Data = data;
        Frames = frames;
        Resilience = resilience;
        Output = output;
        State = state;
        OrderSecret = orderSecret;
        // Temporal mode sends each image once (one view), so there is nothing to augment across epochs.
        Augmentation = config.Data.Augmentation is { Enabled: true } augmentation && manifest.Mode != TrainingMode.Temporal
            && !manifest.ModelDefinition.IsTabular
            ? new ImageAugmentation(augmentation, orderSecret, manifest.RunId, manifest.ModelDefinition.InputShape)
            : null;
    }

    public AgentConfiguration Config { get; }
    public StateFolder Folder { get; }
    public RunManifest Manifest { get; }
    public HospitalData Data { get; }
    public HospitalFrameStore Frames { get; }
    public StorageResilience Resilience { get; }
    public IAgentOutput Output { get; }
    public AgentState State { get; private set; }

    /// <summary>The consortium secret whose commitment the manifest carries; null for a run without one (weights from the public seed).</summary>
    public ConsortiumSecret? ConsortiumSecret { get; }

    /// <summary>This hospital's own secret for the order its samples are sent in (batches, validation, evaluation, chunks); never sent.</summary>
    public OrderSecret OrderSecret { get; }

    /// <summary>
    /// The augmentation of training batches (data.augmentation), keyed by <see cref="OrderSecret"/> so a restart repeats it and the server
    /// cannot compute it; null when off, in temporal mode and for tables.
    /// </summary>
    public ImageAugmentation? Augmentation { get; }

    /// <summary>Manifest blob in the hospital's container (the operator copies it there; `runs/` is out of the hospital's reach).</summary>
    public static string ManifestBlob(string runId) => $"manifests/{runId}.json";

    public static async Task<HospitalRun> OpenAsync(AgentConfiguration config, IAgentOutput output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(output);
        var folder = StateFolder.Open(config.StateFolder, config.RunId);
        try
        {
            var key = await LoadKeyAsync(config, cancellationToken).ConfigureAwait(false);
            var storage = HospitalStorage.Create(config);
            var resilience = new StorageResilience(TimeSpan.FromSeconds(config.Timeouts.StorageOutageSeconds), output.Warn);
            var (manifest, manifestSha) = await LoadManifestAsync(config, storage, resilience, cancellationToken).ConfigureAwait(false);
            RequireFloor(config, manifest);
            var secret = LoadConsortiumSecret(config, manifest, output);
            var data = HospitalDataLoader.Load(config.Data, manifest.ModelDefinition, manifest.TargetScaling);
            output.Info(data.Summary);
            if (data.ImageReport is { } imageReport) output.Info(imageReport.ToString());
            if (data.Report is { DroppedRows: > 0 } report) output.Warn($"data validation dropped rows:{Environment.NewLine}{report}");

            var state = folder.Load() ?? new AgentState
            {
                RunId = config.RunId,
                HospitalId = config.HospitalId,
                Model = manifest.Model,
                Mode = manifest.Mode.ToString(),
                ManifestSha256 = manifestSha,
                TrainSamples = data.Train.Count,
            };
            RequireSameRun(state, config, manifestSha, data, folder);
            var orderSecret = LoadOrderSecret(config);
            if (ReleaseBudget.PlanViolation(manifest, config.Privacy.MaxEpsilon, ReleaseBudget.Delta(config.Privacy, data)) is { } plan)
            {
                throw FloorRefusal(config, plan);
            }
            var frames = new HospitalFrameStore(storage, resilience, key, config.RunId, TimeSpan.FromSeconds(config.Timeouts.ReplySeconds), output.Warn,
                output.Info);
            return new HospitalRun(config, folder, manifest, data, frames, resilience, output, state, secret, orderSecret);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>Makes <paramref name="next"/> the durable state (the commit point of a step).</summary>
    public void Commit(AgentState next)
    {
        Folder.Save(next);
        State = next;
    }

    /// <summary>Records a rejection so the next start does not re-send blindly, and stops with its exit code.</summary>
    public async Task<Exception> RejectedAsync(ReceivedReply rejection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rejection);
        var reply = rejection.Reply;
        var kind = State.Pending?.Sequence == reply.Sequence ? State.Pending.Kind : FrameKind.Chunk;
        Commit(State with { LastRejection = new RejectionRecord(reply.Sequence, kind, reply.Reason ?? "(no reason given)", DateTimeOffset.UtcNow) });
        await Frames.DeleteAsync(rejection.Message, cancellationToken).ConfigureAwait(false);
        return RejectionError(State.LastRejection!);
    }

    public static AgentException RejectionError(RejectionRecord r) => new(ExitCode.Rejected,
        $"the function rejected {r.Kind.ToString().ToLowerInvariant()} message #{r.Sequence}: {r.Reason}. Fix the cause (data, key, configuration or run "
            + $"manifest), then run " +
        "`splitfn-agent train --retry-rejected` to send it again.");

    private static async Task<HospitalKey> LoadKeyAsync(AgentConfiguration config, CancellationToken cancellationToken)
    {
        var store = new LocalKeyStore(config.Key.Directory);
        try
        {
            var key = await store.GetKeyAsync(config.HospitalId, config.Key.KeyId, cancellationToken).ConfigureAwait(false);
            if (key.HospitalId != config.HospitalId || key.KeyId != config.Key.KeyId)
            {
                throw new AgentException(ExitCode.Key, $"key store {config.Key.Directory} returned key '{key.KeyId}' of hospital '{key.HospitalId}' for "
                    + $"'{config.Key.KeyId}' of '{config.HospitalId}'.");
            }
            return key;
        }
        catch (Exception e) when (e is ProtocolException or ArgumentException)
        {
            throw new AgentException(ExitCode.Key,
                $"key error: {e.Message}. Check key.keyId in the configuration (init printed it) and that the key file is in {config.Key.Directory}; " +
                "`splitfn-agent init` creates a new key if this hospital has none.", e);
        }
        catch (Exception e) when (e is KeyStoreException or UnauthorizedAccessException)
        {
            throw new AgentException(ExitCode.Key, $"key error: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new AgentException(ExitCode.Key, $"key error: the key in {config.Key.Directory} cannot be read ({e.Message}).", e);
        }
    }

    private static async Task<(RunManifest Manifest, string Sha256)> LoadManifestAsync(AgentConfiguration config, HospitalStorage storage,
        StorageResilience resilience, CancellationToken cancellationToken)
    {
        var blob = ManifestBlob(config.RunId);
        byte[] bytes;
        try
        {
            var content = await resilience.RunAsync("read the run manifest",
                ct => storage.Container.GetBlobClient(blob).DownloadContentAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            bytes = content.Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new AgentException(ExitCode.Manifest,
                $"run manifest {blob} is not in container {storage.Container.Name}: run '{config.RunId}' has not been provisioned for this hospital yet (ask "
                    + $"the operator), or runId is wrong.", e);
        }
        RunManifest manifest;
        try
        {
            manifest = RunManifest.Parse(bytes);
        }
        catch (RunManifestException e)
        {
            throw new AgentException(ExitCode.Manifest, $"{e.Message} ({blob}). This agent cannot take part in the run as defined: ask the operator to fix "
                + $"the manifest or upgrade the agent.", e);
        }
        if (manifest.RunId != config.RunId)
        {
            throw new AgentException(ExitCode.Manifest, $"{blob} describes run '{manifest.RunId}', not '{config.RunId}': ask the operator to re-provision the "
                + $"run.");
        }
        if (!manifest.Hospitals.Contains(config.HospitalId, StringComparer.Ordinal))
        {
            throw new AgentException(ExitCode.Manifest,
                $"hospital '{config.HospitalId}' is not part of run '{config.RunId}' (the manifest lists {string.Join(", ", manifest.Hospitals)}): check "
                    + $"hospitalId and runId.");
        }
        return (manifest, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>
    /// The consortium secret of this run, checked against the manifest's commitment: a hospital whose secret differs
    /// would train from other initial weights (temporal mode: another feature space), so it stops before sending anything.
    /// </summary>
    public static ConsortiumSecret? LoadConsortiumSecret(AgentConfiguration config, RunManifest manifest, IAgentOutput output)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(output);
        var commitment = manifest.Privacy.ConsortiumCommitment;
        if (config.ConsortiumSecretFile is null)
        {
            if (commitment is not null)
            {
                throw new AgentException(ExitCode.Configuration,
                    $"run '{manifest.RunId}' expects the consortium secret (commitment {commitment[..12]}...), but the configuration names no "
                        + $"consortiumSecretFile: " +
                    "copy the secret file the consortium shared at onboarding here and set consortiumSecretFile (or `splitfn-agent init --consortium-secret "
                        + "<file>`).");
            }
            output.Warn("privacy: this run has no consortium secret, so the initial client weights come from the manifest seed, which the server knows "
                + "(docs/privacy.md)");
            return null;
        }
        ConsortiumSecret secret;
        try
        {
            secret = ConsortiumSecret.Load(config.ConsortiumSecretFile);
        }
        catch (ConsortiumSecretException e)
        {
            throw new AgentException(ExitCode.Configuration, e.Message + ".", e);
        }
        if (commitment is null)
        {
            throw new AgentException(ExitCode.Manifest,
                $"the run manifest of '{manifest.RunId}' carries no privacy.consortiumCommitment, but this hospital holds a consortium secret: ask the "
                    + $"operator to provision the run with the commitment `splitfn-agent init` printed ({secret.Commitment}).");
        }
        if (!string.Equals(commitment, secret.Commitment, StringComparison.Ordinal))
        {
            throw new AgentException(ExitCode.Configuration,
                $"consortium secret {config.ConsortiumSecretFile} does not match run '{manifest.RunId}': its commitment is {secret.Commitment[..12]}..., the "
                    + $"manifest's is {commitment[..12]}.... " +
                "This hospital holds another consortium's secret (or the operator wrote another commitment); nothing was sent. Get the secret the other "
                    + "hospitals hold.");
        }
        return secret;
    }

    private static void RequireSameRun(AgentState state, AgentConfiguration config, string manifestSha, HospitalData data, StateFolder folder)
    {
        string? problem = null;
        if (state.RunId != config.RunId || state.HospitalId != config.HospitalId) problem = $"it belongs to run '{state.RunId}' of hospital "
            + $"'{state.HospitalId}'";
        else if (state.ManifestSha256 != manifestSha) problem = "the run manifest changed since this hospital started the run";
        else if (state.TrainSamples != data.Train.Count) problem = $"it was started with {state.TrainSamples} training samples and the data now gives "
            + $"{data.Train.Count}";
        if (problem is not null)
        {
            throw new AgentException(ExitCode.StateCorrupt,
                $"local state in {folder.RunFolder} does not fit this start: {problem}. Restore the original data/configuration, or move the folder aside to "
                    + $"start this hospital's part afresh.");
        }
    }

    /// <summary>The hospital's floor (privacy.floor) against the operator's manifest, before anything is sent.</summary>
    public static void RequireFloor(AgentConfiguration config, RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(manifest);
        if (config.Privacy.Floor.Violation(manifest) is { } violation) throw FloorRefusal(config, violation);
    }

    private static AgentException FloorRefusal(AgentConfiguration config, string violation) => new(ExitCode.PrivacyFloor,
        $"privacy floor: run '{config.RunId}' is refused: {violation}. Nothing was sent. Ask the operator for a run that meets this hospital's floor, or "
            + "change privacy in the agent configuration if the hospital accepts less (docs/privacy.md).");

    private static OrderSecret LoadOrderSecret(AgentConfiguration config)
    {
        try
        {
            return OrderSecret.LoadOrCreate(config.StateFolder);
        }
        catch (InvalidDataException e)
        {
            throw new AgentException(ExitCode.StateCorrupt, e.Message + ".", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentException(ExitCode.StateCorrupt, $"the order secret in {config.StateFolder} cannot be read or created ({e.Message}); make the "
                + "state folder writable by the agent's account.", e);
        }
    }

    public void Dispose() => Folder.Dispose();
}
