using System.Text.Json.Nodes;
using Azure.Storage.Blobs.Models;
using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Issue 29 at the hospital, end to end against Azurite: a manifest below the hospital's floor is refused before
/// anything is written to storage; the epsilon budget stops the agent before the release that would exceed it, and
/// `status` shows what was spent; a server whose gradients fall outside the bound is clipped and reported.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class HospitalPrivacyTests(AzuriteFixture azurite)
{
    private static string NewRunId() => "run-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_manifest_below_the_hospital_s_floor_is_refused_before_anything_is_sent()
    {
        // pneumonia-cnn leaves one convolution at the hospital; the recommended floor asks for two.
        var manifest = AgentTestBed.SmallManifest(NewRunId());
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        var init = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", AgentTestBed.Hospital, "--run", bed.RunId, "--data",
            bed.WriteImages(100), "--connection-string", azurite.Azurite.ConnectionString, "--key-dir", bed.KeyDirectory, "--state", bed.StateFolder]);
        init.ExitCode.Should().Be(0, init.ToString());

        foreach (var command in new[] { "train", "evaluate" })
        {
            var run = await AgentTestBed.RunAsync([command, "--config", bed.ConfigPath, "--output", "log"]);
            run.ExitCode.Should().Be((int)ExitCode.PrivacyFloor, run.ToString());
            // One line naming the setting, then the exit code's: no stack trace.
            var lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            lines.Should().HaveCount(2);
            lines[0].Should().Contain("privacy.floor.minClientLayers 2").And.Contain("Nothing was sent");
            lines[1].Should().Contain("exit code 14 (PrivacyFloor)");
        }

        var container = azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(AgentTestBed.Hospital));
        var blobs = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, CancellationToken.None)) blobs.Add(blob.Name);
        blobs.Where(b => b.Contains(bed.RunId, StringComparison.Ordinal)).Should().Equal([$"manifests/{bed.RunId}.json"], "no frame was uploaded");
        var queued = (await azurite.Connection.GetQueueClient(StorageNames.FeaturesQueue).PeekMessagesAsync(32)).Value;
        queued.Select(m => m.Body.ToString()).Should().NotContain(body => body.Contains(bed.RunId, StringComparison.Ordinal), "no message was enqueued");
        StateFolder.Peek(bed.StateFolder, bed.RunId).Should().BeNull("no step was taken");
    }

    [Fact]
    public async Task The_budget_stops_the_agent_before_the_release_that_would_exceed_it_and_status_shows_epsilon()
    {
        // Clipped noise, sigma 1: 100 images (80 train, 10 validation, 10 test), delta 1/100. Epoch 1 and its validation
        // spend epsilon 4.34; epoch 2 would bring it to 5.70, above the budget of 5 (RdpAccountant, dp-accounting's orders).
        var manifest = AgentTestBed.SmallManifest(NewRunId()) with { Privacy = new PrivacySettings { NoiseSigma = 1, ClipNorm = 5 } };
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(100), "--max-epsilon", "5");
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        var train = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        train.ExitCode.Should().Be((int)ExitCode.PrivacyBudget, train.ToString());
        train.Error.Should().Contain("epsilon to 5.70").And.Contain("privacy.maxEpsilon 5");
        responder.Failure.Should().BeNull();
        responder.Applied[AgentTestBed.Hospital].Should().HaveCount(5, "epoch 1's five batches went; epoch 2's first batch never did");

        var state = StateFolder.Peek(bed.StateFolder, bed.RunId)!;
        state.Pending.Should().BeNull("nothing of the refused pass is pending");
        state.Releases.TrainingPasses.Should().Be(1);
        state.Releases.ValidationPasses.Should().Be(1);
        state.Releases.Epsilon.Should().BeApproximately(RdpAccountant.GaussianEpsilon(1, 2, 0.01), 1e-9);
        state.Releases.Epsilon.Should().BeApproximately(4.34, 0.01);

        var status = await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath]);
        status.Output.Should().Contain("privacy: epsilon 4.34 at delta 0.01 over 2 releases per sample (1 training, 1 validation, 0 evaluation passes)")
            .And.Contain("privacy.maxEpsilon 5");
        var json = JsonNode.Parse((await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath, "--json"])).Output)!;
        json["epsilon"]!.GetValue<double>().Should().BeApproximately(4.34, 0.01);

        // A new start does not send either: the ledger is durable.
        var again = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        again.ExitCode.Should().Be((int)ExitCode.PrivacyBudget, "the budget stays spent across starts");
        responder.Applied[AgentTestBed.Hospital].Should().HaveCount(5);
    }

    [Fact]
    public async Task A_server_whose_gradients_fall_outside_the_bound_is_clipped_and_reported()
    {
        var manifest = AgentTestBed.SmallManifest(NewRunId());
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(100));
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);
        // The third reply carries a gradient of 1 on every value, thousands of times an honest one's norm: what a server
        // steering the client layer towards its own target could send.
        responder.TamperGradient = (sequence, gradient) =>
        {
            if (sequence == 3) Array.Fill(gradient, 1f);
        };

        var train = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--max-batches", "4", "--no-validation"]);
        train.ExitCode.Should().Be(0, train.ToString());
        train.Error.Should().Contain("server gradient #3: 16 of 16 per-sample gradients exceeded the bound");
        var state = StateFolder.Peek(bed.StateFolder, bed.RunId)!;
        state.GradientRowsOutsideBound.Should().Be(16, train.Error);
        state.GradientBatchesOutsideBound.Should().Be(1);
        state.ClientSteps.Should().Be(4);

        var status = await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath]);
        status.Output.Should().Contain("WARNING: 16 per-sample gradients from the server in 1 batches fell outside");
    }
}
