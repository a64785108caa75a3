using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

// Alone: the figure is the process's allocated bytes, which tests running beside it would add to.
[CollectionDefinition(nameof(TemporalStreamMemoryTests), DisableParallelization = true)]
public sealed class TemporalStreamMemoryCollection;

/// <summary>
/// A streamed temporal epoch allocates next to nothing per chunk: downloads land in pooled buffers, chunks the cache does
/// not keep decode into pooled arrays, and windows are read in place. When each chunk read allocated its download buffer,
/// its decoded array and a copy of its window (about 4 bytes per byte of features, all large-object garbage), the peak
/// memory of an 8x epoch grew with the data (issue 33: 1,229 -> 2,497 MiB from 1x to 8x).
/// </summary>
[Collection(nameof(TemporalStreamMemoryTests))]
public sealed class TemporalStreamMemoryTests
{
    [Theory]
    [InlineData(0L)]
    [InlineData(DecryptedChunkCache.DefaultBudgetBytes)]
    public async Task A_streamed_epoch_allocates_a_small_fraction_of_the_features_it_trains_on(long cacheBytes)
    {
        // pneumonia-cnn cuts after its first block (32x14x14 per sample): 16 chunks of 64 samples, 1.6 MiB each, 26 MiB an epoch,
        // in windows of two chunks.
        await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, model: "pneumonia-cnn", batchSize: 64, epochs: 10);
        var (router, runs) = run.CreateRouter("memory-instance");
        await using var _ = runs;
        await run.SendChunksAsync(router, chunks: 8, samples: 64);
        var leased = (await runs.OpenAsync(run.Manifest.RunId, CancellationToken.None))!;
        var stream = new TemporalFeatureStream(run.Frames, new DecryptedChunkCache(cacheBytes));
        var sampleBytes = 4L * leased.Model.CutShape.Aggregate(1L, (a, b) => a * b);
        var epochBytes = leased.State.Chunks.Count * 64 * sampleBytes;
        const long window = 4L << 20;

        async Task<long> EpochAsync(int epoch)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var (_, samples) = await leased.Model.TrainEpochAsync(stream.ReadEpochAsync(leased, epoch, window, CancellationToken.None), CancellationToken.None);
            samples.Should().Be(16 * 64);
            return GC.GetTotalAllocatedBytes(precise: true) - before;
        }

        await EpochAsync(0); // fills the cache, the pools and the SDK's connections
        var allocated = Math.Max(await EpochAsync(1), await EpochAsync(2));

        allocated.Should().BeLessThan(epochBytes / 4, $"an epoch over {epochBytes >> 20} MiB of features allocated {allocated >> 10} KiB (cache budget "
            + $"{cacheBytes >> 20} MiB): buffers per chunk are back");
    }
}
