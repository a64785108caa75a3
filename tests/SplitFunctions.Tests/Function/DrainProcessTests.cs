using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Training;

namespace SplitFunctions.Tests.Function;

/// <summary>The function as a real process: drain mode across a crash, two instances on one run, the custom-handler contract.</summary>
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
        checkpoint!.State.RecentBatches.Select(b => b.Sequence).Should().Equal(Enumerable.Range(0, batches).Select(i => (long)i), "each batch is applied exactly once, in order");
        checkpoint.State.BatchesApplied.Should().Be(batches);
        checkpoint.State.Watermarks["alpha"].Should().Be(batches - 1);
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
    public async Task The_custom_handler_answers_the_host_contract_and_fails_an_invocation_it_cannot_serve()
    {
        await using var run = await RunHarness.StartAsync();
        var port = FreePort();
        await using var serve = FunctionProcess.Start(run, "serve", "handler", new Dictionary<string, string> { ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        await WaitListeningAsync(http, serve);

        var (a, y, shape) = run.Batch(8, salt: 3);
        var message = await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y);
        // As the host sends it: the queue message JSON-encoded as a string in Data, delivery details in Metadata.
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { ["message"] = JsonSerializer.Serialize(message) },
            ["Metadata"] = new JsonObject { ["DequeueCount"] = 1, ["Id"] = Guid.NewGuid().ToString(), ["PopReceipt"] = "AgAAAAMAAAAAAAAA", ["InsertionTime"] = DateTimeOffset.UtcNow.ToString("O") },
        };
        using var ok = await http.PostAsJsonAsync("ProcessFeatures", payload);
        ok.StatusCode.Should().Be(HttpStatusCode.OK, serve.Output);
        var body = JsonNode.Parse(await ok.Content.ReadAsStringAsync())!;
        body["Outputs"].Should().NotBeNull();
        body["Logs"]!.AsArray().Select(l => l!.GetValue<string>()).Should().ContainMatch("*alpha#0*loss*");
        (await run.NextReplyAsync("alpha")).Kind.Should().Be(ReplyKind.Gradients);

        using var malformed = await http.PostAsJsonAsync("ProcessFeatures", new JsonObject { ["Metadata"] = new JsonObject() });
        ((int)malformed.StatusCode).Should().BeGreaterThanOrEqualTo(400);

        // Storage gone: the invocation fails (non-2xx) so the host retries it later; the handler keeps running.
        var next = await run.PrepareAsync("alpha", 1, FrameKind.Train, a, shape, y);
        payload["Data"] = new JsonObject { ["message"] = JsonSerializer.Serialize(next) };
        await run.Azurite.DisposeAsync();
        using var failed = await http.PostAsJsonAsync("ProcessFeatures", payload);
        ((int)failed.StatusCode).Should().BeGreaterThanOrEqualTo(500, serve.Output);
        serve.HasExited.Should().BeFalse();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitListeningAsync(HttpClient http, FunctionProcess process)
    {
        for (var i = 0; i < 300; i++)
        {
            try
            {
                using var response = await http.GetAsync("health");
                return;
            }
            catch (HttpRequestException)
            {
                process.HasExited.Should().BeFalse(process.Output);
                await Task.Delay(100);
            }
        }
        throw new TimeoutException("custom handler did not listen within 30 s: " + process.Output);
    }
}
