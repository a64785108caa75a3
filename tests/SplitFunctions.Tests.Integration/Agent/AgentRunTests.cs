using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// The agent against real Azurite and an in-test responder with the real engine: vanilla, temporal, evaluate, status, and the errors storage and the function
/// can cause.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AgentRunTests(AzuriteFixture azurite)
{
    private static string NewRunId() => "run-" + Guid.NewGuid().ToString("N")[..12];

    private async Task<(AgentTestBed Bed, RunManifest Manifest)> HospitalAsync(RunManifest? manifest = null, int images = 100)
    {
        manifest ??= AgentTestBed.SmallManifest(NewRunId());
        var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        await bed.InitAsync(azurite.Azurite.ConnectionString, bed.WriteImages(images));
        return (bed, manifest);
    }

    [Fact]
    public async Task Vanilla_run_trains_every_batch_once_then_evaluates_at_the_hospital()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        var train = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1"]);
        train.ExitCode.Should().Be(0, train.ToString());
        responder.Failure.Should().BeNull();
        // 100 images: 80 train rows, batch 16: 5 batches per epoch, 2 epochs.
        responder.Applied[AgentTestBed.Hospital].Should().HaveCount(10).And.BeInAscendingOrder().And.OnlyHaveUniqueItems();
        train.Output.Should().MatchRegex(@"train epoch=1/2 batch=1/5 loss=\d+\.\d{4} samples_per_s=\d+\.\d seq=1");

        var state = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        state.Epoch.Should().Be(2);
        state.ClientSteps.Should().Be(10);
        state.Pending.Should().BeNull();
        var history = TrainingHistoryFile.Load(Path.Combine(bed.RunStateFolder, "history.json"));
        history.Select(h => h.Epoch).Should().Equal(1, 2);
        history.Should().OnlyContain(h => h.ValidationMetric == "auc" && h.ValidationValue >= 0 && double.IsFinite(h.MeanTrainLoss));

        var evaluate = await AgentTestBed.RunAsync(["evaluate", "--config", bed.ConfigPath, "--output", "log"]);
        evaluate.ExitCode.Should().Be(0, evaluate.ToString());
        evaluate.Output.Should().ContainAll("accuracy", "ROC AUC", "confusion");
        var report = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(bed.RunStateFolder, "evaluation.json")))!;
        report["samples"]!.GetValue<int>().Should().Be(10);
        report["split"]!.GetValue<string>().Should().Be("test");
        report["serverModel"]!["mode"]!.GetValue<string>().Should().Be("vanilla", "the report names the server model that scored it");
        evaluate.Output.Should().Contain("scored by the server's vanilla model at journal step");

        var again = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        again.ExitCode.Should().Be(0);
        again.Output.Should().Contain("training complete");
        responder.Applied[AgentTestBed.Hospital].Should().HaveCount(10);

        var status = await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath]);
        status.ExitCode.Should().Be(0, status.ToString());
        status.Output.Should().ContainAll("client steps 10", "pending: none", "epoch 2: mean train loss", "reply queue messages: ");
        status.Output.Should().MatchRegex(@"reply queue messages: \d+");
    }

    [Fact]
    public async Task Max_batches_bounds_a_session_and_the_next_continues_with_the_next_batch()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        var first = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--max-batches", "3", "--no-validation"]);
        first.ExitCode.Should().Be(0, first.ToString());
        first.Output.Should().Contain("next start continues with epoch 1 batch 4");
        responder.Applied[AgentTestBed.Hospital].Should().Equal(1, 2, 3);

        var second = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        second.ExitCode.Should().Be(0, second.ToString());
        responder.Applied[AgentTestBed.Hospital].Should().Equal(Enumerable.Range(1, 10).Select(i => (long)i));
    }

    [Fact]
    public async Task Temporal_run_uploads_chunks_then_done_and_can_go_offline()
    {
        var (bed, manifest) = await HospitalAsync(AgentTestBed.SmallManifest(NewRunId(), TrainingMode.Temporal));
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest);

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1"]);
        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("upload complete");
        var state = StateFolder.Peek(bed.StateFolder, manifest.RunId)!;
        state.ChunksSent.Should().Be(5);
        state.DoneSent.Should().BeTrue();
        await WaitUntilAsync(() => responder.Applied.TryGetValue(AgentTestBed.Hospital, out var a) && a.Count == 5);
        state.ClientWeights.Should().BeNull("the temporal client layer is fixed and never updated");
    }

    [Fact]
    public async Task A_rejection_stops_the_agent_and_is_not_resent_blindly()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest) { RejectKind = (FrameKind.Train, "activations hold NaN") };

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        run.ExitCode.Should().Be((int)ExitCode.Rejected, run.ToString());
        run.Error.Should().ContainAll("activations hold NaN", "--retry-rejected");

        var again = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        again.ExitCode.Should().Be((int)ExitCode.Rejected);
        responder.Rejections.Should().Be(1);

        responder.RejectKind = null;
        var retry = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--retry-rejected", "--max-batches", "2",
            "--no-validation"]);
        retry.ExitCode.Should().Be(0, retry.ToString());
        responder.Applied[AgentTestBed.Hospital].Should().Equal(1, 2);
    }

    [Fact]
    public async Task A_reply_that_answers_another_message_is_ignored_and_deleted_and_a_slow_reply_is_waited_for_aloud()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest)
        {
            StrayRejections = true,
            FirstReplyDelay = TimeSpan.FromSeconds(19)
        };

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--max-batches", "3", "--no-validation"]);
        run.ExitCode.Should().Be(0, "a rejection naming another message is not this batch's\n" + run);
        responder.Applied[AgentTestBed.Hospital].Should().Equal(1, 2, 3);
        run.Error.Should().Contain("ignoring a reply #1 that answers another message");
        run.Output.Should().Contain("waiting for the function's reply to message #1 (15 s", "the agent says it is waiting");
        (await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(AgentTestBed.Hospital)).PeekMessagesAsync(32)).Value
            .Select(m => MessageCodec.ParseReply(m.Body.ToString())).Where(r => r.RunId == manifest.RunId && r.Kind == ReplyKind.Rejected)
            .Should().BeEmpty("the stray rejections were deleted");
    }

    [Fact]
    public async Task A_forged_rejection_answering_the_agent_s_own_message_is_ignored_and_deleted_and_the_real_reply_is_taken()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest) { ForgedRejections = true };

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--max-batches", "3", "--no-validation"]);
        run.ExitCode.Should().Be(0, "a reply the server did not sign stops nothing (it made the agent exit 10 on every start)\n" + run);
        responder.Applied[AgentTestBed.Hospital].Should().Equal(1, 2, 3);
        run.Error.Should().Contain("whose MAC does not verify");
        (await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(AgentTestBed.Hospital)).PeekMessagesAsync(32)).Value
            .Select(m => MessageCodec.ParseReply(m.Body.ToString())).Where(r => r.RunId == manifest.RunId && r.Kind == ReplyKind.Rejected)
            .Should().BeEmpty("the forged rejections were deleted");
    }

    [Fact]
    public async Task A_rejected_validation_is_run_again_on_retry_and_its_metric_is_not_lost()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        await using var responder = new TestResponder(azurite.Connection, bed.Keys, manifest) { RejectKind = (FrameKind.Evaluate, "predictions unavailable") };

        var first = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        first.ExitCode.Should().Be((int)ExitCode.Rejected, first.ToString());
        TrainingHistoryFile.Load(Path.Combine(bed.RunStateFolder, "history.json")).Single(h => h.Epoch == 1).ValidationMetric.Should().BeNull();

        responder.RejectKind = null;
        var retry = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--retry-rejected"]);
        retry.ExitCode.Should().Be(0, retry.ToString());
        retry.Output.Should().Contain("validating epoch 1 again");
        var history = TrainingHistoryFile.Load(Path.Combine(bed.RunStateFolder, "history.json"));
        history.Select(h => h.Epoch).Should().Equal(1, 2);
        history.Should().OnlyContain(h => h.ValidationMetric == "auc" && h.ValidationValue >= 0, "every epoch keeps its validation metric");
        var status = await AgentTestBed.RunAsync(["status", "--config", bed.ConfigPath]);
        status.Output.Should().Contain("epoch 1: mean train loss").And.Contain("validation auc");
    }

    [Fact]
    public async Task No_reply_is_a_function_timeout_that_asks_whether_it_runs()
    {
        var (bed, _) = await HospitalAsync();
        using var __ = bed;
        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json["timeouts"] = new JsonObject { ["replySeconds"] = 2, ["storageOutageSeconds"] = 30 };
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        run.ExitCode.Should().Be((int)ExitCode.FunctionTimeout, run.ToString());
        run.Error.Should().Contain("no reply from the function within 2 s").And.Contain("is it running?");
        StateFolder.Peek(bed.StateFolder, bed.RunId)!.Pending!.Sequence.Should().Be(1, "the message stays pending and is re-sent next time");
    }

    [Fact]
    public async Task A_manifest_with_an_unknown_layer_or_no_manifest_is_a_manifest_error()
    {
        var (bed, manifest) = await HospitalAsync();
        using var _ = bed;
        var json = JsonNode.Parse(manifest.ToJson())!.AsObject();
        json["layers"]![0]!["type"] = "transformer";
        var container = azurite.Connection.GetBlobContainerClient(Core.Contract.StorageNames.HospitalContainer(AgentTestBed.Hospital));
        await container.GetBlobClient($"manifests/{manifest.RunId}.json").UploadReplacingAsync(BinaryData.FromString(json.ToJsonString()));

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        run.ExitCode.Should().Be((int)ExitCode.Manifest, run.ToString());
        run.Error.Should().Contain("layers[0]: unknown layer type 'transformer'");

        await container.GetBlobClient($"manifests/{manifest.RunId}.json").DeleteAsync();
        var missing = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        missing.ExitCode.Should().Be((int)ExitCode.Manifest, missing.ToString());
        missing.Error.Should().Contain("has not been provisioned");
    }

    [Fact]
    public async Task A_csv_without_a_mapped_column_fails_the_train_command_with_the_data_code()
    {
        var manifest = RunManifest.ForModel(NewRunId(), Core.Model.ModelCatalog.LdlMlp, TrainingMode.Vanilla, [AgentTestBed.Hospital], 7);
        using var bed = new AgentTestBed(manifest.RunId);
        await AgentTestBed.ProvisionAsync(azurite.Connection, manifest);
        var csv = Path.Combine(bed.Folder, "lipids.csv");
        await File.WriteAllLinesAsync(csv, File.ReadLines(SharedData.Lipids).Take(200));
        await bed.InitAsync(azurite.Azurite.ConnectionString, csv, "--columns-preset", "nhis-lipids");
        // init checked the header; the file is replaced afterwards by one whose HDL column is renamed.
        await File.WriteAllLinesAsync(csv, File.ReadLines(SharedData.Lipids).Take(200).Select(l => l.Replace("HDL_chole", "HDL", StringComparison.Ordinal)));

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        run.ExitCode.Should().Be((int)ExitCode.Data, run.ToString());
        run.Error.Should().Contain("'HDL_chole' is not in the header");
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(100);
        }
    }
}
