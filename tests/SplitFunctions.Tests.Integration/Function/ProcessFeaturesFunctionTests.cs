using System.Text.Json;
using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.ProcessFeatures;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// The isolated-worker function: the metadata the build writes for the Functions host, host.json, and real queue
/// messages from Azurite through the trigger's entry point into the server and back.
/// </summary>
public sealed class ProcessFeaturesFunctionTests
{
    private static string BuildOutput => Path.GetDirectoryName(FunctionProcess.Dll)!;

    [Fact]
    public void The_build_writes_the_queue_trigger_metadata_the_Functions_host_reads()
    {
        var path = Path.Combine(BuildOutput, "functions.metadata");
        File.Exists(path).Should().BeTrue($"the Worker.Sdk writes {path} when functions/ is built");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var function = doc.RootElement.EnumerateArray().Should().ContainSingle().Subject;
        function.GetProperty("name").GetString().Should().Be(ProcessFeaturesFunction.Name).And.Be("ProcessFeatures");
        function.GetProperty("language").GetString().Should().Be("dotnet-isolated");
        function.GetProperty("entryPoint").GetString().Should().Be($"{typeof(ProcessFeaturesFunction).FullName}.{nameof(ProcessFeaturesFunction.RunAsync)}");
        var binding = function.GetProperty("bindings").EnumerateArray().Should().ContainSingle().Subject;
        binding.GetProperty("type").GetString().Should().Be("queueTrigger");
        binding.GetProperty("direction").GetString().Should().BeEquivalentTo("in");
        binding.GetProperty("queueName").GetString().Should().Be(StorageNames.FeaturesQueue);
        binding.GetProperty("connection").GetString().Should().Be(FunctionSettings.Storage);

        using var worker = JsonDocument.Parse(File.ReadAllText(Path.Combine(BuildOutput, "worker.config.json")));
        worker.RootElement.GetProperty("description").GetProperty("defaultWorkerPath").GetString().Should().Be("SplitFunctions.Functions.dll");
        Directory.Exists(Path.Combine(BuildOutput, ".azurefunctions")).Should().BeTrue("the host-side queue extension is built beside the worker");
    }

