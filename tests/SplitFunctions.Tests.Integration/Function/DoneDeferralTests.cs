using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// A temporal `done` that counts chunks which never come (issue 31): a `done` counting more chunks than its sequence allows
/// was already rejected; one within its sequence but beyond what was sent waited for ever (re-queued every 2 s). It now
/// waits while chunks keep arriving and is rejected after <see cref="TemporalChunks.MaxDoneDeferrals"/> deliveries without one.
/// </summary>
public sealed class DoneDeferralTests
{
    [Fact]
    public async Task A_done_counting_chunks_never_sent_waits_a_bounded_number_of_deliveries_and_a_late_chunk_resets_the_count()
    {
        await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, epochs: 1);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        await run.SendChunksAsync(router, chunks: 1, samples: 8);
        // alpha claims 3 chunks in its done #10: room for them below #10, but only chunk #0 was sent.
        var done = run.DoneMessage("alpha", 10, chunkCount: 3);
        for (var i = 0; i < TemporalChunks.MaxDoneDeferrals - 1; i++)
            (await router.ProcessAsync(done, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Deferred);

        // A chunk arrives late (the agent does not wait between its messages): the wait starts again.
        var (a, y, shape) = run.Batch(8, salt: 77);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 4, FrameKind.Chunk, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        for (var i = 0; i < TemporalChunks.MaxDoneDeferrals; i++)
            (await router.ProcessAsync(done, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Deferred, $"delivery {i + 1} after the late chunk");

        var rejected = await router.ProcessAsync(done, 1, CancellationToken.None);
        rejected.Kind.Should().Be(OutcomeKind.Rejected);
        rejected.Detail.Should().Contain("says it sent 3 chunks, but only 2 arrived").And.Contain("never sent");
        (await run.ReplyToAsync("alpha", 10)).Kind.Should().Be(ReplyKind.Rejected);
        (await router.ProcessAsync(run.DoneMessage("alpha", 11, chunkCount: 2), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed, "its true done is taken");
    }
}
