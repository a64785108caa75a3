using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>A checkpoint as stored: server weights (PyTorch state dict), optimizer state and run state.</summary>
public sealed record Checkpoint(RunState State, byte[] ServerWeights, byte[] OptimizerState);

/// <summary>Another instance wrote the run's journal or `latest` pointer first: this instance must drop the run it holds.</summary>
public sealed class ConcurrentWriterException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The durable side of a run in the `runs` container, laid out as <see cref="RunLayout"/> says: the manifest, journal
/// entries (written once each, If-None-Match: *), checkpoints and the `latest` pointer, replaced only with If-Match on
/// the ETag this instance last saw.
/// </summary>
public sealed partial class RunStore(BlobContainerClient runs, int retention, Microsoft.Extensions.Logging.ILogger? logger = null)
{
    public BlobContainerClient Container => runs;

    /// <summary>Reads and validates the run's manifest; a missing one is a <see cref="RunManifestException"/>.</summary>
    public async Task<RunManifest> LoadManifestAsync(string run, CancellationToken ct)
    {
        try
        {
            var data = (await runs.GetBlobClient(RunLayout.Manifest(run)).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            var manifest = RunManifest.Parse(data.ToMemory().Span);
            if (manifest.RunId != run) throw new RunManifestException($"runs/{RunLayout.Manifest(run)} names run '{manifest.RunId}'");
            return manifest;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new RunManifestException($"run '{run}' has no manifest at runs/{RunLayout.Manifest(run)}: create the run before sending data", e);
        }
    }

    /// <summary>The newest checkpoint and the ETag of the `latest` pointer, or (null, null) for a new run.</summary>
    public async Task<(Checkpoint? Checkpoint, ETag? LatestETag)> LoadLatestAsync(string run, CancellationToken ct)
    {
        BinaryData pointer;
        ETag etag;
        try
        {
            var result = (await runs.GetBlobClient(RunLayout.LatestCheckpoint(run)).DownloadContentAsync(ct).ConfigureAwait(false)).Value;
            etag = result.Details.ETag;
            pointer = result.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, null);
        }
        var latest = JsonSerializer.Deserialize<LatestCheckpoint>(pointer.ToMemory().Span, RunLayout.Json)
                     ?? throw new InvalidDataException($"runs/{RunLayout.LatestCheckpoint(run)} is JSON null");
        var state = await DownloadAsync(RunLayout.CheckpointFile(run, latest.Number, RunLayout.StateFile), ct).ConfigureAwait(false);
        var weights = await DownloadAsync(RunLayout.CheckpointFile(run, latest.Number, RunLayout.WeightsFile), ct).ConfigureAwait(false);
        var optimizer = await DownloadAsync(RunLayout.CheckpointFile(run, latest.Number, RunLayout.OptimizerFile), ct).ConfigureAwait(false);
        return (new Checkpoint(RunState.FromJson(state), weights, optimizer), etag);
    }

    /// <summary>
    /// Writes a checkpoint and moves `latest` to it with If-Match on <paramref name="expectedLatest"/> (If-None-Match for
    /// the first); returns the new ETag. Older checkpoints beyond the retention count, and the journal they cover, are removed.
    /// </summary>
    public async Task<ETag> WriteCheckpointAsync(string run, Checkpoint checkpoint, ETag? expectedLatest, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var number = ++checkpoint.State.CheckpointNumber;
        await runs.GetBlobClient(RunLayout.CheckpointFile(run, number, RunLayout.WeightsFile))
            .UploadReplacingAsync(BinaryData.FromBytes(checkpoint.ServerWeights), ct).ConfigureAwait(false);
        await runs.GetBlobClient(RunLayout.CheckpointFile(run, number, RunLayout.OptimizerFile))
            .UploadReplacingAsync(BinaryData.FromBytes(checkpoint.OptimizerState), ct).ConfigureAwait(false);
        await runs.GetBlobClient(RunLayout.CheckpointFile(run, number, RunLayout.StateFile))
            .UploadReplacingAsync(BinaryData.FromBytes(checkpoint.State.ToJson()), ct).ConfigureAwait(false);

        var pointer = JsonSerializer.SerializeToUtf8Bytes(new LatestCheckpoint(number, checkpoint.State.Step, DateTimeOffset.UtcNow), RunLayout.Json);
        var conditions = expectedLatest is { } e ? new BlobRequestConditions { IfMatch = e } : new BlobRequestConditions { IfNoneMatch = ETag.All };
        ETag etag;
        try
        {
            var info = await runs.GetBlobClient(RunLayout.LatestCheckpoint(run))
                .UploadAsync(BinaryData.FromBytes(pointer), new BlobUploadOptions { Conditions = conditions }, ct).ConfigureAwait(false);
            etag = info.Value.ETag;
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            throw new ConcurrentWriterException($"run '{run}': the latest checkpoint pointer changed under this instance (another writer)", ex);
        }
        await PruneAsync(run, number, ct).ConfigureAwait(false);
        return etag;
    }

