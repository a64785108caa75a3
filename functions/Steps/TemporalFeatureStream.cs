using System.Buffers;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
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

    // Arrays of the chunks the cache does not keep, reused window after window. A pool of its own, not ArrayPool.Shared,
    // which keeps an array per size in each thread's slot (windows are read on one pool thread and returned on another):
    // at most two windows' arrays are out at once, and this many per size are kept.
    private readonly ArrayPool<float> chunkArrays = ArrayPool<float>.Create(TensorFrame.DefaultMaxElements, MaxPooledPerSize);

    /// <summary>Chunk arrays of one size kept for reuse (two windows of the default 256 MiB hold 64 chunks of 8 MiB).</summary>
    public const int MaxPooledPerSize = 64;

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
    /// The windows of one epoch, decrypted, each with its sample order; window k+1 is read while the caller trains on k. A
    /// window's samples are read through <see cref="TrainingSet.Gather"/> (no copy of the window is made) and are valid only
    /// until the next window is asked for: chunks the cache does not keep are decoded into pooled arrays, which go back to
    /// the pool then, so an epoch allocates nothing per chunk whatever the data size.
    /// </summary>
    public async IAsyncEnumerable<(TrainingSet Window, int[] Order)> ReadEpochAsync(
        LeasedRun run, int epoch, long windowBytes, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var plan = PlanWindows(run.State.Chunks, run.Manifest.Seed, epoch, windowBytes);
        if (plan.Count == 0) yield break;
        Task<StreamWindow>? next = ReadWindowAsync(run, plan[0], ct);
        try
        {
            for (var w = 0; w < plan.Count; w++)
            {
                var window = await next!.ConfigureAwait(false);
                // Start the next read before handing this window out: decryption overlaps the compute.
                next = w + 1 < plan.Count ? ReadWindowAsync(run, plan[w + 1], ct) : null;
                try
                {
                    yield return (window.Samples, BatchOrder.Shuffle(window.Samples.Count, WindowSeed(run.Manifest.Seed, w), epoch));
                }
                finally
                {
                    window.Dispose();
                }
            }
        }
        finally
        {
            // Left early (a failed step, a cancelled epoch): the read ahead still returns its arrays.
            if (next is not null) _ = next.ContinueWith(t => t.Result?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default);
        }
    }

    private Task<StreamWindow> ReadWindowAsync(LeasedRun run, IReadOnlyList<FeatureChunk> chunks, CancellationToken ct) => Task.Run(async () =>
    {
        var window = new StreamWindow(checked((int)run.Model.CutShape.Aggregate(1L, (a, b) => a * b)), run.Model.LabelWidth, chunkArrays);
        try
        {
            var runId = run.Manifest.RunId;
            var bounds = TrainingFrames.Bounds(run, Core.Contract.FrameKind.Chunk);
            foreach (var chunk in chunks)
            {
                if (Cache.TryGet(runId, chunk, out var cachedFeatures, out var cachedLabels))
                {
                    // Only read from here on: the window reads samples out of it, never trains on it in place.
                    window.Add(cachedFeatures, cachedLabels, pooled: false);
                    continue;
                }
                float[]? features = null;
                float[]? labels = null;
                var keep = false;
                await frames.ReadIntoAsync(runId, chunk.Hospital, chunk.Sequence, chunk.Blob, chunk.Length, chunk.Sha256, chunk.KeyId, bounds, layouts =>
                {
                    var (featureCount, labelCount) = window.CheckLayouts(layouts);
                    keep = Cache.HasRoomFor(runId, DecryptedChunkCache.ChunkBytes(featureCount, labelCount));
                    // Kept chunks get arrays of their own (the cache holds them); the rest borrow pooled ones for this window.
                    features = keep ? GC.AllocateUninitializedArray<float>(featureCount) : chunkArrays.Rent(featureCount);
                    labels = new float[labelCount];
                    return [features, labels];
                }, ct).ConfigureAwait(false);
                window.Add(features!, labels!, pooled: !keep, count: labels!.Length / run.Model.LabelWidth);
                if (keep) Cache.Offer(runId, chunk, features!, labels!);
            }
            window.Seal(run.Model.CutShape);
            return window;
        }
        catch
        {
            window.Dispose();
            throw;
        }
    }, ct);

    /// <summary>One window's chunks, read in place: samples are looked up in the chunk that holds them.</summary>
    private sealed class StreamWindow(int sampleSize, int labelWidth, ArrayPool<float> pool) : ISampleSource, IDisposable
    {
        private readonly List<(float[] Features, float[] Labels, bool Pooled)> parts = [];
        private readonly List<int> starts = [];
        private int count;

        public TrainingSet Samples { get; private set; } = null!;

        public int Count => count;

        public int SampleSize => sampleSize;

        /// <summary>A chunk must be [rows, cut] features and [rows, label width] labels, as it was when indexed.</summary>
        public (int Features, int Labels) CheckLayouts(TensorLayout[] layouts)
        {
            if (layouts.Length != 2 || layouts[1].ElementCount % labelWidth != 0
                || (long)layouts[0].ElementCount != (long)layouts[1].ElementCount / labelWidth * sampleSize)
            {
                throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"a stored feature chunk holds {layouts.Length} tensors of "
                    + $"{string.Join(", ", layouts.Select(l => l.ElementCount))} values, not features of {sampleSize} and labels of {labelWidth} per sample");
            }
            return (layouts[0].ElementCount, layouts[1].ElementCount);
        }

        public void Add(float[] features, float[] labels, bool pooled, int count = -1)
        {
            starts.Add(this.count);
            parts.Add((features, labels, pooled));
            this.count += count >= 0 ? count : labels.Length / labelWidth;
        }

        public void Seal(long[] sampleShape)
        {
            var labels = new float[(long)count * labelWidth];
            var at = 0;
            foreach (var part in parts)
            {
                part.Labels.CopyTo(labels, at);
                at += part.Labels.Length;
            }
            Samples = new TrainingSet(this, labels, sampleShape, labelWidth);
        }

        public void Read(int index, Span<float> destination)
        {
            var part = starts.BinarySearch(index);
            if (part < 0) part = ~part - 1;
            parts[part].Features.AsSpan((index - starts[part]) * sampleSize, sampleSize).CopyTo(destination);
        }

        public void Dispose()
        {
            foreach (var part in parts) if (part.Pooled) pool.Return(part.Features);
            parts.Clear();
        }
    }
}
