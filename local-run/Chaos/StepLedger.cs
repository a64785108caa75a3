using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>One hospital's steps as it committed them and as the server recorded them.</summary>
public sealed record HospitalLedger(string Hospital, long Expected, long Committed, long ServerRecords, long ServerDistinct, long Lost, long Doubled);

/// <summary>A run's steps compared end to end: per hospital, and the server's own count against what the data implies.</summary>
public sealed record StepLedger(IReadOnlyList<HospitalLedger> Hospitals, long ServerBatchesExpected, long ServerBatchesApplied, int EpochsCompleted,
    bool Complete)
{
    public long Lost => Hospitals.Sum(h => h.Lost) + Math.Max(0, ServerBatchesExpected - ServerBatchesApplied);

    public long Doubled => Hospitals.Sum(h => h.Doubled) + Math.Max(0, ServerBatchesApplied - ServerBatchesExpected);
}

/// <summary>
/// Reads the agents' state.json files and the run's durable server state (latest checkpoint plus the journal after it) and
/// compares them. Vanilla: each hospital's committed client steps against the server's batch records of that hospital
/// (a sequence recorded twice, or more distinct records than committed steps, is a doubled step; fewer is a lost one).
/// Temporal: chunks the agent counts as sent against chunks indexed, and the server's batches against ceil(N / B) per
/// completed epoch. Whether the run finished is reported apart (<see cref="StepLedger.Complete"/>).
/// </summary>
public static class StepLedgers
{
    public static async Task<StepLedger> ReadAsync(StorageConnection storage, RunManifest manifest, IReadOnlyList<EnrolledHospital> hospitals,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(hospitals);
        var runs = storage.GetBlobContainerClient(StorageNames.RunsContainer);
        var (state, journal) = await ServerStateAsync(runs, manifest.RunId, ct).ConfigureAwait(false);
        var temporal = manifest.Mode == TrainingMode.Temporal;
        var ushaped = manifest.Mode == TrainingMode.UShaped;
        var stepKind = temporal ? "chunk" : ushaped ? "backward" : "train";
        // Vanilla: one record per applied batch; temporal: one per indexed chunk; U-shaped: the journal's backward legs only
        // (its checkpoints keep no batch records, so its per-hospital check is the watermark below).
        var records = new List<(string Hospital, long Sequence)>();
        if (state is { } s)
        {
            records.AddRange(temporal ? s.Chunks.Select(c => (c.Hospital, c.Sequence)) : s.RecentBatches.Select(b => (b.Hospital, b.Sequence)));
        }
        records.AddRange(journal.Where(e => e.Kind == stepKind).Select(e => (e.Hospital, e.Sequence)));

        var ledgers = new List<HospitalLedger>();
        long samples = 0;
        var complete = true;
        foreach (var hospital in hospitals)
        {
            var agent = AgentProgress.Read(hospital.StatePath(manifest.RunId));
            var perEpoch = (agent.TrainSamples + manifest.BatchSize - 1) / manifest.BatchSize;
            samples += agent.TrainSamples;
            var expected = temporal ? perEpoch : (long)perEpoch * manifest.Epochs;
            var committed = temporal ? agent.ChunksSent : agent.ClientSteps;
            complete &= temporal ? agent.DoneSent : agent.Epoch >= manifest.Epochs;
            var mine = records.Where(r => r.Hospital == hospital.HospitalId).ToList();
            var distinct = mine.Select(r => r.Sequence).Distinct().LongCount();
            var lost = Math.Max(0, committed - distinct);
            var doubled = (mine.Count - distinct) + Math.Max(0, distinct - committed);
            if (ushaped)
            {
                // No batch records to count per hospital: a lost or doubled step shows in the server's batch count against the
                // agents' committed steps (the total below, exact); per hospital, a leg applied beyond the last sequence its
                // agent used (validation requests use sequences too, so the watermark may stay below it) is a doubled step.
                var watermark = Math.Max(state?.Watermarks.GetValueOrDefault(hospital.HospitalId, -1) ?? -1,
                    journal.Where(e => e.Hospital == hospital.HospitalId).Select(e => e.Sequence).DefaultIfEmpty(-1).Max());
                lost = 0;
                doubled = (mine.Count - distinct) + (watermark > agent.NextSequence - 1 ? 1 : 0);
            }
            ledgers.Add(new HospitalLedger(hospital.HospitalId, expected, committed, mine.Count, distinct, lost, doubled));
        }
        // Batches the checkpoint counts plus those journaled after it (vanilla; temporal epochs are checkpointed each).
        var applied = (state?.BatchesApplied ?? 0) + journal.Count(e => e.Kind == (ushaped ? "backward" : "train"));
        var epochs = state?.EpochsCompleted ?? 0;
        // What the server should have applied given what the hospitals committed: vanilla, one batch per committed client step;
        // temporal, ceil(N / B) batches per completed epoch over the union of the chunks.
        var expectedBatches = temporal ? epochs * ((samples + manifest.BatchSize - 1) / manifest.BatchSize) : ledgers.Sum(l => l.Committed);
        if (temporal) complete &= epochs >= manifest.Epochs;
        // Vanilla's batch records are bounded (RunState.RecentBatchLimit, 2,000): the chaos command keeps runs below it.
        return new StepLedger(ledgers, expectedBatches, applied, epochs, complete);
    }

