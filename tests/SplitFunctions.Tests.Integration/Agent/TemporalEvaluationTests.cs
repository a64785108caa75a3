using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Issue 32: a temporal run's `evaluate` asked while the server still trains its epochs (real agent, real function in
/// drain mode, real Azurite) is refused with `--no-wait` and otherwise waits, then scores the finished model, exactly as
/// the final checkpoint scores in process.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TemporalEvaluationTests(AzuriteFixture azurite)
{
    private const int Epochs = 40;

    [Fact]
    public async Task An_evaluation_asked_while_epochs_remain_waits_for_the_finished_model_and_scores_as_its_checkpoint_does()
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], TrainingMode.Temporal, epochs: Epochs, batchSize: 16);
        using var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(100));

        // The upload needs no function: chunks and `done` wait on the queue, the hospital may go offline.
        var uploaded = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        uploaded.ExitCode.Should().Be(0, uploaded.ToString());
        // The refusal is queued behind `done`, so the function answers it after the first epoch and before the last.
        var refusing = AgentTestBed.RunAsync(["evaluate", "--config", bed.ConfigPath, "--output", "log", "--no-wait"]);
        await WaitUntilAsync(() => StateFolder.Peek(bed.StateFolder, manifest.RunId) is { Pending.Kind: FrameKind.Evaluate } || refusing.IsCompleted);
        await Task.Delay(TimeSpan.FromSeconds(2));
        await using (var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory))
        {
            var refused = await refusing;
            refused.ExitCode.Should().Be((int)ExitCode.NotReady, refused + "\n--- function\n" + function.Output);
            refused.Error.Should().MatchRegex($@"still training this run \(temporal model after epoch \d+ of {Epochs} ").And.Contain("nothing was evaluated");
            File.Exists(Path.Combine(bed.RunStateFolder, "evaluation.json")).Should().BeFalse("nothing was scored");

            var evaluated = await AgentTestBed.RunAsync(["evaluate", "--config", bed.ConfigPath, "--output", "log", "--poll-seconds", "1"]);
            evaluated.ExitCode.Should().Be(0, evaluated + "\n--- function\n" + function.Output);
            evaluated.Output.Should().MatchRegex($"waiting for the server to finish training: epoch \\d+ of {Epochs}")
                .And.Contain($"scored by the server's temporal model after epoch {Epochs} of {Epochs}");
            var status = await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath]);
            status.Output.Should().Contain($"scored by the server's temporal model after epoch {Epochs} of {Epochs}");
            await function.StopAsync();
        }

        var report = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(bed.RunStateFolder, "evaluation.json")))!;
        var model = report["serverModel"]!;
        model["mode"]!.GetValue<string>().Should().Be("temporal");
        model["epoch"]!.GetValue<int>().Should().Be(Epochs);
        model["final"]!.GetValue<bool>().Should().BeTrue();

        // In process: the final checkpoint's server layers after the hospital's fixed client layer, on the same test rows.
        var store = new RunStore(azurite.Connection.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        var (checkpoint, _) = await store.LoadLatestAsync(manifest.RunId, CancellationToken.None);
        checkpoint!.State.EpochsCompleted.Should().Be(Epochs);
        model["checkpoint"]!.GetValue<long>().Should().Be(checkpoint.State.CheckpointNumber, "the answers came from the final checkpoint's weights");
        using var run = await HospitalRun.OpenAsync(ClientAgent.Configuration.AgentConfigurationFile.Load(bed.ConfigPath),
            new LogLineOutput(TextWriter.Null, TextWriter.Null, 1), CancellationToken.None);
        var test = run.Data.Split("test");
        using var client = ClientLayer.Create(run.Manifest, trainable: false, run.ConsortiumSecret);
        using var server = new ServerModel(run.Manifest, TorchSharp.torch.CPU);
        server.Load(checkpoint.ServerWeights, checkpoint.OptimizerState);
        float[] activations;
        using (var forward = client.Forward(test, Enumerable.Range(0, test.Count).ToArray(), train: false, out _)) activations = forward.ToFloats();
        var expected = EvaluationReport.Score(run, "test", test, server.Predict(activations, test.Count)).Classification!;
        var scored = report["classification"]!;
        scored["rocAuc"]!.GetValue<double>().Should().BeApproximately(expected.RocAuc, 1e-9);
        scored["accuracy"]!.GetValue<double>().Should().BeApproximately(expected.Accuracy, 1e-9);
        scored["truePositives"]!.GetValue<int>().Should().Be(expected.TruePositives);
        scored["falsePositives"]!.GetValue<int>().Should().Be(expected.FalsePositives);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline);
            await Task.Delay(20);
        }
    }
}
