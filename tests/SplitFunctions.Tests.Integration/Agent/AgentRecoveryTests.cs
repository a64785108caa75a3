using System.Diagnostics;
using System.Globalization;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// The two failures a scheduled agent must survive, against real Azurite and the real function in drain mode: the agent
/// killed mid-run (a real child process) and storage going away for several seconds. Neither may lose or repeat a
/// batch: the function's watermark and step count agree with the agent's committed state.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AgentRecoveryTests(AzuriteFixture azurite)
{
    private const int Batches = 15; // 100 images: 80 training rows, batch 16: 5 batches per epoch, 3 epochs

    private async Task<(AgentTestBed Bed, RunManifest Manifest)> ProvisionAsync(string? connectionString = null, int epochs = 3)
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: epochs);
        var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        await bed.InitAsync(connectionString ?? azurite.Azurite.ConnectionString, bed.WriteImages(100));
        return (bed, manifest);
    }

    [Fact]
    public async Task Killed_mid_run_the_agent_continues_with_the_next_batch_and_the_watermark_agrees()
    {
        var (bed, manifest) = await ProvisionAsync();
        using var _ = bed;
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            using (var agent = AgentTestBed.StartProcess("train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"))
            {
                var lines = 0;
                while (await agent.StandardOutput.ReadLineAsync() is { } line)
                {
                    if (line.Contains(" batch=", StringComparison.Ordinal) && ++lines == 4) break;
                }
                lines.Should().Be(4, "the agent reports its batches before it is killed\n" + function.Output);
                agent.Kill(entireProcessTree: true);
                await agent.WaitForExitAsync();
            }
            var killedAt = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
            killedAt.ClientSteps.Should().BeGreaterThanOrEqualTo(4);

            var resumed = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            resumed.ExitCode.Should().Be(0, resumed + "\n--- function\n" + function.Output);
            var firstResumedBatch = resumed.Output.Split('\n').First(l => l.Contains(" batch=", StringComparison.Ordinal));
            var next = killedAt.Pending is { } p ? (p.Epoch, p.Batch) : (killedAt.Epoch, killedAt.Batch);
            firstResumedBatch.Should().Contain($"epoch={next.Item1 + 1}/3 batch={next.Item2 + 1}/5", "the restart continues with the batch after the last "
                + "committed one");
            await function.StopAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        final.Epoch.Should().Be(3);
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch was applied exactly once at the function");
        watermark.Should().Be(final.NextSequence - 1, "the function's watermark is the agent's last sequence");
    }

    [Fact]
    public async Task SIGTERM_mid_run_stops_the_agent_cleanly_with_exit_130_and_says_the_next_start_resumes()
    {
        if (OperatingSystem.IsWindows()) return; // SIGTERM is a POSIX signal; Ctrl-C takes the same path (StopSignals)
        // Enough epochs that the run is still going when the signal lands (starting `kill` takes seconds on a busy machine).
        var (bed, manifest) = await ProvisionAsync(epochs: 40);
        using var _ = bed;
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            using var agent = AgentTestBed.StartProcess("train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation");
            var error = agent.StandardError.ReadToEndAsync();
            var lines = 0;
            while (await agent.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Contains(" batch=", StringComparison.Ordinal) && ++lines == 2) break;
            }
            // Not `await error` in the message: it is evaluated before the assertion and would wait for the agent to exit.
            if (lines != 2) lines.Should().Be(2, "the agent reports its batches before it is stopped\n" + await error + "\n--- function\n" + function.Output);
            using (var kill = Process.Start("kill", ["-TERM", agent.Id.ToString(CultureInfo.InvariantCulture)])!) await kill.WaitForExitAsync();
            var rest = agent.StandardOutput.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await agent.WaitForExitAsync(timeout.Token);
            var stderr = await error;
            agent.ExitCode.Should().Be(130, "SIGTERM is ExitCode.Cancelled (docs/agent.md)\n" + stderr + await rest);
            stderr.Split('\n').Where(l => l.Contains("stopped", StringComparison.Ordinal)).Should()
                .ContainSingle().Which.Should().Contain("next start resumes");
            await function.StopAsync();
        }
        StateFolder.Peek(bed.StateFolder, manifest.RunId)!.ClientSteps.Should().BeGreaterThanOrEqualTo(2, "the state read after the stop is whole");
    }

    [Fact]
    public async Task Storage_down_for_several_seconds_the_agent_waits_recovers_and_completes()
    {
        await using var blobProxy = new TcpOutageProxy(azurite.Azurite.BlobPort);
        await using var queueProxy = new TcpOutageProxy(azurite.Azurite.QueuePort);
        var viaProxy = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Core.Storage.StorageConnection.DevelopmentAccountKey +
                       $";BlobEndpoint=http://127.0.0.1:{blobProxy.Port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{queueProxy.Port}/devstoreaccount1";
        var (bed, manifest) = await ProvisionAsync(viaProxy);
        using var _ = bed;
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            var agent = AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            await AgentRunTests.WaitUntilAsync(() => StateFolder.Peek(bed.StateFolder, manifest.RunId) is { ClientSteps: >= 3 } || agent.IsCompleted, 120);
            blobProxy.Down();
            queueProxy.Down();
            await Task.Delay(TimeSpan.FromSeconds(6));
            agent.IsCompleted.Should().BeFalse("the agent waits for storage instead of giving up");
            blobProxy.Up();
            queueProxy.Up();

            var run = await agent;
            run.ExitCode.Should().Be(0, run + "\n--- function\n" + function.Output);
            run.Error.Should().Contain("storage:", "the outage is reported while the agent retries");
            await function.StopAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches);
        watermark.Should().Be(final.NextSequence - 1);
    }
}
