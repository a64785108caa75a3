using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>The function as a real process in drain mode: across a crash, two instances on one run, poisoning, bad settings.</summary>
public sealed class DrainProcessTests
{
    [Fact]
    public async Task Killing_the_drain_process_mid_run_loses_no_step_and_applies_none_twice()
    {
        await using var run = await RunHarness.StartAsync();
        var drain = FunctionProcess.Start(run, "drain", "drain-a");
        const int batches = 12;
        for (var seq = 0; seq < batches; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: seq);
            await run.Features.SendMessageAsync(await run.PrepareAsync("alpha", seq, FrameKind.Train, a, shape, y));
            if (seq == 6)
            {
                // Crash while the function works on (or has just answered) sequence 6, then start it again.
                await Task.Delay(150);
                drain.Kill();
                drain = FunctionProcess.Start(run, "drain", "drain-a");
            }
            var reply = await run.ReplyToAsync("alpha", seq, TimeSpan.FromSeconds(90));
            reply.Sequence.Should().Be(seq, drain.Output);
            reply.Kind.Should().Be(ReplyKind.Gradients);
        }
        await drain.StopAsync();
        await drain.DisposeAsync();

        // The shutdown checkpoint holds the record of every applied batch (the journal before it is pruned).
        var store = new RunStore(run.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        var (checkpoint, _) = await store.LoadLatestAsync("run-1", CancellationToken.None);
        checkpoint!.State.RecentBatches.Select(b => b.Sequence).Should().Equal(Enumerable.Range(0, batches).Select(i => (long)i), "each batch is applied "
            + "exactly once, in order");
        checkpoint.State.BatchesApplied.Should().Be(batches);
        checkpoint.State.Watermarks["alpha"].Should().Be(batches - 1);
    }

