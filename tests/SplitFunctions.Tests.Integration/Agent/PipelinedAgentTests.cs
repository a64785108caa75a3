using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Pipelined vanilla training (manifest pipelineDepth 3) against real Azurite, the real function in drain mode and the
/// real agent, the hospital behind a latency link: three batches in flight at once, and still every batch applied exactly
/// once, also when the agent is killed with all three in flight.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class PipelinedAgentTests(AzuriteFixture azurite)
{
    private const int Batches = 15; // 100 images: 80 training rows, batch 16: 5 batches per epoch, 3 epochs
    private const int Depth = 3;

    private async Task<(AgentTestBed Bed, RunManifest Manifest)> ProvisionAsync(string connectionString, int depth = Depth)
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: 3) with { PipelineDepth = depth };
        var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        await bed.InitAsync(connectionString, bed.WriteImages(100));
        return (bed, manifest);
    }

    [Fact]
    public async Task Through_a_delayed_storage_three_batches_travel_at_once_and_each_is_applied_exactly_once()
    {
        await using var hospitalLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(40)));
        await using var functionLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(1)));
        var (bed, manifest) = await ProvisionAsync(hospitalLink.ConnectionString);
        using var _ = bed;
        var replies = azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(AgentTestBed.Hospital));
        var repliesBefore = (await replies.GetPropertiesAsync()).Value.ApproximateMessagesCount;

        using var watching = new CancellationTokenSource();
        var mostInFlight = WatchInFlightAsync(bed, manifest.RunId, watching.Token);
        var function = DrainFunction.Start(functionLink.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            run.ExitCode.Should().Be(0, run + "\n--- function\n" + function.Output);
            await function.StopAsync();
        }
        await watching.CancelAsync();
        (await mostInFlight).Should().BeGreaterThanOrEqualTo(2, "the state records several batches in flight at once (up to the depth)")
            .And.BeLessThanOrEqualTo(Depth);

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        final.Epoch.Should().Be(3);
        final.InFlight.Should().BeNull("the pipeline drains at the end");
        Directory.EnumerateFiles(Path.Combine(bed.StateFolder, manifest.RunId), "inflight.*").Should().BeEmpty();
        Directory.EnumerateFiles(Path.Combine(bed.StateFolder, manifest.RunId), "client.*").Should().ContainSingle("no stashed weights are left");
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch applied once: none lost, none doubled");
        watermark.Should().Be(final.NextSequence - 1);
        (await replies.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(repliesBefore, "every reply of this run was deleted");
    }

    [Fact]
    public async Task With_the_depth_left_to_the_agent_a_long_round_trip_makes_it_keep_more_batches_in_flight_and_each_is_applied_once()
    {
        // Manifest pipelineDepth 0: the agent starts at 2 and sets ceil(round trip / its own time per batch) + 1 (at most 8)
        // from what it measures. Behind 100 ms a batch's round trip (upload, enqueue, reply, download) is several times the
        // agent's own work on 16 small images, so it must go deeper than it started.
        await using var hospitalLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(100)));
        var (bed, manifest) = await ProvisionAsync(hospitalLink.ConnectionString, depth: 0);
        using var _ = bed;
        using var watching = new CancellationTokenSource();
        var mostInFlight = WatchInFlightAsync(bed, manifest.RunId, watching.Token);
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        AgentRun run;
        await using (function)
        {
            run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            run.ExitCode.Should().Be(0, run + "\n--- function\n" + function.Output);
            await function.StopAsync();
        }
        await watching.CancelAsync();
        var chosen = System.Text.RegularExpressions.Regex.Matches(run.Output, @"pipeline depth (\d+):").Select(m => int.Parse(m.Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture)).ToList();
        chosen.Should().NotBeEmpty("the agent says which depth it chose and why\n" + run.Output);
        chosen.Max().Should().BeInRange(3, PipelinedSteps.MaxAutomaticDepth, run.Output);
        (await mostInFlight).Should().BeGreaterThanOrEqualTo(3, "deeper than the automatic start of 2");

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        final.InFlight.Should().BeNull("the pipeline drains at the end");
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch applied once: none lost, none doubled");
        watermark.Should().Be(final.NextSequence - 1);
    }

    [Fact]
    public async Task Killed_with_three_batches_in_flight_the_agent_resends_them_and_every_batch_is_applied_exactly_once()
    {
        // The hospital's round trip is long beside the function's work, so batches stay in flight long enough to kill the agent among them.
        await using var hospitalLink = new StorageLink(azurite.Azurite, LinkShape.RoundTrip(TimeSpan.FromMilliseconds(60)));
        var (bed, manifest) = await ProvisionAsync(hospitalLink.ConnectionString);
        using var _ = bed;
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            AgentState? killedAt = null;
            using (var agent = AgentTestBed.StartProcess("train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"))
            {
                var drainOutput = agent.StandardOutput.ReadToEndAsync();
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
                // Past the first batch, with a full pipeline: the kill lands with three batches in flight, some of them
                // perhaps applied at the function already and their replies not yet taken.
                while (DateTime.UtcNow < deadline && !agent.HasExited)
                {
                    if (StateFolder.Peek(bed.StateFolder, manifest.RunId) is { ClientSteps: >= 2, InFlight.Count: Depth } full)
                    {
                        agent.Kill(entireProcessTree: true);
                        killedAt = full;
                        break;
                    }
                    await Task.Delay(2);
                }
                await agent.WaitForExitAsync();
                killedAt.Should().NotBeNull("the agent had three batches in flight before it finished\n" + await drainOutput + "\n--- function\n"
                    + function.Output);
            }
            var onDisk = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
            onDisk.InFlight.Should().NotBeNull().And.HaveCountGreaterThanOrEqualTo(1, "the kill left batches in flight");
            Directory.EnumerateFiles(Path.Combine(bed.StateFolder, manifest.RunId), "inflight.*").Should().HaveCount(onDisk.InFlight!.Count);

            var resumed = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            resumed.ExitCode.Should().Be(0, resumed + "\n--- function\n" + function.Output);
            resumed.Output.Should().Contain($"re-sending {onDisk.InFlight.Count} pipelined batches in flight");
            var firstResumedBatch = resumed.Output.Split('\n').First(l => l.Contains(" batch=", StringComparison.Ordinal));
            firstResumedBatch.Should().Contain($"epoch={onDisk.Epoch + 1}/3 batch={onDisk.Batch + 1}/5", "the restart applies the oldest batch in flight "
                + "first");
            await function.StopAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        final.Epoch.Should().Be(3);
        final.InFlight.Should().BeNull();
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch was applied exactly once at the function, those in flight at the kill included");
        watermark.Should().Be(final.NextSequence - 1, "the function's watermark is the agent's last sequence");
    }

    // The most batches the agent's state listed in flight at once, read as the agent writes it (atomically replaced).
    private static async Task<int> WatchInFlightAsync(AgentTestBed bed, string runId, CancellationToken cancellationToken)
    {
        var most = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                most = Math.Max(most, StateFolder.Peek(bed.StateFolder, runId)?.InFlight?.Count ?? 0);
            }
            catch (Exception e) when (e is IOException or ClientAgent.AgentException)
            {
                // Replaced while read: look again.
            }
            try
            {
                await Task.Delay(2, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return most;
    }
}