    /// <summary>The final server weights (server.pt of the latest checkpoint), or null when there is none.</summary>
    public static async Task<byte[]?> ServerWeightsAsync(StorageConnection storage, string runId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var runs = storage.GetBlobContainerClient(StorageNames.RunsContainer);
        if (await LatestNumberAsync(runs, runId, ct).ConfigureAwait(false) is not { } number) return null;
        return (await runs.GetBlobClient(RunLayout.CheckpointFile(runId, number, RunLayout.WeightsFile)).DownloadContentAsync(ct).ConfigureAwait(false))
            .Value.Content.ToArray();
    }

    /// <summary>Temporal epochs completed by the server so far (its latest checkpoint), for progress.</summary>
    public static async Task<int> EpochsCompletedAsync(StorageConnection storage, string runId, CancellationToken ct)
    {
        var (state, _) = await ServerStateAsync(storage.GetBlobContainerClient(StorageNames.RunsContainer), runId, ct, journal: false).ConfigureAwait(false);
        return state?.EpochsCompleted ?? 0;
    }

    // The run state is the function's, read as its RunProgress (RunLayout.LatestCheckpoint names the newest checkpoint). A
    // run whose function was killed before its first checkpoint has only its journal, from step 0.
    private static async Task<(RunProgress? State, IReadOnlyList<JournalEntry> Journal)> ServerStateAsync(BlobContainerClient runs, string runId,
        CancellationToken ct, bool journal = true)
    {
        RunProgress? state = null;
        if (await LatestNumberAsync(runs, runId, ct).ConfigureAwait(false) is { } number)
        {
            try
            {
                var content = (await runs.GetBlobClient(RunLayout.CheckpointFile(runId, number, RunLayout.StateFile)).DownloadContentAsync(ct)
                    .ConfigureAwait(false)).Value.Content;
                state = JsonSerializer.Deserialize<RunProgress>(content.ToMemory().Span, RunLayout.Json)
                    ?? throw new InvalidDataException("run state is JSON null");
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Pruned between the two reads (a newer checkpoint exists): read again.
                return await ServerStateAsync(runs, runId, ct, journal).ConfigureAwait(false);
            }
        }
        if (!journal) return (state, []);
        var step = state?.Step ?? 0;
        var entries = new List<JournalEntry>();
        await foreach (var item in runs.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None,
            RunLayout.JournalFolder(runId), ct).ConfigureAwait(false))
        {
            if (long.Parse(Path.GetFileNameWithoutExtension(item.Name), CultureInfo.InvariantCulture) < step) continue;
            var content = (await runs.GetBlobClient(item.Name).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            entries.Add(JsonSerializer.Deserialize<JournalEntry>(content.ToMemory().Span, RunLayout.Json)
                ?? throw new InvalidDataException($"journal entry {item.Name} is JSON null"));
        }
        return (state, entries);
    }

    private static async Task<long?> LatestNumberAsync(BlobContainerClient runs, string runId, CancellationToken ct)
    {
        try
        {
            var content = (await runs.GetBlobClient(RunLayout.LatestCheckpoint(runId)).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            return (JsonSerializer.Deserialize<LatestCheckpoint>(content.ToMemory().Span, RunLayout.Json)
                ?? throw new InvalidDataException("latest checkpoint pointer is JSON null")).Number;
        }
        catch (RequestFailedException e) when (e.Status is 404)
        {
            return null;
        }
    }
}

/// <summary>What the harness reads of an agent's state.json (the agent replaces it atomically, so a read sees a whole file).</summary>
public sealed record AgentProgress(int Epoch, long ClientSteps, int ChunksSent, bool DoneSent, int TrainSamples, long NextSequence = 1)
{
    public static AgentProgress Read(string path)
    {
        if (!File.Exists(path)) return new AgentProgress(0, 0, 0, false, 0);
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var s = document.RootElement;
        return new AgentProgress(s.GetProperty("epoch").GetInt32(), s.GetProperty("clientSteps").GetInt64(), s.GetProperty("chunksSent").GetInt32(),
            s.GetProperty("doneSent").GetBoolean(), s.GetProperty("trainSamples").GetInt32(),
            s.TryGetProperty("nextSequence", out var next) ? next.GetInt64() : 1);
    }
}
