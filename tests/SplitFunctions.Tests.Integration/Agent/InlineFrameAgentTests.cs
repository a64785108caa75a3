using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Small frames travel inside the queue messages (issue 33): an ldl-mlp run at batch 64 (about 17 KiB per frame) trains
/// through Azurite with the hospital's blob endpoint cut, so neither its features nor its gradients can have gone
/// through blobs; the agent killed and the function killed (no checkpoint) on the way, and still every batch is applied
/// exactly once. The function's restart replays its journal from the frames it wrote to blobs itself.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class InlineFrameAgentTests(AzuriteFixture azurite)
{
    private const int Batches = 10; // 400 rows: 320 training rows, batch 64: 5 batches per epoch, 2 epochs

    [Fact]
    public async Task An_ldl_mlp_run_trains_with_inline_frames_exactly_once_through_kills_of_the_agent_and_the_function()
    {
        await using var blobProxy = new TcpOutageProxy(azurite.Azurite.BlobPort);
        var hospitalConnection = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Core.Storage.StorageConnection.DevelopmentAccountKey
            + $";BlobEndpoint=http://127.0.0.1:{blobProxy.Port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{azurite.Azurite.QueuePort}/devstoreaccount1";
        var manifest = RunManifest.ForModel("run-" + Guid.NewGuid().ToString("N")[..12], Core.Model.ModelCatalog.LdlMlp, TrainingMode.Vanilla,
            [AgentTestBed.Hospital], seed: 7) with
        { BatchSize = 64, Epochs = 2 };
        using var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        var csv = Path.Combine(bed.Folder, "lipids.csv");
        await File.WriteAllLinesAsync(csv, File.ReadLines(SharedData.Lipids).Take(401));
        await bed.InitAsync(hospitalConnection, csv, "--columns-preset", "nhis-lipids");
        string[] train = ["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"];

        var first = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (first)
        {
            using (var agent = AgentTestBed.StartProcess(train))
            {
                var lines = 0;
                using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
                while (await agent.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
                {
                    if (!line.Contains(" batch=", StringComparison.Ordinal)) continue;
                    // Two batches through every endpoint, then the blobs cut: the next batches must need none.
                    if (++lines == 2) blobProxy.Down();
                    if (lines == 5) break;
                }
                lines.Should().Be(5, "the agent trains batches with its blob endpoint down, its frames inside the messages\n" + first.Output);
                agent.Kill(entireProcessTree: true);
                await agent.WaitForExitAsync();
            }
            blobProxy.Up();
            StateFolder.Peek(bed.StateFolder, manifest.RunId)!.ClientSteps.Should().BeGreaterThanOrEqualTo(4);
            // SIGKILL: no checkpoint, so the next instance rebuilds the run by replaying its journal from the frames' blobs.
            await first.KillAsync();
        }

        var second = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (second)
        {
            var resumed = await AgentTestBed.RunAsync(train);
            resumed.ExitCode.Should().Be(0, resumed + "\n--- function\n" + second.Output);
            await second.StopAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(Batches);
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(Batches, "every batch applied once: none lost, none doubled");
        watermark.Should().Be(final.NextSequence - 1);

        // The function kept each inline frame under the name its journal entry gives, for a replay after a crash.
        var container = azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(AgentTestBed.Hospital));
        var kept = new List<long>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None,
            $"{StorageNames.FeaturesFolder}/{manifest.RunId}/", CancellationToken.None))
        {
            blob.Properties.ContentLength.Should().BeLessThanOrEqualTo(MessageCodec.MaxInlineBytes);
            kept.Add(long.Parse(Path.GetFileNameWithoutExtension(blob.Name), System.Globalization.CultureInfo.InvariantCulture));
        }
        kept.Should().HaveCountGreaterThanOrEqualTo(Batches, "every applied frame is kept (a frame sent before the kill and never applied may be too)");
    }
}