    [Fact]
    public async Task A_temporal_run_killed_more_often_than_maxDequeueCount_during_its_epochs_still_completes_and_nothing_is_poisoned()
    {
        // Found by `splitfn-local chaos`: every kill during the epochs was one more delivery of the last `done` message,
        // so five kills in one training poisoned it and the run waited at its last checkpoint for `poison retry`.
        const int epochs = 30, kills = ServerOptions.DefaultMaxDequeueCount + 1;
        await using var run = await RunHarness.StartAsync(TrainingMode.Temporal, hospitals: ["alpha"], batchSize: 8, epochs: epochs);
        for (var chunk = 0; chunk < 2; chunk++)
        {
            var (a, y, shape) = run.Batch(400, salt: chunk);
            await run.Features.SendMessageAsync(await run.PrepareAsync("alpha", chunk, FrameKind.Chunk, a, shape, y));
        }
        await run.Features.SendMessageAsync(run.DoneMessage("alpha", 2, 2));
        var settings = new Dictionary<string, string> { [FunctionSettings.VisibilityTimeoutSeconds] = "5" };
        var drain = FunctionProcess.Start(run, "drain", "drain-a", settings);
        var store = new RunStore(run.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        var log = new System.Text.StringBuilder();
        for (var kill = 0; kill < kills; kill++)
        {
            // Kill once this process has finished an epoch and the next is in flight, then start again.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (!drain.Output.Contains(": Continue: temporal epoch", StringComparison.Ordinal))
            {
                DateTime.UtcNow.Should().BeBefore(deadline, "an epoch within 90 s\n" + log + drain.Output);
                await Task.Delay(20);
            }
            await Task.Delay(50);
            drain.Kill();
            log.Append(drain.Output);
            await drain.DisposeAsync();
            drain = FunctionProcess.Start(run, "drain", "drain-a", settings);
        }
        await using (drain)
        {
            ReplyMessage done;
            try
            {
                do done = await run.NextReplyAsync("alpha", TimeSpan.FromSeconds(180));
                while (done.Sequence < 2);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}; poisoned: "
                    + $"{string.Join("; ", (await run.PoisonRecordsAsync()).Select(r => r.Reason))}\n{log}{drain.Output}", e);
            }
            done.Kind.Should().Be(ReplyKind.Accepted, log + drain.Output);
            await drain.StopAsync();
        }
        (await run.PoisonRecordsAsync()).Should().BeEmpty("no message was poisoned\n" + log);
        var (checkpoint, _) = await store.LoadLatestAsync("run-1", CancellationToken.None);
        checkpoint!.State.EpochsCompleted.Should().Be(epochs);
        checkpoint.State.Epochs.Select(e => e.Epoch).Should().Equal(Enumerable.Range(1, epochs), "each epoch recorded once, in order");
    }

    [Fact]
    public async Task Two_drain_instances_on_one_run_train_one_at_a_time_and_lose_no_update()
    {
        await using var run = await RunHarness.StartAsync();
        await using var first = FunctionProcess.Start(run, "drain", "drain-1");
        await using var second = FunctionProcess.Start(run, "drain", "drain-2");
        const int batches = 6;
        async Task HospitalAsync(string hospital, int salt)
        {
            for (var seq = 0; seq < batches; seq++)
            {
                var (a, y, shape) = run.Batch(8, salt: salt + seq);
                await run.Features.SendMessageAsync(await run.PrepareAsync(hospital, seq, FrameKind.Train, a, shape, y));
                (await run.ReplyToAsync(hospital, seq, TimeSpan.FromSeconds(90))).Sequence.Should().Be(seq);
            }
        }
        await Task.WhenAll(HospitalAsync("alpha", 0), HospitalAsync("beta", 1000));
        await first.StopAsync();
        await second.StopAsync();

        var store = new RunStore(run.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        var (checkpoint, _) = await store.LoadLatestAsync("run-1", CancellationToken.None);
        var applied = checkpoint!.State.RecentBatches.Select(b => (b.Hospital, b.Sequence)).ToList();
        applied.Should().HaveCount(2 * batches, first.Output + second.Output).And.OnlyHaveUniqueItems();
        checkpoint.State.BatchesApplied.Should().Be(2 * batches);
    }

    [Fact]
    public async Task Drain_mode_poisons_a_rejected_and_an_always_failing_message_with_a_readable_reason_for_each()
    {
        await using var run = await RunHarness.StartAsync();
        var (a, y, shape) = run.Batch(8, salt: 21);
        var tampered = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        await run.TamperFeaturesAsync("alpha", 0);
        var failing = await run.PrepareAsync("beta", 0, FrameKind.Train, a, shape, y);
        foreach (var file in Directory.GetFiles(run.KeyFolder, "beta*.key", SearchOption.AllDirectories)) await File.WriteAllTextAsync(file, "not base64 !");
        await run.Features.SendMessageAsync(tampered);
        await run.Features.SendMessageAsync(failing);

        await using var drain = FunctionProcess.Start(run, "drain", "drain-poison", new Dictionary<string, string>
        {
            ["SplitFunctions__MaxDequeueCount"] = "2",
            ["SplitFunctions__VisibilityTimeoutSeconds"] = "5",
        });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        List<PoisonRecord> records;
        while ((records = await run.PoisonRecordsAsync()).Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(200);
        await drain.StopAsync();

        records.Should().HaveCount(2, drain.Output);
        records.Should().OnlyContain(r => r.Host == PoisonHosts.Drain);
        var rejected = records.Single(r => r.Message == tampered);
        rejected.Reason.Should().Contain("alpha#0").And.MatchRegex("(?i)sha-256|tamper|authentic");
        rejected.DequeueCount.Should().Be(1, "a message that can never succeed is poisoned on its first delivery");
        var exhausted = records.Single(r => r.Message == failing);
        exhausted.Reason.Should().Contain("delivery 2").And.Contain("base64");
        (await run.PoisonTextsAsync()).Should().BeEquivalentTo([tampered, failing], "features-poison holds each message as the hospital sent it");
        (await run.Features.PeekMessagesAsync(1)).Value.Should().BeEmpty();
    }

    [Fact]
    public async Task Bad_settings_stop_the_server_at_start_with_one_line_each_and_exit_code_2()
    {
        await using var run = await RunHarness.StartAsync();
        await using var drain = FunctionProcess.Start(run, "drain", "drain-bad", new Dictionary<string, string>
        {
            ["SplitFunctions__Device"] = "quantum",
            ["SplitFunctions__CheckpointRetention"] = "0",
        });
        var exitCode = await drain.WaitForExitAsync(TimeSpan.FromSeconds(60));
        exitCode.Should().Be(2, drain.Output);
        drain.Output.Should().Contain("SplitFunctions__Device='quantum' is invalid").And.Contain("SplitFunctions__CheckpointRetention=0 is invalid");
        drain.Output.Should().NotContain("   at ", "no stack trace");
    }

    [Theory]
    [InlineData("AzureWebJobsStorage", "AzureWebJobsStorage")]
    [InlineData("SplitFunctions__KeyDirectory", "No hospital keys configured")]
    public async Task Missing_storage_or_keys_stop_the_server_at_start_with_one_line_and_exit_code_2(string unset, string named)
    {
        await using var run = await RunHarness.StartAsync();
        await using var drain = FunctionProcess.Start(run, "drain", "drain-unset", new Dictionary<string, string> { [unset] = "" });
        var exitCode = await drain.WaitForExitAsync(TimeSpan.FromSeconds(60));
        exitCode.Should().Be(2, drain.Output);
        drain.Output.Should().Contain(named);
        drain.Output.Should().NotContain("   at ", "no stack trace").And.NotContain("Unhandled exception");
    }
}
