using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// Temporal mode's features, streamed epoch by epoch from their sealed chunks instead of held in memory: each epoch the
/// chunks are visited in a seeded order, grouped into windows of at most the run's window bytes, and each window is
/// downloaded and decrypted while the one before it trains. Memory is bounded by two windows whatever the data size.
/// The order depends only on (seed, epoch, the indexed chunks, the window bytes recorded in the run state), so a run
/// resumed at an epoch boundary on another instance trains on exactly the same batches. Chunks once decrypted are kept
/// for later epochs in a <see cref="DecryptedChunkCache"/> of fixed budget (none with a budget of 0): what it holds is
/// not read again, and the batches are the same either way.
/// </summary>
public sealed class TemporalFeatureStream(ServerFrameStore frames, DecryptedChunkCache? cache = null)
{
    /// <summary>The decrypted chunks kept between epochs.</summary>
    public DecryptedChunkCache Cache { get; } = cache ?? new DecryptedChunkCache(DecryptedChunkCache.DefaultBudgetBytes);

    /// <summary>Default window: 256 MiB of sealed frames (two in memory at once while one trains and the next is read).</summary>
    public const long DefaultWindowBytes = 256L << 20;

    /// <summary>The chunks of each window of <paramref name="epoch"/>, in the order they train.</summary>
    public static IReadOnlyList<IReadOnlyList<FeatureChunk>> PlanWindows(IReadOnlyList<FeatureChunk> chunks, ulong seed, int epoch, long windowBytes)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowBytes, 1);
        // A canonical order first, so the plan does not depend on the order chunks happened to be indexed in.
        var canonical = chunks.OrderBy(c => c.Hospital, StringComparer.Ordinal).ThenBy(c => c.Sequence).ToArray();
        var windows = new List<IReadOnlyList<FeatureChunk>>();
        var current = new List<FeatureChunk>();
        long bytes = 0;
        foreach (var index in BatchOrder.Shuffle(canonical.Length, seed, epoch))
        {
            var chunk = canonical[index];
            if (current.Count > 0 && bytes + chunk.Length > windowBytes)
            {
                windows.Add(current);
                current = [];
                bytes = 0;
            }
            current.Add(chunk);
            bytes += chunk.Length;
        }
        if (current.Count > 0) windows.Add(current);
        return windows;
    }

    /// <summary>Seed of the sample order inside window <paramref name="window"/> (samples are shuffled within a window).</summary>
    public static ulong WindowSeed(ulong seed, int window) => seed ^ (0xD1B54A32D192ED03UL * (ulong)(window + 1));

    /// <summary>
    /// The windows of one epoch, decrypted, each with its sample order; window k+1 is read while the caller trains on k.
    /// </summary>
    public async IAsyncEnumerable<(TrainingSet Window, int[] Order)> ReadEpochAsync(
        LeasedRun run, int epoch, long windowBytes, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var plan = PlanWindows(run.State.Chunks, run.Manifest.Seed, epoch, windowBytes);
        if (plan.Count == 0) yield break;
        var next = ReadWindowAsync(run, plan[0], ct);
        for (var w = 0; w < plan.Count; w++)
        {
            var window = await next.ConfigureAwait(false);
            // Start the next read before handing this window out: decryption overlaps the compute.
            next = w + 1 < plan.Count ? ReadWindowAsync(run, plan[w + 1], ct) : null!;
            yield return (window, BatchOrder.Shuffle(window.Count, WindowSeed(run.Manifest.Seed, w), epoch));
        }
    }

    private Task<TrainingSet> ReadWindowAsync(LeasedRun run, IReadOnlyList<FeatureChunk> chunks, CancellationToken ct) => Task.Run(async () =>
    {
        var parts = new List<(float[] Features, float[] Labels)>(chunks.Count);
        var runId = run.Manifest.RunId;
        foreach (var chunk in chunks)
        {
            if (Cache.TryGet(runId, chunk, out var cachedFeatures, out var cachedLabels))
            {
                parts.Add((cachedFeatures, cachedLabels));
                continue;
            }
            var tensors = (await frames.ReadAsync(runId, chunk.Hospital, chunk.Sequence, chunk.Blob, chunk.Length, chunk.Sha256, chunk.KeyId, ct,
                bounds: TrainingFrames.Bounds(run, Core.Contract.FrameKind.Chunk)).ConfigureAwait(false)).Tensors;
            parts.Add((tensors[0].Values, tensors[1].Values));
            // Only read from here on: the window below is a copy, so what the cache holds is never trained on in place.
            Cache.Offer(runId, chunk, tensors[0].Values, tensors[1].Values);
        }
        var features = new float[parts.Sum(p => (long)p.Features.Length)];
        var labels = new float[parts.Sum(p => p.Labels.Length)];
        long fo = 0;
        var lo = 0;
        foreach (var (f, l) in parts)
        {
            f.CopyTo(features, fo);
            l.CopyTo(labels, lo);
            fo += f.Length;
            lo += l.Length;
        }
        return new TrainingSet(features, labels, run.Model.CutShape, run.Model.LabelWidth);
    }, ct);
}
