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

/// <summary>The server's message router and steps against a real Azurite and the real engine, without a host around it.</summary>
public sealed class MessageRouterTests
{
    [Fact]
    public async Task A_vanilla_step_returns_the_gradient_an_in_process_computation_gives()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (activations, labels, shape) = run.Batch(16, salt: 1);

        var text = await run.PrepareAsync("alpha", 0, FrameKind.Train, activations, shape, labels);
        var outcome = await router.ProcessAsync(text, 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Completed, outcome.Detail);

        var reply = await run.NextReplyAsync("alpha");
        reply.Kind.Should().Be(ReplyKind.Gradients);
        var gradient = (await run.ReadReplyAsync(reply)).Should().ContainSingle().Subject;
        gradient.Shape.Should().Equal(shape);

        using var direct = new ServerModel(run.Manifest, TorchSharp.torch.CPU);
        var (loss, expected) = direct.TrainStep(activations, labels, 16);
        reply.Loss.Should().BeApproximately(loss, 1e-9);
        gradient.Values.Should().Equal(expected);
        expected.Should().Contain(v => v != 0f, "a real gradient is not all zeros");
    }

    [Fact]
    public async Task Duplicate_delivery_of_every_message_applies_each_batch_once_and_answers_each_copy()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var losses = new List<double>();
        for (var seq = 0; seq < 4; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: seq);
            var text = await run.PrepareAsync("alpha", seq, FrameKind.Train, a, shape, y);
            (await router.ProcessAsync(text, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
            var first = await run.NextReplyAsync("alpha");
            (await router.ProcessAsync(text, 2, CancellationToken.None)).Detail.Should().Contain("replay");
            var second = await run.NextReplyAsync("alpha");
            second.Sha256.Should().Be(first.Sha256, "the replay is answered from the stored gradient");
            second.Loss.Should().Be(first.Loss);
            losses.Add(first.Loss!.Value);
        }
        var leased = await runs.OpenAsync(run.Manifest.RunId, CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(4);
        leased.State.Watermarks["alpha"].Should().Be(3);
        leased.State.Step.Should().Be(4);
    }

    [Fact]
    public async Task A_restarted_service_resumes_from_checkpoint_and_journal_without_reapplying()
    {
        await using var run = await RunHarness.StartAsync();
        var texts = new List<string>();
        for (var seq = 0; seq < 30; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: 100 + seq);
            texts.Add(await run.PrepareAsync("beta", seq, FrameKind.Train, a, shape, y));
        }
        byte[] uninterrupted;
        {
            // Reference: one router applies all 30.
            await using var reference = await RunHarness.StartAsync(runId: "run-1");
            var (referenceRouter, referenceRuns) = reference.CreateRouter();
            await using var __ = referenceRuns;
            for (var seq = 0; seq < 30; seq++)
            {
                var (a, y, shape) = reference.Batch(8, salt: 100 + seq);
                var t = await reference.PrepareAsync("beta", seq, FrameKind.Train, a, shape, y);
                (await referenceRouter.ProcessAsync(t, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
            }
            uninterrupted = (await referenceRuns.OpenAsync("run-1", CancellationToken.None))!.Model.SaveWeights();
        }

        var (first, firstRuns) = run.CreateRouter("instance-a");
        for (var seq = 0; seq < 27; seq++) (await first.ProcessAsync(texts[seq], 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        // 27 applied: checkpoint at 25, two journal entries after it. The instance vanishes without a checkpoint.
        await firstRuns.DisposeAsync();

        var (second, secondRuns) = run.CreateRouter("instance-a");
        await using var _ = secondRuns;
        (await second.ProcessAsync(texts[26], 2, CancellationToken.None)).Detail.Should().Contain("replay", "sequence 26 was applied before the restart");
        for (var seq = 27; seq < 30; seq++) (await second.ProcessAsync(texts[seq], 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var leased = await secondRuns.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(30);
        WeightsOf(leased.Model.SaveWeights()).Should().Equal(WeightsOf(uninterrupted));
    }

    [Fact]
    public async Task Bad_messages_are_poisoned_with_a_reason_while_other_hospitals_keep_training()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, y, shape) = run.Batch(8, salt: 5);

        // Tampered: flip one bit of the sealed blob after upload.
        var tampered = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        await run.TamperFeaturesAsync("alpha", 0);
        var tamperedOutcome = await router.ProcessAsync(tampered, 1, CancellationToken.None);

        var malformed = await router.ProcessAsync("{\"v\":1,\"run\":", 1, CancellationToken.None);
        var wrongRun = await router.ProcessAsync(tampered.Replace("\"run-1\"", "\"no-such-run\"", StringComparison.Ordinal), 1, CancellationToken.None);
        var frame = TensorFrame.Encode(new FrameTensor(Core.Contract.ElementType.Float32, shape, a),
            new FrameTensor(Core.Contract.ElementType.Float32, [8, 1], y));
        var layout = TensorFrame.ReadLayout(frame)[0];
        BitConverter.TryWriteBytes(frame.AsSpan(layout.DataOffset + 3 * 4, 4), float.NaN).Should().BeTrue();
        var nanOutcome = await router.ProcessAsync(await run.PrepareRawAsync("alpha", 1, FrameKind.Train, frame), 1, CancellationToken.None);
        var oversized = await router.ProcessAsync(new string(' ', 70 * 1024), 1, CancellationToken.None);
        long[] wrongShape = [8, 63];
        var shapeOutcome = await router.ProcessAsync(await run.PrepareAsync("alpha", 2, FrameKind.Train, a[..(8 * 63)], wrongShape, y), 1,
            CancellationToken.None);

        // A valid batch from another hospital in between is trained and answered.
        var valid = await router.ProcessAsync(await run.PrepareAsync("beta", 0, FrameKind.Train, a, shape, y), 1, CancellationToken.None);
        valid.Kind.Should().Be(OutcomeKind.Completed);
        (await run.NextReplyAsync("beta")).Kind.Should().Be(ReplyKind.Gradients);

        var outcomes = new[] { tamperedOutcome, malformed, wrongRun, nanOutcome, oversized, shapeOutcome };
        outcomes.Should().OnlyContain(o => o.Kind == OutcomeKind.Rejected);
        tamperedOutcome.Detail.Should().MatchRegex("(?i)sha-256|tamper|authentic");
        wrongRun.Detail.Should().Contain("no-such-run");
        nanOutcome.Detail.Should().MatchRegex("(?i)nan|non-finite");
        shapeOutcome.Detail.Should().Contain("shape");
        // The hospital hears about its rejected messages instead of waiting.
        (await run.NextReplyAsync("alpha")).Kind.Should().Be(ReplyKind.Rejected);

        outcomes.Should().OnlyContain(o => !string.IsNullOrWhiteSpace(o.Detail), "the reason is what the poison record says");
    }

    [Fact]
    public async Task A_repeated_evaluate_message_is_answered_with_the_predictions_already_sent_never_sealed_again()
    {
        // Found by `splitfn-local chaos`: a duplicate evaluate sealed new predictions under the same blob name while the
        // hospital was reading the first answer, which then failed the digest it had been sent (agent exit 13).
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, _, shape) = run.Batch(8, salt: 5);
        var text = await run.PrepareAsync("alpha", 0, FrameKind.Evaluate, a, shape, labels: null);
        (await router.ProcessAsync(text, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var first = await run.NextReplyAsync("alpha");
        var blob = run.Storage.GetBlobContainerClient(StorageNames.HospitalContainer("alpha")).GetBlobClient(first.Blob);
        var etag = (await blob.GetPropertiesAsync()).Value.ETag;
        first.Model.Should().Be(new ModelVersion { Mode = TrainingMode.Vanilla, Step = 0, Checkpoint = 0, Final = false }, "no step was applied yet");
        // The model moves on (one step) before the copy arrives: the stored answer keeps the version of the model that made it.
        var (b, y, trainShape) = run.Batch(8, salt: 6);
        var step = await run.PrepareAsync("alpha", 1, FrameKind.Train, b, trainShape, y);
        (await router.ProcessAsync(step, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        (await run.NextReplyAsync("alpha")).Kind.Should().Be(ReplyKind.Gradients);

        var again = await router.ProcessAsync(text, 2, CancellationToken.None);
        again.Kind.Should().Be(OutcomeKind.Completed);
        again.Detail.Should().Contain("already sent");
        var second = await run.NextReplyAsync("alpha");
        (second.Blob, second.Sha256, second.Length, second.Model).Should().Be((first.Blob, first.Sha256, first.Length, first.Model));
        (await blob.GetPropertiesAsync()).Value.ETag.Should().Be(etag, "the blob the hospital may be reading is not written again");
        (await run.ReadReplyAsync(second)).Should().ContainSingle().Which.Shape[0].Should().Be(8);
    }

    [Fact]
    public async Task Pipelined_train_steps_delivered_out_of_order_are_each_applied_once_in_arrival_order()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var texts = new List<string>();
        for (var seq = 0; seq < 4; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: seq);
            texts.Add(await run.PrepareAsync("alpha", seq, FrameKind.Train, a, shape, y));
        }
        // A pipelined agent has several steps in flight; a redelivery or a retry after a failed commit brings a later one
        // first. The earlier one is then applied (late, in arrival order), never taken for a replay because the watermark passed it.
        foreach (var i in new[] { 1, 0, 3, 2 })
        {
            var outcome = await router.ProcessAsync(texts[i], 1, CancellationToken.None);
            outcome.Kind.Should().Be(OutcomeKind.Completed, outcome.Detail);
            outcome.Detail.Should().NotContain("replay", $"#{i} arrives for the first time");
            (await run.NextReplyAsync("alpha")).Should().Match<ReplyMessage>(r => r.Sequence == i && r.Kind == ReplyKind.Gradients);
        }
        foreach (var i in new[] { 0, 1, 2, 3 })
        {
            (await router.ProcessAsync(texts[i], 2, CancellationToken.None)).Detail.Should().Contain("replay", $"#{i} was applied already");
            (await run.NextReplyAsync("alpha")).Should().Match<ReplyMessage>(r => r.Sequence == i && r.Kind == ReplyKind.Gradients);
        }
        var leased = await runs.OpenAsync(run.Manifest.RunId, CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(4);
        leased.State.Watermarks["alpha"].Should().Be(3);
        leased.State.RecentBatches.Select(b => b.Sequence).Should().Equal([1L, 0, 3, 2], "each step applied once, in arrival order");
    }

    [Fact]
    public async Task Temporal_chunks_delivered_out_of_order_are_all_indexed_and_an_earlier_chunk_is_not_taken_for_a_replay()
    {
        await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, hospitals: ["alpha"], batchSize: 8, epochs: 1);
        var (router, runs) = run.CreateRouter();
        var texts = new List<string>();
        for (var chunk = 0; chunk < 3; chunk++)
        {
            var (a, y, shape) = run.Batch(16, salt: chunk);
            texts.Add(await run.PrepareAsync("alpha", chunk, FrameKind.Chunk, a, shape, y));
        }
        // The agent does not await chunks one by one: a redelivery after a kill or an outage's re-queue brings chunk 2 first
        // (found by `splitfn-local chaos`: chunks 0 and 1 were then answered as replays, never indexed, and `done` waited forever).
        foreach (var i in new[] { 2, 0, 1, 0 }) (await router.ProcessAsync(texts[i], 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var outcome = await router.ProcessToEndAsync(run.DoneMessage("alpha", 3, 3), 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Completed, outcome.Detail);
        outcome.Detail.Should().Contain("1 epochs");
        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.Chunks.Select(c => c.Sequence).Should().BeEquivalentTo(new long[] { 0, 1, 2 }, "each chunk indexed once, the repeated chunk 0 answered "
            + "from the record");
        leased.State.Epochs.Single().Samples.Should().Be(48);
        await runs.DisposeAsync();
    }

    [Fact]
    public async Task Temporal_epochs_after_the_first_read_cached_chunks_not_storage_and_train_the_same_batches()
    {
        // Two chunks per hospital, windows of one chunk. With a cache, every chunk is decrypted once: the chunk blobs are
        // deleted after the first epoch and the later epochs still train. Without one, the same deletion fails the next
        // epoch. Both end with the weights of a run that deleted nothing and kept no cache.
        const long window = 30_000;
        async Task<(byte[]? Weights, MessageOutcome Outcome)> TrainAsync(long cacheBytes, bool deleteChunksAfterEpoch1)
        {
            await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, hospitals: ["alpha", "beta"], batchSize: 8, epochs: 4);
            var (router, runs) = run.CreateRouter("cache-instance", temporalWindowBytes: window, temporalCacheBytes: cacheBytes);
            await run.SendChunksAsync(router, chunks: 2, samples: 150);
            (await router.ProcessAsync(run.DoneMessage("alpha", 2, 2), 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
            var last = run.DoneMessage("beta", 2, 2);
            var outcome = await router.ProcessAsync(last, 1, CancellationToken.None);
            outcome.Kind.Should().Be(OutcomeKind.Continue, outcome.Detail);
            var leased = await runs.OpenAsync("run-1", CancellationToken.None);
            if (deleteChunksAfterEpoch1)
            {
                foreach (var chunk in leased!.State.Chunks)
                {
                    await run.Storage.GetBlobContainerClient(StorageNames.HospitalContainer(chunk.Hospital)).GetBlobClient(chunk.Blob).DeleteAsync();
                }
            }
            try
            {
                outcome = await router.ProcessToEndAsync(last, 1, CancellationToken.None);
            }
            catch (Exception e) when (deleteChunksAfterEpoch1 && cacheBytes == 0)
            {
                await runs.DisposeAsync();
                return (null, MessageOutcome.Rejected(e.Message));
            }
            leased = await runs.OpenAsync("run-1", CancellationToken.None);
            var weights = outcome.Kind == OutcomeKind.Completed ? leased!.Model.SaveWeights() : null;
            await runs.DisposeAsync();
            return (weights, outcome);
        }

        var reference = await TrainAsync(cacheBytes: 0, deleteChunksAfterEpoch1: false);
        reference.Outcome.Kind.Should().Be(OutcomeKind.Completed, reference.Outcome.Detail);
        var cached = await TrainAsync(DecryptedChunkCache.DefaultBudgetBytes, deleteChunksAfterEpoch1: true);
        cached.Outcome.Kind.Should().Be(OutcomeKind.Completed, "epochs 2-4 read every chunk from the cache: " + cached.Outcome.Detail);
        WeightsOf(cached.Weights!).Should().Equal(WeightsOf(reference.Weights!), "the cache changes where a chunk comes from, not the batches");
        var uncached = await TrainAsync(cacheBytes: 0, deleteChunksAfterEpoch1: true);
        uncached.Weights.Should().BeNull("without a cache every epoch reads the chunks from storage, and they are gone");
    }

    [Fact]
    public async Task Temporal_training_interrupted_and_resumed_ends_with_the_weights_of_an_uninterrupted_run()
    {
        // A window smaller than one 150-sample chunk: each chunk streams as its own window and batches of 8 span windows.
        const long window = 30_000;
        async Task<byte[]> TrainAsync(bool interrupt)
        {
            await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, hospitals: ["alpha", "beta"], batchSize: 8, epochs: 8);
            var (router, runs) = run.CreateRouter("temporal-instance", temporalWindowBytes: window);
            await run.SendChunksAsync(router, chunks: 2, samples: 150);
            const int seq = 2;
            (await router.ProcessAsync(run.DoneMessage("alpha", seq, 2), 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
            var last = run.DoneMessage("beta", seq, 2);
            if (interrupt)
            {
                // Stop the instance as soon as the first epoch's checkpoint exists, then start a fresh one.
                using var cts = new CancellationTokenSource();
                var store = runs.Store;
                var watcher = Task.Run(async () =>
                {
                    while ((await store.ListCheckpointsAsync("run-1", CancellationToken.None)).Count < 3) await Task.Delay(1);
                    await cts.CancelAsync();
                });
                var act = async () => await router.ProcessToEndAsync(last, 1, cts.Token);
                await act.Should().ThrowAsync<OperationCanceledException>();
                await watcher;
                await runs.DisposeAsync();
                (router, runs) = run.CreateRouter("temporal-instance", temporalWindowBytes: window);
            }
            var outcome = await router.ProcessToEndAsync(last, 2, CancellationToken.None);
            outcome.Detail.Should().Contain("8 epochs");
            var leased = await runs.OpenAsync("run-1", CancellationToken.None);
            leased!.State.EpochsCompleted.Should().Be(8);
            leased.State.Epochs.Should().OnlyContain(e => e.Samples == 600, "every epoch streams each of the 4 chunks' 150 samples once");
            leased.State.TemporalWindowBytes.Should().Be(window);
            var weights = leased.Model.SaveWeights();
            await runs.DisposeAsync();
            return weights;
        }

        var uninterrupted = await TrainAsync(interrupt: false);
        var resumed = await TrainAsync(interrupt: true);
        WeightsOf(resumed).Should().Equal(WeightsOf(uninterrupted));
    }

    // The state dict's tensors as one flat list (byte equality of pickles would also compare storage names).
    internal static List<float> WeightsOf(byte[] state, Core.Model.Network? into = null)
    {
        using var network = into ?? Core.Model.ModelCatalog.LdlMlp.BuildServer([64]);
        network.LoadState(state);
        var all = new List<float>();
        foreach (var name in network.StateNames)
        {
            using var t = network.GetState(name);
            all.AddRange(t.ToFloats());
        }
        return all;
    }
}
