using Azure.Storage.Blobs.Models;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// U-shaped runs through the real agent and the real function (drain mode, a child process) on a real Azurite: every
/// frame of a run opened with the hospital's key shows no label and no prediction crossing; the agent or the function
/// killed between the two legs of a batch loses and doubles nothing.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class UShapedAgentTests(AzuriteFixture azurite)
{
    private const int BatchSize = 16;

    private async Task<(AgentTestBed Bed, RunManifest Manifest)> ProvisionAsync(int epochs)
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], TrainingMode.UShaped, epochs: epochs, batchSize: BatchSize);
        var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(100));
        return (bed, manifest);
    }

    private static string[] Train(AgentTestBed bed, params string[] extra)
        => ["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", .. extra];

    [Fact]
    public async Task A_u_shaped_run_trains_and_evaluates_and_no_frame_it_sent_or_received_carries_a_label_or_a_prediction()
    {
        var (bed, manifest) = await ProvisionAsync(epochs: 2);
        using var _ = bed;
        await using (var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory))
        {
            var trained = await AgentTestBed.RunAsync(Train(bed));
            trained.ExitCode.Should().Be(0, trained + "\n--- function\n" + function.Output);
            trained.Output.Should().Contain("validation auc", "validation runs at the hospital through the tail");
            var evaluated = await AgentTestBed.RunAsync(["evaluate", "--config", bed.ConfigPath, "--split", "test", "--output", "log"]);
            evaluated.ExitCode.Should().Be(0, evaluated + "\n--- function\n" + function.Output);
            await function.StopAsync();
        }

        var state = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        state.ClientSteps.Should().Be(10, "80 training rows, batch 16, 2 epochs");
        state.TailWeights.Should().NotBeNull("the tail trains at the hospital");

        // Every frame in the hospital's container, opened with the hospital's key: what crossed the wire, both ways.
        var key = bed.Keys.GetKey(AgentTestBed.Hospital);
        var container = azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(AgentTestBed.Hospital));
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var lastBackward = -1L;
        await foreach (BlobItem item in container.GetBlobsAsync())
        {
            // The container is the hospital's, shared by the other tests' runs: this run's frames only.
            if (!item.Name.EndsWith(".sfe", StringComparison.Ordinal) || item.Name.Split('/')[1] != manifest.RunId) continue;
            var folder = item.Name.Split('/')[0];
            var sequence = long.Parse(Path.GetFileNameWithoutExtension(item.Name), System.Globalization.CultureInfo.InvariantCulture);
            var bytes = (await container.GetBlobClient(item.Name).DownloadContentAsync()).Value.Content.ToArray();
            PayloadKind[] kinds = folder switch
            {
                "features" => [PayloadKind.Features, PayloadKind.OutputGradients],
                "outputs" => [PayloadKind.ServerOutputs],
                "gradients" => [PayloadKind.Gradients],
                _ => [PayloadKind.Predictions],
            };
            DecodedTensor[]? tensors = null;
            foreach (var kind in kinds)
            {
                try
                {
                    tensors = SecureFrameCodec.Open(key, new CipherContext(manifest.RunId, AgentTestBed.Hospital, sequence, kind, key.KeyId), bytes,
                        bytes.Length, SecureFrameCodec.Digest(bytes));
                    seen[folder + "/" + kind] = seen.GetValueOrDefault(folder + "/" + kind) + 1;
                    if (kind == PayloadKind.OutputGradients) lastBackward = Math.Max(lastBackward, sequence);
                    break;
                }
                catch (ProtocolException)
                {
                }
            }
            tensors.Should().NotBeNull($"{item.Name} opens with the hospital's key as one of {string.Join(", ", kinds)}");
            tensors!.Should().ContainSingle($"{item.Name} carries one tensor: no labels beside the activations or gradients");
            var shape = tensors![0].Shape;
            (shape.Length == 2 && shape[1] == 1).Should().BeFalse($"{item.Name} has shape [{string.Join(",", shape)}]: a [batch,1] tensor is a label or a "
                + $"prediction");
            if (folder == "outputs") shape.Skip(1).Should().Equal([64L], "the server's outputs are the body's 64 features; the tail makes the prediction");
        }
        seen.Keys.Should().NotContain(k => k.StartsWith("predictions", StringComparison.Ordinal), "no prediction is ever sealed");
        seen.Should().ContainKey("features/" + PayloadKind.OutputGradients).WhoseValue.Should().Be(10);
        seen.Should().ContainKey("outputs/" + PayloadKind.ServerOutputs);

        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(10);
        // The last backward leg; the validation and test evaluations after it took sequences the watermark does not count.
        watermark.Should().Be(lastBackward);
    }

    [Theory]
    [InlineData("agent")]
    [InlineData("function")]
    public async Task Killed_between_the_two_legs_the_run_resumes_without_losing_or_doubling_a_step(string killed)
    {
        var (bed, manifest) = await ProvisionAsync(epochs: 2);
        using var owned = bed;
        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        try
        {
            using var agent = AgentTestBed.StartProcess(Train(bed, "--no-validation"));
            _ = agent.StandardOutput.ReadToEndAsync();
            _ = agent.StandardError.ReadToEndAsync();
            // Wait until the agent has committed a backward leg (the forward leg applied at the function), then kill.
            AgentState? between = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (DateTime.UtcNow < deadline && !agent.HasExited)
            {
                if (StateFolder.Peek(bed.StateFolder, manifest.RunId) is { ClientSteps: >= 2, Pending.Kind: FrameKind.Backward } s)
                {
                    between = s;
                    break;
                }
                await Task.Delay(2);
            }
            between.Should().NotBeNull("the agent reaches a backward leg\n" + function.Output);
            if (killed == "agent")
            {
                agent.Kill(entireProcessTree: true);
                await agent.WaitForExitAsync();
            }
            else
            {
                await function.KillAsync();
                await function.DisposeAsync();
                function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
                await agent.WaitForExitAsync();
                agent.ExitCode.Should().Be(0, "the agent waits out the function's restart\n" + function.Output);
            }
            var resumed = await AgentTestBed.RunAsync(Train(bed, "--no-validation"));
            resumed.ExitCode.Should().Be(0, resumed + "\n--- function\n" + function.Output);
            await function.StopAsync();
        }
        finally
        {
            await function.DisposeAsync();
        }

        var final = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        final.ClientSteps.Should().Be(10);
        final.Pending.Should().BeNull();
        var (watermark, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(10, "each batch's server step was applied exactly once");
        watermark.Should().Be(final.NextSequence - 1);
    }
}
