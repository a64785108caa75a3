using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>
/// Temporal chunks already downloaded, verified and decrypted, kept for the next epoch up to a fixed budget of bytes, so
/// a run whose features fit the budget reads storage once, not once per epoch, and a larger run reads only what does not
/// fit. Memory is bounded by the budget whatever the data size. Within a run nothing is evicted: epochs visit every
/// chunk in a shuffled order, where keeping a fixed set hits more often than least-recently-used. A chunk of another run
/// takes the room of the run used longest ago. Entries are keyed by the chunk's digest too, so an entry is only ever
/// the content the run's index recorded.
/// </summary>
public sealed class DecryptedChunkCache(long budgetBytes)
{
    /// <summary>Default budget: 2 GiB, a quarter of the smallest (CPU) server replica's memory.</summary>
    public const long DefaultBudgetBytes = 2048L << 20;

    private readonly Dictionary<string, Dictionary<(string Hospital, long Sequence, string Sha256), (float[] Features, float[] Labels)>> runs = [];
    // Runs holding entries only (the same keys as `runs`): when each was last read or added to.
    private readonly Dictionary<string, long> lastUsed = [];
    private readonly Lock gate = new();
    private long bytes;
    private long clock;

    public long BudgetBytes { get; } = budgetBytes >= 0 ? budgetBytes : throw new ArgumentOutOfRangeException(nameof(budgetBytes));

    /// <summary>Bytes held now (features and labels as floats).</summary>
    public long Bytes
    {
        get { lock (gate) return bytes; }
    }

    public bool TryGet(string runId, FeatureChunk chunk, out float[] features, out float[] labels)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        lock (gate)
        {
            if (runs.TryGetValue(runId, out var entries))
            {
                lastUsed[runId] = ++clock;
                if (entries.TryGetValue((chunk.Hospital, chunk.Sequence, chunk.Sha256), out var hit))
                {
                    (features, labels) = hit;
                    return true;
                }
            }
        }
        (features, labels) = ([], []);
        return false;
    }

    /// <summary>
    /// Whether <see cref="Offer"/> would keep a chunk of <paramref name="size"/> bytes for <paramref name="runId"/> now (other
    /// runs' chunks make room): a reader decodes a chunk into arrays of its own only if the cache will hold them.
    /// </summary>
    public bool HasRoomFor(string runId, long size)
    {
        lock (gate)
        {
            var own = runs.TryGetValue(runId, out var entries) ? RunBytes(entries) : 0;
            return own + size <= BudgetBytes;
        }
    }

    /// <summary>Keeps the chunk if the budget allows, making room from other runs (the one used longest ago first).</summary>
    public void Offer(string runId, FeatureChunk chunk, float[] features, float[] labels)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        var size = ChunkBytes(features.Length, labels.Length);
        lock (gate)
        {
            while (bytes + size > BudgetBytes)
            {
                var oldest = lastUsed.Where(r => r.Key != runId).OrderBy(r => r.Value).Select(r => r.Key).FirstOrDefault();
                if (oldest is null) return;
                ReleaseLocked(oldest);
            }
            if (!runs.TryGetValue(runId, out var entries)) runs[runId] = entries = [];
            if (entries.TryAdd((chunk.Hospital, chunk.Sequence, chunk.Sha256), (features, labels))) bytes += size;
            lastUsed[runId] = ++clock;
        }
    }

    /// <summary>Drops a run's chunks (its epochs are done).</summary>
    public void Release(string runId)
    {
        lock (gate) ReleaseLocked(runId);
    }

    private void ReleaseLocked(string runId)
    {
        if (runs.Remove(runId, out var entries)) bytes -= RunBytes(entries);
        lastUsed.Remove(runId);
    }

    /// <summary>What a chunk of <paramref name="features"/> and <paramref name="labels"/> floats counts against the budget.</summary>
    public static long ChunkBytes(long features, long labels) => 4L * (features + labels);

    private static long RunBytes(Dictionary<(string Hospital, long Sequence, string Sha256), (float[] Features, float[] Labels)> entries) =>
        entries.Values.Sum(e => ChunkBytes(e.Features.Length, e.Labels.Length));
}
