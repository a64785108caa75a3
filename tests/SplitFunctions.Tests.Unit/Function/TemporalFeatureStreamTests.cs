using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>Temporal mode's streamed epochs: every chunk once per epoch, windows within their byte budget, a seeded order.</summary>
public sealed class TemporalFeatureStreamTests
{
    private static readonly FeatureChunk[] Chunks =
    [
        .. Enumerable.Range(0, 7).Select(i => new FeatureChunk("beta", i, $"b{i}", 100 + i, "sha", "k")),
        .. Enumerable.Range(0, 9).Select(i => new FeatureChunk("alpha", i, $"a{i}", 100 + i, "sha", "k")),
    ];

    [Fact]
    public void Every_chunk_trains_once_per_epoch_in_windows_within_the_budget()
    {
        var windows = TemporalFeatureStream.PlanWindows(Chunks, seed: 7, epoch: 0, windowBytes: 350);

        windows.SelectMany(w => w).Should().BeEquivalentTo(Chunks, "each chunk exactly once");
        windows.Should().HaveCount(6, "three chunks of 100-108 bytes fit 350 bytes, 16 chunks make 6 windows");
        windows.Should().OnlyContain(w => w.Sum(c => c.Length) <= 350);
    }

    [Fact]
    public void A_chunk_larger_than_the_window_is_a_window_of_its_own()
    {
        var windows = TemporalFeatureStream.PlanWindows(Chunks, seed: 7, epoch: 0, windowBytes: 10);

        windows.Should().HaveCount(Chunks.Length).And.OnlyContain(w => w.Count == 1);
    }

    [Fact]
    public void The_order_depends_on_seed_and_epoch_only_not_on_the_order_chunks_were_indexed()
    {
        var order = Names(TemporalFeatureStream.PlanWindows(Chunks, 7, 3, 350));

        Names(TemporalFeatureStream.PlanWindows([.. Chunks.Reverse()], 7, 3, 350)).Should().Equal(order, "the indexing order does not matter");
        Names(TemporalFeatureStream.PlanWindows(Chunks, 7, 4, 350)).Should().NotEqual(order, "each epoch has its own order");
        Names(TemporalFeatureStream.PlanWindows(Chunks, 8, 3, 350)).Should().NotEqual(order, "each seed has its own order");
        TemporalFeatureStream.WindowSeed(7, 0).Should().NotBe(TemporalFeatureStream.WindowSeed(7, 1));

        static string[] Names(IReadOnlyList<IReadOnlyList<FeatureChunk>> windows) => [.. windows.SelectMany(w => w).Select(c => c.Blob)];
    }
}
