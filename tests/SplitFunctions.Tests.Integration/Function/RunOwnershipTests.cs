using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>Who owns a run and when: idle release with its checkpoint, and a lease lost in the middle of a temporal epoch.</summary>
public sealed class RunOwnershipTests
{
    [Fact]
    public async Task A_dropped_run_is_reopened_only_after_its_commits_in_flight_have_settled()
    {
        // A commit still uploading when its run is dropped (the next message failed under an outage, with commits
        // overlapping compute) could land its reply blob after a reloaded run had applied the step again and announced
        // its own blob under the same name: the hospital then reads bytes that fail the digest it was sent (exit 13).
        await using var run = await RunHarness.StartAsync();
        var (_, runs) = run.CreateRouter("instance-a");
        await using var _ = runs;
        var leased = (await runs.OpenAsync("run-1", CancellationToken.None))!;
        var inFlight = new TaskCompletionSource();
        leased.PendingCommit = inFlight.Task;
        await leased.Gate.WaitAsync();
        var abandon = runs.AbandonAsync(leased);
        await Task.Delay(500);
        abandon.IsCompleted.Should().BeFalse("a commit of the run is still in flight");
        leased.IsClosed.Should().BeFalse();
        (await runs.OpenAsync("run-1", CancellationToken.None)).Should().BeSameAs(leased,
            "no run is loaded from durable state meanwhile: the next message waits for this one's gate");
        inFlight.SetException(new IOException("storage went away"));
        await abandon;
        leased.IsClosed.Should().BeTrue();
        leased.Gate.Release();
        (await runs.OpenAsync("run-1", CancellationToken.None)).Should().NotBeNull().And.NotBeSameAs(leased, "reloaded from durable state");
    }

    [Fact]
    public async Task An_idle_run_is_checkpointed_and_released_so_another_instance_continues_without_replay()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter("instance-a");
        await using var _ = runs;
        for (var seq = 0; seq < 3; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: seq);
            (await router.ProcessAsync(await run.PrepareAsync("alpha", seq, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
                .Be(OutcomeKind.Completed);
        }
        var store = runs.Store;
        (await store.LoadLatestAsync("run-1", CancellationToken.None)).Checkpoint.Should().BeNull("3 steps are fewer than the checkpoint interval");

        // Not idle yet: kept, lease and all.
        await runs.ReleaseIdleAsync(all: false, CancellationToken.None);
        var (_, other) = run.CreateRouter("instance-b");
        await using var __ = other;
        (await other.OpenAsync("run-1", CancellationToken.None)).Should().BeNull("instance-a still holds the run");

        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        var weights = leased!.Model.SaveWeights();
        leased.LastUsed = DateTimeOffset.UtcNow - LeasedRuns.IdleRelease - TimeSpan.FromSeconds(1);
        await runs.ReleaseIdleAsync(all: false, CancellationToken.None);

        var (checkpoint, _) = await store.LoadLatestAsync("run-1", CancellationToken.None);
        checkpoint.Should().NotBeNull("releasing a run writes what was applied since the last checkpoint");
        checkpoint!.State.Step.Should().Be(3);
        checkpoint.State.BatchesApplied.Should().Be(3);
        var taken = await other.OpenAsync("run-1", CancellationToken.None);
        taken.Should().NotBeNull("the lease was released, not left to expire");
        taken!.State.Watermarks["alpha"].Should().Be(2);
        taken.SinceCheckpoint.Should().Be(0, "nothing left to replay from the journal");
        MessageRouterTests.WeightsOf(taken.Model.SaveWeights()).Should().Equal(MessageRouterTests.WeightsOf(weights));
    }

    [Fact]
    public async Task Losing_the_lease_during_a_temporal_epoch_records_nothing_more_and_the_new_owner_ends_with_the_uninterrupted_weights()
    {
        var uninterrupted = await TemporalAsync(breakLease: false);
        var resumed = await TemporalAsync(breakLease: true);
        MessageRouterTests.WeightsOf(resumed).Should().Equal(MessageRouterTests.WeightsOf(uninterrupted));

        static async Task<byte[]> TemporalAsync(bool breakLease)
        {
            await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, hospitals: ["alpha", "beta"], batchSize: 4, epochs: 20);
            var store = new RunStore(run.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 50);
            var frames = run.Frames;
            // Renewing every second so the loss is noticed within an epoch or two.
            var runs = new LeasedRuns(store, frames, TorchSharp.torch.CPU, "instance-a", NullLogger<LeasedRuns>.Instance, TimeSpan.FromSeconds(1));
            var router = MessageRouter.Create(runs, frames, new StepTimeline());
            await run.SendChunksAsync(router, chunks: 2, samples: 400);
            (await router.ProcessAsync(run.DoneMessage("alpha", 2, 2), 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
            var last = run.DoneMessage("beta", 2, 2);
            if (!breakLease)
            {
                (await router.ProcessToEndAsync(last, 1, CancellationToken.None)).Detail.Should().Contain("20 epochs");
                var weights = (await runs.OpenAsync("run-1", CancellationToken.None))!.Model.SaveWeights();
                await runs.DisposeAsync();
                return weights;
            }

            // Another instance takes the run while instance-a trains: break its lease and acquire it under instance-b's id.
            var training = router.ProcessToEndAsync(last, 1, CancellationToken.None);
            while ((await store.ListCheckpointsAsync("run-1", CancellationToken.None)).Count < 4) await Task.Delay(5);
            var leaseBlob = store.Container.GetBlobClient(RunLayout.Lease("run-1"));
            await leaseBlob.GetBlobLeaseClient(RunLease.LeaseIdFor("instance-a", "run-1")).BreakAsync(TimeSpan.Zero);
            await leaseBlob.GetBlobLeaseClient(RunLease.LeaseIdFor("instance-b", "run-1")).AcquireAsync(RunLease.Duration);
            var lostAt = (await store.ListCheckpointsAsync("run-1", CancellationToken.None)).Max();

            var outcome = await training;
            outcome.Kind.Should().Be(OutcomeKind.Deferred, "the message goes back to the queue for the instance that owns the run now");
            // One epoch per delivery: the break lands during an epoch ("lease lost") or between two, when the next delivery
            // finds the run held by instance-b. Either way the message is deferred and nothing more is recorded.
            outcome.Detail.Should().ContainAny("lease lost", "being trained by another instance");
            var after = await store.ListCheckpointsAsync("run-1", CancellationToken.None);
            after.Max().Should().BeLessThanOrEqualTo(lostAt + 1, "at most the checkpoint already being written when the lease broke; no epoch after the loss "
                + "is recorded");
            await runs.DisposeAsync();

            var (next, nextRuns) = run.CreateRouter("instance-b");
            (await next.ProcessToEndAsync(last, 2, CancellationToken.None)).Detail.Should().Contain("20 epochs");
            var resumed = await nextRuns.OpenAsync("run-1", CancellationToken.None);
            resumed!.State.EpochsCompleted.Should().Be(20);
            resumed.State.Epochs.Select(e => e.Epoch).Should().Equal(Enumerable.Range(1, 20), "each epoch recorded once, in order");
            var result = resumed.Model.SaveWeights();
            await nextRuns.DisposeAsync();
            return result;
        }
    }
}
