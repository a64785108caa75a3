using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// Vanilla steps whose commits (reply blob, journal entry, reply) overlap the next step's compute, as drain mode runs them:
/// the journal stays in step order, each step is answered once, and a checkpoint holds exactly the journaled steps, so a
/// second instance rebuilds the live model from checkpoint + journal (invariants 3, 4, 7).
/// </summary>
public sealed class OverlappedCommitTests
{
    [Fact]
    public async Task Overlapped_steps_journal_in_order_and_a_second_instance_rebuilds_exactly_the_live_model()
    {
        await using var run = await RunHarness.StartAsync(hospitals: ["alpha", "beta"], batchSize: 8);
        var (router, runs) = run.CreateRouter("instance-a");
        // 30 steps cross the checkpoint at 25: the 25th takes a copy of the run under the gate, written by its commit while
        // the 26th computes, so the checkpoint must not see the 26th.
        const int Steps = 30;
        PendingOutcome? previous = null;
        for (var i = 0; i < Steps; i++)
        {
            var hospital = i % 2 == 0 ? "alpha" : "beta";
            var (a, y, shape) = run.Batch(8, salt: i);
            var text = await run.PrepareAsync(hospital, i / 2, FrameKind.Train, a, shape, y);
            // Begin the next message before the one before it is durable, two in flight as the drain loop keeps them.
            var pending = await router.BeginAsync(text, 1, CancellationToken.None);
            if (previous is not null) (await previous.Outcome).Kind.Should().Be(OutcomeKind.Completed);
            previous = pending;
        }
        (await previous!.Outcome).Kind.Should().Be(OutcomeKind.Completed);

        var live = (await runs.OpenAsync("run-1", CancellationToken.None))!;
        live.State.Step.Should().Be(Steps);
        live.PendingCommit.IsCompletedSuccessfully.Should().BeTrue("the last commit waited for every one before it");
        var liveWeights = live.Model.SaveWeights();
        var journal = await runs.Store.ReadJournalAsync("run-1", 25, CancellationToken.None);
        journal.Select(e => (e.Step, e.Hospital, e.Sequence)).Should()
            .Equal(Enumerable.Range(25, 5).Select(s => ((long)s, s % 2 == 0 ? "alpha" : "beta", (long)(s / 2))),
            "entries are numbered and written in the order the steps were applied");
        var (checkpoint, _) = await runs.Store.LoadLatestAsync("run-1", CancellationToken.None);
        checkpoint!.State.Step.Should().Be(25, "the 25th entry checkpoints, with nothing applied after it");
        checkpoint.State.BatchesApplied.Should().Be(25);
        await runs.DisposeAsync(); // releases the lease without a checkpoint: the rest is in the journal

        var (_, other) = run.CreateRouter("instance-b");
        await using var __ = other;
        var rebuilt = (await other.OpenAsync("run-1", CancellationToken.None))!;
        rebuilt.State.BatchesApplied.Should().Be(Steps);
        rebuilt.State.Watermarks.Should().Equal(new Dictionary<string, long> { ["alpha"] = 14, ["beta"] = 14 });
        MessageRouterTests.WeightsOf(rebuilt.Model.SaveWeights()).Should().Equal(MessageRouterTests.WeightsOf(liveWeights),
            "checkpoint + journal replay reproduce the model the overlapped steps trained");
        for (var seq = 0; seq < Steps / 2; seq++)
        {
            foreach (var hospital in new[] { "alpha", "beta" }) (await run.NextReplyAsync(hospital)).Sequence.Should().Be(seq, "each step is answered once, "
                + "in order");
        }
    }
}
