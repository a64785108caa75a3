using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;
using TorchSharp;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// Issue 31's probes against the real router, engine and Azurite: a hospital with a valid key (or anyone with write access
/// to storage) costs nothing before its message is authenticated and its sizes checked, and no message leaves the server's
/// model changed unless the whole message succeeded.
/// </summary>
public sealed class InsiderTests
{
    private static readonly long[] OutputShape = [8, 32];

    [Fact]
    public async Task A_forged_message_read_ahead_downloads_nothing_and_a_blob_larger_than_its_announced_length_is_refused_before_download()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, y, shape) = run.Batch(8, salt: 1);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);

        // Queued behind a valid message, a message with a made-up MAC used to be read ahead in full before its turn.
        var genuine = await run.PrepareAsync("alpha", 1, FrameKind.Train, a, shape, y);
        var forged = MessageCodec.Serialize(MessageCodec.ParseFrame(genuine) with { Mac = new string('0', 64) });
        var before = run.Frames.BytesDownloaded;
        router.Prefetch(forged, CancellationToken.None);
        await Task.Delay(1500);
        run.Frames.BytesDownloaded.Should().Be(before, "a message whose MAC does not verify is never downloaded");
        router.Prefetch(genuine, CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (run.Frames.BytesDownloaded == before && DateTime.UtcNow < deadline) await Task.Delay(50);
        run.Frames.BytesDownloaded.Should().BeGreaterThan(before, "the genuine message is still read ahead");

        // The blob grew after its message was sealed: its stored size, not its content, decides.
        var grownText = await run.PrepareAsync("alpha", 2, FrameKind.Train, a, shape, y);
        var blob = run.Storage.GetBlobContainerClient(StorageNames.HospitalContainer("alpha")).GetBlobClient(StorageNames.FrameBlob("features", "run-1", 2));
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        await blob.UploadReplacingAsync(BinaryData.FromBytes([.. bytes, .. new byte[4 << 20]]));
        before = run.Frames.BytesDownloaded;
        var grown = await router.ProcessAsync(grownText, 1, CancellationToken.None);
        grown.Kind.Should().Be(OutcomeKind.Rejected);
        grown.Detail.Should().Contain("but its message announced").And.Contain("nothing was downloaded");
        run.Frames.BytesDownloaded.Should().Be(before);
    }

    [Fact]
    public async Task A_batch_larger_than_the_manifest_s_is_refused_and_a_huge_one_is_not_even_downloaded()
    {
        await using var run = await RunHarness.StartAsync(batchSize: 16);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a17, y17, shape17) = run.Batch(17, salt: 2);
        var seventeen = await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a17, shape17, y17), 1, CancellationToken.None);
        seventeen.Kind.Should().Be(OutcomeKind.Rejected);
        seventeen.Detail.Should().MatchRegex("more than 1040 elements|at most 16", "16 rows of 64 activations and a label each");

        var (huge, yHuge, hugeShape) = run.Batch(4096, salt: 3);
        var text = await run.PrepareAsync("alpha", 1, FrameKind.Train, huge, hugeShape, yHuge);
        var before = run.Frames.BytesDownloaded;
        var outcome = await router.ProcessAsync(text, 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Rejected);
        outcome.Detail.Should().Contain("nothing was downloaded");
        run.Frames.BytesDownloaded.Should().Be(before);
        (await run.ReplyToAsync("alpha", 1)).Kind.Should().Be(ReplyKind.Rejected);

        var (a, y, shape) = run.Batch(16, salt: 4);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 2, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed, "the run trains on");
    }

    [Fact]
    public async Task A_backward_leg_of_huge_output_gradients_is_refused_before_the_optimizer_and_the_next_hospital_trains_on()
    {
        await using var run = await RunHarness.StartAsync(TrainingMode.UShaped);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, _, shape) = run.Batch(8, salt: 5);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Forward, a, shape, null), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var huge = Enumerable.Repeat(3e38f, 8 * 32).ToArray();
        var outcome = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 2, huge, OutputShape), 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Rejected);
        outcome.Detail.Should().Contain("beyond the");

        (await router.ProcessAsync(await run.PrepareAsync("beta", 1, FrameKind.Forward, a, shape, null), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var small = Enumerable.Repeat(0.01f, 8 * 32).ToArray();
        (await router.ProcessAsync(await run.PrepareBackwardAsync("beta", 2, small, OutputShape), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed, "beta's legs are not refused for alpha's values");
        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(1);
        leased.Model.IsFinite().Should().BeTrue();
    }

    [Fact]
    public async Task A_rejected_forward_leg_leaves_no_open_leg_so_its_backward_leg_is_refused_and_the_journal_reopens_after_a_kill()
    {
        await using var run = await RunHarness.StartAsync(TrainingMode.UShaped);
        // All-3e38 activations: the body's outputs overflow, so the reply could never be sealed. The leg used to stay open
        // (watermark advanced), its backward leg was applied and journaled, and the journal then failed to reopen.
        var (router, runs) = run.CreateRouter("instance-a");
        var huge = Enumerable.Repeat(3e38f, 8 * 64).ToArray();
        var forward = await router.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Forward, huge, [8, 64], null), 1, CancellationToken.None);
        forward.Kind.Should().Be(OutcomeKind.Rejected);
        var backward = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 2, new float[8 * 32], OutputShape), 1, CancellationToken.None);
        backward.Kind.Should().Be(OutcomeKind.Rejected, "the rejected forward leg never opened");
        backward.Detail.Should().Contain("none is open");

        // kill -9: the instance vanishes; another opens the run from the journal and trains on.
        await runs.DisposeAsync();
        var (next, nextRuns) = run.CreateRouter("instance-b");
        await using var _ = nextRuns;
        var (ok, _, shape) = run.Batch(8, salt: 6);
        (await next.ProcessAsync(await run.PrepareAsync("alpha", 3, FrameKind.Forward, ok, shape, null), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        (await next.ProcessAsync(await run.PrepareBackwardAsync("alpha", 4, Enumerable.Repeat(0.01f, 8 * 32).ToArray(), OutputShape), 1,
            CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var leased = await nextRuns.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(1);
        leased.State.OpenForwards.Should().BeEmpty();
        leased.Model.IsFinite().Should().BeTrue();
    }

    [Fact]
    public async Task A_vanilla_step_that_overflows_is_rejected_with_its_reason_and_leaves_the_run_as_after_the_step_before()
    {
        // SGD at the manifest's largest learning rate: a first step of large (in-bound) values leaves huge but finite weights,
        // and the same values again overflow the loss and the weights. That second step must leave no trace.
        await using var run = await RunHarness.StartAsync(configure: m => m with { Optimizer = OptimizerSettings.Sgd(10) });
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var a = Enumerable.Repeat(1e5f, 8 * 64).ToArray();
        var y = Enumerable.Repeat(-1e6f, 8).ToArray();
        using var reference = new ServerModel(run.Manifest, torch.CPU);
        reference.TrainStep(a, y, 8);
        var afterFirst = MessageRouterTests.WeightsOf(reference.SaveWeights());
        reference.IsFinite().Should().BeTrue("the probe's first step must be accepted");
        var overflows = () =>
        {
            var (secondLoss, _) = reference.TrainStep(a, y, 8);
            return double.IsFinite(secondLoss) && reference.IsFinite();
        };
        overflows.Should().Throw<NonFiniteValueException>("the probe's second step must overflow");

        (await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, [8, 64], y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var outcome = await router.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Train, a, [8, 64], y), 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Rejected);
        outcome.Detail.Should().MatchRegex("NaN|infinite|the step was undone");
        (await run.ReplyToAsync("alpha", 1)).Kind.Should().Be(ReplyKind.Rejected);

        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(1);
        leased.State.Watermarks["alpha"].Should().Be(0, "the rejected message did not advance the watermark");
        MessageRouterTests.WeightsOf(leased.Model.SaveWeights()).Should().Equal(afterFirst);
    }

    [Fact]
    public async Task A_stray_blob_under_the_journal_is_skipped_and_the_run_reopens()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter("instance-a");
        var (a, y, shape) = run.Batch(8, salt: 8);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var journal = run.Storage.GetBlobContainerClient(StorageNames.RunsContainer);
        await journal.GetBlobClient("run-1/journal/notes.txt").UploadReplacingAsync(BinaryData.FromString("not an entry"));
        await journal.GetBlobClient("run-1/journal/copy-of-000000000000.json").UploadReplacingAsync(BinaryData.FromString("{}"));
        await runs.DisposeAsync();

        var (next, nextRuns) = run.CreateRouter("instance-b");
        await using var _ = nextRuns;
        (await next.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed, "a stray name made long.Parse fail and the run unopenable");
        (await nextRuns.OpenAsync("run-1", CancellationToken.None))!.State.BatchesApplied.Should().Be(2);
    }

    [Fact]
    public async Task A_done_claiming_more_chunks_than_it_could_have_sent_is_rejected_and_a_deleted_chunk_names_no_other_hospital()
    {
        await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, epochs: 1);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        await run.SendChunksAsync(router, chunks: 1, samples: 8);

        // Deferred forever before: chunk sequences lie below their done's, so #1 can follow at most one chunk.
        var greedy = await router.ProcessAsync(run.DoneMessage("alpha", 1, chunkCount: 5), 1, CancellationToken.None);
        greedy.Kind.Should().Be(OutcomeKind.Rejected);
        greedy.Detail.Should().Contain("at most 1 chunks");

        // alpha deletes its chunk after it was indexed; beta's done then carries the epoch.
        await run.Storage.GetBlobContainerClient(StorageNames.HospitalContainer("alpha")).GetBlobClient(StorageNames.FrameBlob("features", "run-1", 0))
            .DeleteAsync();
        (await router.ProcessAsync(run.DoneMessage("alpha", 2, chunkCount: 1), 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var epoch = await router.ProcessAsync(run.DoneMessage("beta", 1, chunkCount: 1), 1, CancellationToken.None);
        epoch.Kind.Should().Be(OutcomeKind.Rejected);
        epoch.Detail.Should().Contain("h-alpha", "the operator's record says which chunk");
        var told = await run.ReplyToAsync("beta", 1);
        told.Kind.Should().Be(ReplyKind.Rejected);
        told.Reason.Should().Contain("temporal epoch 1").And.NotContain("alpha");
        (await runs.OpenAsync("run-1", CancellationToken.None))!.State.EpochsCompleted.Should().Be(0);
    }
}
