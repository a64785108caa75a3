using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// A hospital far from its storage: the agent reaches Azurite through a latency proxy (20 ms each way, a 40 ms round
/// trip as over the internet) and the function through one of 1 ms (in the storage account's region). The run still
/// trains to the end, and exactly once: no batch lost or doubled.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AgentLatencyTests(AzuriteFixture azurite)
{
    private const int Batches = 10; // 100 images: 80 training rows, batch 16: 5 batches per epoch, 2 epochs

    [Fact]
    public async Task Through_a_delayed_storage_the_agent_trains_every_batch_exactly_once()
    {
        await using var hospitalLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(40)));
        await using var functionLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(1)));
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: 2);
        using var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        await bed.InitAsync(hospitalLink.ConnectionString, bed.WriteImages(100));

        var replies = azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(AgentTestBed.Hospital));
        var repliesBefore = (await replies.GetPropertiesAsync()).Value.ApproximateMessagesCount;
        var function = DrainFunction.Start(functionLink.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            run.ExitCode.Should().Be(0, run + "\n--- function\n" + function.Output);
            await function.StopAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch applied once: none lost, none doubled");
        watermark.Should().Be(final.NextSequence - 1);
        hospitalLink.Exchanges.Should().BeGreaterThanOrEqualTo(4 * Batches, "a vanilla step costs the hospital at least four storage round trips");
        functionLink.Exchanges.Should().BeGreaterThan(0, "the function reached storage only through its own link");
        // Replies are deleted in the background while the next batch computes; the last one's delete lands before the agent stops.
        (await replies.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(repliesBefore, "every reply of this run was deleted");
    }
}