    /// <summary>Records one applied message. Fails with <see cref="ConcurrentWriterException"/> when that step number exists.</summary>
    public async Task AppendJournalAsync(string run, JournalEntry entry, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var content = BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(entry, RunLayout.Json));
        if (!await runs.GetBlobClient(RunLayout.JournalEntry(run, entry.Step)).UploadIfNotExistsAsync(content, ct).ConfigureAwait(false))
        {
            throw new ConcurrentWriterException($"run '{run}': journal step {entry.Step} already exists (another writer applied it)");
        }
    }

    /// <summary>Journal entries from <paramref name="fromStep"/> on, in order, stopping at the first gap.</summary>
    public async Task<IReadOnlyList<JournalEntry>> ReadJournalAsync(string run, long fromStep, CancellationToken ct)
    {
        var names = new List<string>();
        await foreach (var item in runs.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunLayout.JournalFolder(run), cancellationToken: ct)
            .ConfigureAwait(false)) names.Add(item.Name);
        names.Sort(StringComparer.Ordinal);
        var entries = new List<JournalEntry>();
        var expected = fromStep;
        foreach (var name in names)
        {
            // Anything else under the journal folder (a stray upload, a tool's temporary file) is not an entry: skipped with a
            // warning, never a failure that makes the run unopenable.
            if (JournalStep(name) is not { } step)
            {
                if (logger is not null) LogStrayJournalBlob(logger, run, Core.CommandLine.Printable.Escape(name));
                continue;
            }
            if (step < fromStep) continue;
            if (step != expected) break;
            var entry = JsonSerializer.Deserialize<JournalEntry>(await DownloadAsync(name, ct).ConfigureAwait(false), RunLayout.Json)
                        ?? throw new InvalidDataException($"runs/{name} is JSON null");
            entries.Add(entry);
            expected++;
        }
        return entries;
    }

    /// <summary>Checkpoint numbers present, oldest first.</summary>
    public async Task<IReadOnlyList<long>> ListCheckpointsAsync(string run, CancellationToken ct)
    {
        var steps = new SortedSet<long>();
        await foreach (var item in runs.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunLayout.CheckpointsFolder(run), cancellationToken: ct)
            .ConfigureAwait(false))
        {
            var parts = item.Name.Split('/');
            if (parts.Length == 4 && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var step)) steps.Add(step);
        }
        return [.. steps];
    }

    private async Task PruneAsync(string run, long newest, CancellationToken ct)
    {
        var numbers = await ListCheckpointsAsync(run, ct).ConfigureAwait(false);
        var keep = numbers.Where(n => n <= newest).TakeLast(Math.Max(1, retention)).ToList();
        foreach (var number in numbers.Where(n => n < newest && !keep.Contains(n)))
        {
            foreach (var file in new[] { RunLayout.StateFile, RunLayout.WeightsFile, RunLayout.OptimizerFile })
            {
                await runs.GetBlobClient(RunLayout.CheckpointFile(run, number, file)).DeleteIfExistsAsync(cancellationToken: ct).ConfigureAwait(false);
            }
        }
        // Journal entries before the oldest kept checkpoint can never be replayed again.
        var oldest = RunState.FromJson(await DownloadAsync(RunLayout.CheckpointFile(run, keep[0], RunLayout.StateFile), ct).ConfigureAwait(false));
        await foreach (var item in runs.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunLayout.JournalFolder(run), cancellationToken: ct)
            .ConfigureAwait(false))
        {
            if (JournalStep(item.Name) is { } step && step < oldest.Step)
            {
                await runs.GetBlobClient(item.Name).DeleteIfExistsAsync(cancellationToken: ct).ConfigureAwait(false);
            }
        }
    }

    // The step a journal blob's name gives (`.../journal/<step>.json`), or null for any other name.
    private static long? JournalStep(string name) =>
        name.EndsWith(".json", StringComparison.Ordinal)
            && long.TryParse(Path.GetFileNameWithoutExtension(name), NumberStyles.None, CultureInfo.InvariantCulture, out var step) ? step : null;

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Warning,
        Message = "run {Run}: '{Name}' under the journal folder is not a journal entry; skipped")]
    private static partial void LogStrayJournalBlob(Microsoft.Extensions.Logging.ILogger logger, string run, string name);

    private async Task<byte[]> DownloadAsync(string name, CancellationToken ct) =>
        (await runs.GetBlobClient(name).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content.ToArray();
}