    [Fact]
    public void Host_json_applies_the_steps_of_a_run_one_at_a_time_and_poisons_after_the_servers_count()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot.Path, "functions", "host.json")));
        doc.RootElement.TryGetProperty("customHandler", out _).Should().BeFalse("the custom handler is gone");
        var queues = doc.RootElement.GetProperty("extensions").GetProperty("queues");
        queues.GetProperty("batchSize").GetInt32().Should().Be(1, "one message at a time per instance keeps a run's steps in order");
        queues.GetProperty("newBatchThreshold").GetInt32().Should().Be(0, "no next message is fetched while one is still running");
        queues.GetProperty("maxDequeueCount").GetInt32().Should().Be(ServerOptions.DefaultMaxDequeueCount, "drain mode and the function poison after the same "
            + "count");
        queues.GetProperty("messageEncoding").GetString().Should().Be("base64");
        StorageClientDefaults.Queue().MessageEncoding.Should().Be(QueueMessageEncoding.Base64, "what the agents send must be what the trigger decodes");
        TimeSpan.Parse(queues.GetProperty("visibilityTimeout").GetString()!, System.Globalization.CultureInfo.InvariantCulture)
            .Should().BeLessThan(RunLease.Duration, "a failed step is retried sooner than a crashed instance's run lease expires");
        File.ReadAllText(Path.Combine(BuildOutput, "host.json")).Should().Be(File.ReadAllText(Path.Combine(RepoRoot.Path, "functions", "host.json")));
    }

    [Fact]
    public async Task A_train_message_is_applied_once_and_a_redelivery_is_answered_from_the_record()
    {
        await using var run = await RunHarness.StartAsync();
        await using var worker = new WorkerRig(run);
        var (a, y, shape) = run.Batch(8, salt: 3);
        var text = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        await worker.FeaturesQueue().SendMessageAsync(text);
        await worker.FeaturesQueue().SendMessageAsync(text); // The same message again, as a redelivery after a lost delete.

        (await worker.DeliverNextAsync()).Failure.Should().BeNull();
        var first = await run.NextReplyAsync("alpha");
        first.Kind.Should().Be(ReplyKind.Gradients);
        (await run.ReadReplyAsync(first)).Should().ContainSingle().Which.Shape.Should().Equal(shape);
        (await worker.DeliverNextAsync()).Failure.Should().BeNull();
        var second = await run.NextReplyAsync("alpha");
        second.Sha256.Should().Be(first.Sha256, "the redelivery is answered from the stored gradient");

        var leased = await worker.Runs.OpenAsync(run.Manifest.RunId, CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(1);
        leased.State.Step.Should().Be(1, "one journal entry");
        (await worker.FeaturesQueue().PeekMessageAsync()).Value.Should().BeNull("both invocations succeeded, so both messages are deleted");
    }

    [Fact]
    public async Task A_temporal_run_trains_one_epoch_per_delivery_and_queues_the_rest_as_a_fresh_message()
    {
        await using var run = await RunHarness.StartAsync(Core.Runs.TrainingMode.Temporal, hospitals: ["alpha"], batchSize: 8, epochs: 3);
        await using var worker = new WorkerRig(run);
        var (a, y, shape) = run.Batch(40, salt: 1);
        await worker.FeaturesQueue().SendMessageAsync(await run.PrepareAsync("alpha", 0, FrameKind.Chunk, a, shape, y));
        await worker.FeaturesQueue().SendMessageAsync(run.DoneMessage("alpha", 1, 1));
        (await worker.DeliverNextAsync()).Failure.Should().BeNull("the chunk is indexed");
        for (var epoch = 1; epoch <= 3; epoch++)
        {
            var (failure, message) = await worker.DeliverNextAsync();
            failure.Should().BeNull();
            message.DequeueCount.Should().Be(1, "each epoch comes with a fresh delivery, so kills in one epoch do not add up over the run");
            (await worker.Runs.OpenAsync(run.Manifest.RunId, CancellationToken.None))!.State.EpochsCompleted.Should().Be(epoch);
        }
        (await worker.FeaturesQueue().PeekMessageAsync()).Value.Should().BeNull("the last epoch's delivery queues nothing more");
        (await run.ReplyToAsync("alpha", 1)).Kind.Should().Be(ReplyKind.Accepted, "the hospital hears once training is complete");
    }

    [Fact]
    public async Task A_bad_message_is_rejected_with_its_reason_the_hospital_told_and_the_message_poisoned_unchanged()
    {
        await using var run = await RunHarness.StartAsync();
        await using var worker = new WorkerRig(run);
        var (a, y, shape) = run.Batch(8, salt: 5);
        var text = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        await run.TamperFeaturesAsync("alpha", 0);
        await worker.FeaturesQueue().SendMessageAsync(text);

        var (failure, message) = await worker.DeliverNextAsync();
        failure.Should().BeNull("a message that can never succeed completes at once instead of burning retries");
        var reply = await run.NextReplyAsync("alpha");
        reply.Kind.Should().Be(ReplyKind.Rejected);
        reply.Reason.Should().MatchRegex("(?i)sha-256|tamper|authentic");

        (await run.PoisonTextsAsync()).Should().Equal([text], "features-poison holds the message as the hospital sent it");
        var record = (await run.PoisonRecordsAsync()).Should().ContainSingle().Subject;
        record.MessageId.Should().Be(message.MessageId);
        record.Host.Should().Be(PoisonHosts.Worker);
        record.Message.Should().Be(text);
        record.Reason.Should().Contain("alpha#0").And.MatchRegex("(?i)sha-256|tamper|authentic");
        var leased = await worker.Runs.OpenAsync(run.Manifest.RunId, CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(0);
    }

    [Fact]
    public async Task A_storage_outage_is_waited_out_inside_the_invocation_so_it_burns_no_delivery()
    {
        await using var run = await RunHarness.StartAsync();
        await using var worker = new WorkerRig(run);
        var (a, y, shape) = run.Batch(8, salt: 7);
        var text = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        await worker.FeaturesQueue().SendMessageAsync(text);
        var message = (await worker.FeaturesQueue().ReceiveMessageAsync()).Value;
        await run.Azurite.DisposeAsync();

        // Failing would cost one of maxDequeueCount deliveries, so a long outage would poison good messages.
        using var shutdown = new CancellationTokenSource();
        var invocation = worker.Function.RunAsync(message, shutdown.Token);
        await Task.Delay(TimeSpan.FromSeconds(10));
        invocation.IsCompleted.Should().BeFalse("the invocation waits for storage instead of failing");
        await shutdown.CancelAsync();
        var stopped = async () => await invocation;
        await stopped.Should().ThrowAsync<OperationCanceledException>("only the host's shutdown ends the wait");
    }

    [Fact]
    public async Task A_message_failing_every_delivery_is_recorded_with_its_reason_on_the_last_one()
    {
        await using var run = await RunHarness.StartAsync();
        await using var worker = new WorkerRig(run);
        var (a, y, shape) = run.Batch(8, salt: 9);
        var text = await run.PrepareAsync("beta", 0, FrameKind.Train, a, shape, y);
        // The server's copy of beta's key is unreadable: every attempt fails, none can be called the hospital's fault.
        foreach (var file in Directory.GetFiles(run.KeyFolder, "beta*.key", SearchOption.AllDirectories)) await File.WriteAllTextAsync(file, "not base64 !");
        await worker.FeaturesQueue().SendMessageAsync(text);

        for (var delivery = 1; delivery <= ServerOptions.DefaultMaxDequeueCount; delivery++)
        {
            var (failure, message) = await worker.DeliverNextAsync();
            failure.Should().NotBeNull($"delivery {delivery} must fail so the host retries or, after the last, poisons it");
            message.DequeueCount.Should().Be(delivery);
            var records = await run.PoisonRecordsAsync();
            if (delivery < ServerOptions.DefaultMaxDequeueCount)
            {
                records.Should().BeEmpty("earlier failures are retried, not poisoned");
                continue;
            }
            // The host now moves the message to features-poison; the operator reads why here.
            var record = records.Should().ContainSingle().Subject;
            record.Reason.Should().Contain($"delivery {delivery}").And.Contain(failure!.GetType().Name).And.Contain("base64");
            record.Message.Should().Be(text);
            record.Host.Should().Be(PoisonHosts.Worker);
        }
    }

    [Fact]
    public async Task A_run_held_by_another_instance_is_waited_for_then_trained_and_a_long_hold_fails_the_invocation()
    {
        await using var run = await RunHarness.StartAsync();
        await using var worker = new WorkerRig(run, "worker-a", leaseWait: TimeSpan.FromSeconds(20));
        var (_, other) = run.CreateRouter("worker-b");
        var held = await other.OpenAsync(run.Manifest.RunId, CancellationToken.None);
        held.Should().NotBeNull();
        var (a, y, shape) = run.Batch(8, salt: 11);
        await worker.FeaturesQueue().SendMessageAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y));

        var delivery = worker.DeliverNextAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        delivery.IsCompleted.Should().BeFalse("the invocation waits while the other instance holds the run");
        await other.DisposeAsync(); // The other instance finishes and releases the run.
        (await delivery).Failure.Should().BeNull();
        (await run.NextReplyAsync("alpha")).Kind.Should().Be(ReplyKind.Gradients);

        // Held for longer than the wait: the invocation fails (the host retries later) and nothing is applied.
        await using var impatient = new WorkerRig(run, "worker-c", leaseWait: TimeSpan.FromSeconds(2));
        await worker.Runs.ReleaseIdleAsync(all: true, CancellationToken.None);
        var (_, holder) = run.CreateRouter("worker-b");
        await using var __ = holder;
        (await holder.OpenAsync(run.Manifest.RunId, CancellationToken.None)).Should().NotBeNull();
        await impatient.FeaturesQueue().SendMessageAsync(await run.PrepareAsync("alpha", 1, FrameKind.Train, a, shape, y));
        var (failure, _) = await impatient.DeliverNextAsync();
        failure.Should().BeOfType<RunBusyException>().Which.Message.Should().Contain("another instance");
        var state = (await holder.OpenAsync(run.Manifest.RunId, CancellationToken.None))!.State;
        state.Watermarks["alpha"].Should().Be(0, "sequence 1 waits for the retry");
    }
}
