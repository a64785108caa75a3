using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

public sealed class DecryptedChunkCacheTests
{
    private static FeatureChunk Chunk(long sequence, string sha = "aa") => new("alpha", sequence, $"features/run/{sequence}", 100, sha, "k1");

    [Fact]
    public void Holds_chunks_up_to_its_budget_and_evicts_nothing_of_the_run_that_fills_it()
    {
        // 24 floats of features + 1 label = 100 bytes each; a budget of 250 holds two.
        var cache = new DecryptedChunkCache(250);
        for (var i = 0; i < 4; i++) cache.Offer("run-a", Chunk(i), new float[24], new float[1]);
        cache.Bytes.Should().Be(200);
        cache.TryGet("run-a", Chunk(0), out _, out _).Should().BeTrue("the first chunks stay: a shuffled epoch hits a fixed set more often than LRU");
        cache.TryGet("run-a", Chunk(1), out _, out _).Should().BeTrue();
        cache.TryGet("run-a", Chunk(2), out _, out _).Should().BeFalse();
        cache.TryGet("run-a", Chunk(0, sha: "bb"), out _, out _).Should().BeFalse("another digest is another content");
        cache.TryGet("run-b", Chunk(0), out _, out _).Should().BeFalse("runs do not share entries");
    }

    [Fact]
    public void Another_run_takes_the_room_of_the_run_used_longest_ago_and_a_finished_run_is_released()
    {
        var cache = new DecryptedChunkCache(250);
        cache.Offer("run-a", Chunk(0), new float[24], new float[1]);
        cache.Offer("run-b", Chunk(0), new float[24], new float[1]);
        cache.TryGet("run-a", Chunk(0), out _, out _).Should().BeTrue();
        cache.Offer("run-c", Chunk(0), new float[24], new float[1]);
        cache.TryGet("run-b", Chunk(0), out _, out _).Should().BeFalse("run-b was used longest ago");
        cache.TryGet("run-a", Chunk(0), out var features, out var labels).Should().BeTrue();
        features.Should().HaveCount(24);
        labels.Should().HaveCount(1);
        cache.Release("run-a");
        cache.Release("run-c");
        cache.Bytes.Should().Be(0);
        new DecryptedChunkCache(0).Invoking(c => c.Offer("run-a", Chunk(0), new float[24], new float[1])).Should().NotThrow();
    }
}
