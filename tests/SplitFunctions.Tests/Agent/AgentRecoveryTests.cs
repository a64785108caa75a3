using SplitFunctions.ClientAgent.State;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// The two failures a scheduled agent must survive, against real Azurite and the in-test responder: the agent killed
/// mid-run (a real child process) and storage going away for several seconds. Neither may lose or repeat a batch.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AgentRecoveryTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Killed_mid_run_the_agent_continues_with_the_next_batch_and_the_watermark_agrees()
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: 3);
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(100));
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        using (var agent = AgentTestBed.StartProcess("train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"))
        {
            var lines = 0;
            while (await agent.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Contains(" batch=", StringComparison.Ordinal) && ++lines == 4) break;
            }
            lines.Should().Be(4, "the agent reports its batches before it is killed");
            agent.Kill(entireProcessTree: true);
            await agent.WaitForExitAsync();
        }
        var killedAt = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        killedAt.ClientSteps.Should().BeGreaterThanOrEqualTo(4);

        var resumed = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
        resumed.ExitCode.Should().Be(0, resumed.ToString());
        responder.Failure.Should().BeNull();

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        var applied = responder.Applied[AgentTestBed.Hospital];
        // 5 batches x 3 epochs: each applied exactly once at the server and once at the hospital.
        applied.Should().HaveCount(15).And.OnlyHaveUniqueItems().And.BeInAscendingOrder();
        final.ClientSteps.Should().Be(15);
        final.Epoch.Should().Be(3);
        responder.Watermarks[AgentTestBed.Hospital].Should().Be(applied[^1]).And.Be(final.NextSequence - 1);
        var firstResumedBatch = resumed.Output.Split('\n').First(l => l.Contains(" batch=", StringComparison.Ordinal));
        var expectedNext = killedAt.Pending is { } p ? $"batch={p.Batch + 1}/5" : $"batch={killedAt.Batch + 1}/5";
        firstResumedBatch.Should().Contain(expectedNext);
    }

    [Fact]
    public async Task Storage_down_for_several_seconds_the_agent_waits_recovers_and_completes()
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: 3);
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        await using var blobProxy = new TcpOutageProxy(azurite.Azurite.BlobPort);
        await using var queueProxy = new TcpOutageProxy(azurite.Azurite.QueuePort);
        var viaProxy = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Core.Storage.StorageConnection.DevelopmentAccountKey +
                       $";BlobEndpoint=http://127.0.0.1:{blobProxy.Port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{queueProxy.Port}/devstoreaccount1";
        await bed.InitAsync(viaProxy, bed.WriteImages(100));
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        var agent = AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
        await AgentRunTests.WaitUntilAsync(() => responder.Applied.TryGetValue(AgentTestBed.Hospital, out var a) && a.Count >= 3, 120);
        blobProxy.Down();
        queueProxy.Down();
        await Task.Delay(TimeSpan.FromSeconds(6));
        agent.IsCompleted.Should().BeFalse("the agent waits for storage instead of giving up");
        blobProxy.Up();
        queueProxy.Up();

        var run = await agent;
        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("storage:", "the outage is reported while the agent retries");
        responder.Failure.Should().BeNull();
        responder.Applied[AgentTestBed.Hospital].Should().HaveCount(15).And.OnlyHaveUniqueItems();
        StateFolder.Peek(bed.StateFolder, manifest.RunId)!.ClientSteps.Should().Be(15);
    }
}
