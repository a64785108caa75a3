using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>One hospital's row in `run status`: the server's record of it and what its agent published.</summary>
public sealed record HospitalStatus(string HospitalId, long StepsApplied, long? LastSequence, int? Epoch, double? Loss, string? ValidationMetric,
    double? ValidationValue,
    DateTimeOffset? LastSeen, int RepliesWaiting, bool Revoked);

/// <summary>The server's side of `run status`.</summary>
public sealed record ServerStatus(string LeaseState, string? Instance, long? CheckpointNumber, long? CheckpointStep, long JournalTail, long BatchesApplied,
    int EpochsCompleted, double? LastEpochLoss, int FeaturesQueueDepth, int PoisonCount, IReadOnlyList<PoisonRecord> LatestReasons);

/// <summary>A snapshot of a run, read from storage only (the function's checkpoint, journal and lease, the queues, the agents' progress blobs).</summary>
public sealed record RunStatus(RunManifest Manifest, ServerStatus Server, IReadOnlyList<HospitalStatus> Hospitals, DateTimeOffset ReadAt);

/// <summary>
/// Reads <see cref="RunStatus"/> from the run's storage as <see cref="RunLayout"/> lays it out. Of the function's run
/// state it reads <see cref="RunProgress"/>, so the operator's tool does not depend on the function's assembly.
/// </summary>
public sealed class RunStatusReader(StorageConnection storage)
{
    /// <summary>Metadata key the function sets on `runs/&lt;run&gt;/lease` to say which instance holds the run.</summary>
    public const string InstanceMetadata = "instance";

    /// <summary>How many of the latest poison reasons a status shows.</summary>
    public const int ReasonCount = 3;

    public async Task<RunStatus> ReadAsync(string runId, CancellationToken ct = default)
    {
        if (!StorageNames.IsValidRunId(runId)) throw new ConsortiumException(ConsortiumError.Invalid, $"run id '{runId}' is invalid: use 1-63 lowercase "
            + $"letters, digits and single hyphens");
        var runs = storage.GetBlobContainerClient(StorageNames.RunsContainer);
        var manifestBytes = await TryDownloadAsync(runs, RunLayout.Manifest(runId), ct).ConfigureAwait(false)
                            ?? throw new ConsortiumException(ConsortiumError.NotFound, $"run '{runId}' does not exist (no runs/{RunLayout.Manifest(runId)}): "
                                + $"`run create` makes one");
        RunManifest manifest;
        try
        {
            manifest = RunManifest.Parse(manifestBytes);
        }
        catch (RunManifestException e)
        {
            throw new ConsortiumException(ConsortiumError.Invalid, $"runs/{RunLayout.Manifest(runId)}: {e.Message}", e);
        }

        var (leaseState, instance) = await LeaseAsync(runs, runId, ct).ConfigureAwait(false);
        long? number = null, step = null;
        long batches = 0;
        var epochs = 0;
        double? lastEpochLoss = null;
        var watermarks = new Dictionary<string, long>(StringComparer.Ordinal);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        var lastLoss = new Dictionary<string, double>(StringComparer.Ordinal);
        if (await TryDownloadAsync(runs, RunLayout.LatestCheckpoint(runId), ct).ConfigureAwait(false) is { } latest)
        {
            number = JsonSerializer.Deserialize<LatestCheckpoint>(latest, RunLayout.Json)!.Number;
            var stateBytes = await TryDownloadAsync(runs, RunLayout.CheckpointFile(runId, number.Value, RunLayout.StateFile), ct).ConfigureAwait(false);
            if (stateBytes is not null && JsonSerializer.Deserialize<RunProgress>(stateBytes, RunLayout.Json) is { } state)
            {
                step = state.Step;
                batches = state.BatchesApplied;
                epochs = state.EpochsCompleted;
                foreach (var (h, sequence) in state.Watermarks) watermarks[h] = sequence;
                foreach (var b in state.RecentBatches)
                {
                    steps[b.Hospital] = steps.GetValueOrDefault(b.Hospital) + 1;
                    lastLoss[b.Hospital] = b.Loss;
                }
                foreach (var c in state.Chunks) steps[c.Hospital] = steps.GetValueOrDefault(c.Hospital) + 1;
                if (state.Epochs.Count > 0) lastEpochLoss = state.Epochs[^1].Loss;
            }
        }
        // Messages applied after the checkpoint are in the journal tail.
        long tail = 0;
        await foreach (var item in runs.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunLayout.JournalFolder(runId), ct).ConfigureAwait(false))
        {
            var name = item.Name[(item.Name.LastIndexOf('/') + 1)..];
            if (!long.TryParse(Path.GetFileNameWithoutExtension(name), NumberStyles.None, CultureInfo.InvariantCulture, out var entryStep)
                || entryStep < (step ?? 0)) continue;
            if (await TryDownloadAsync(runs, item.Name, ct).ConfigureAwait(false) is not { } entryBytes) continue;
            var entry = JsonSerializer.Deserialize<JournalEntry>(entryBytes, RunLayout.Json)!;
            var (h, seq) = (entry.Hospital, entry.Sequence);
            tail++;
            steps[h] = steps.GetValueOrDefault(h) + 1;
            if (seq > watermarks.GetValueOrDefault(h, -1)) watermarks[h] = seq;
        }

        var featuresQueue = storage.GetQueueClient(StorageNames.FeaturesQueue);
        var depth = await featuresQueue.ExistsAsync(ct).ConfigureAwait(false) ? (await featuresQueue.GetPropertiesAsync(ct).ConfigureAwait(false))
            .Value.ApproximateMessagesCount : 0;
        var inbox = new PoisonInbox(storage);
        var reasons = await inbox.ReasonsAsync(ct).ConfigureAwait(false);
        var server = new ServerStatus(leaseState, instance, number, step, tail, batches, epochs, lastEpochLoss, depth,
            await inbox.CountAsync(ct).ConfigureAwait(false), [.. reasons.TakeLast(ReasonCount)]);

        var registry = new HospitalRegistry(storage);
        var hospitals = new List<HospitalStatus>();
        foreach (var id in manifest.Hospitals)
        {
            var container = storage.GetBlobContainerClient(StorageNames.HospitalContainer(id));
            HospitalProgress? progress = null;
            DateTimeOffset? seen = null;
            if (await TryDownloadAsync(container, HospitalProgress.Blob(runId), ct).ConfigureAwait(false) is { } p)
            {
                progress = HospitalProgress.TryParse(p);
                seen = progress?.UpdatedAt;
            }
            long? last = watermarks.TryGetValue(id, out var wm) ? wm : null;
            if (last is { } sequence && await LastModifiedAsync(container, StorageNames.FrameBlob(StorageNames.FeaturesFolder, runId, sequence), ct)
                .ConfigureAwait(false) is { } modified
                && (seen is null || modified > seen)) seen = modified;
            var replies = storage.GetQueueClient(StorageNames.RepliesQueue(id));
            var waiting = await replies.ExistsAsync(ct).ConfigureAwait(false) ? (await replies.GetPropertiesAsync(ct).ConfigureAwait(false))
                .Value.ApproximateMessagesCount : 0;
            var revoked = (await registry.GetAsync(id, ct).ConfigureAwait(false))?.IsRevoked ?? false;
            hospitals.Add(new HospitalStatus(id, steps.GetValueOrDefault(id), last, progress?.EpochsDone, progress?.MeanTrainLoss
                ?? (lastLoss.TryGetValue(id, out var l) ? l : null),
                progress?.ValidationMetric, progress?.ValidationValue, seen, waiting, revoked));
        }
        return new RunStatus(manifest, server, hospitals, DateTimeOffset.UtcNow);
    }

    private static async Task<(string State, string? Instance)> LeaseAsync(BlobContainerClient runs, string runId, CancellationToken ct)
    {
        try
        {
            var properties = (await runs.GetBlobClient(RunLayout.Lease(runId)).GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
            var held = properties.LeaseState == LeaseState.Leased;
            return (held ? "held" : "free", held && properties.Metadata.TryGetValue(InstanceMetadata, out var instance) ? instance : null);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return ("never taken", null);
        }
    }

    private static async Task<DateTimeOffset?> LastModifiedAsync(BlobContainerClient container, string blob, CancellationToken ct)
    {
        try
        {
            return (await container.GetBlobClient(blob).GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value.LastModified;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Largest record `run status` reads (manifest, state, journal entry, a hospital's progress); real ones are a few KiB.</summary>
    public const long MaxRecordBytes = 16L * 1024 * 1024;

    private static async Task<byte[]?> TryDownloadAsync(BlobContainerClient container, string blob, CancellationToken ct)
    {
        try
        {
            // Its size first: a hospital can write its own progress blob, and a huge one must not cost the operator memory.
            var client = container.GetBlobClient(blob);
            var properties = (await client.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
            if (properties.ContentLength > MaxRecordBytes)
            {
                throw new ConsortiumException(ConsortiumError.Invalid, $"{container.Name}/{Core.CommandLine.Printable.Escape(blob)} is "
                    + $"{properties.ContentLength} bytes, more than any run record ({MaxRecordBytes}); it was not read. Remove or replace it.");
            }
            if (properties.ContentLength == 0) return [];
            return (await client.DownloadContentAsync(new BlobDownloadOptions
            {
                Range = new HttpRange(0, properties.ContentLength),
                Conditions = new BlobRequestConditions { IfMatch = properties.ETag },
            }, ct).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
