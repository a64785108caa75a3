using System.Text;
using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// The tester's three failures against the real drain process on Azurite: any message on `features` ends poisoned with a
/// reason while the server keeps serving; a storage outage is ridden out; a hospital cannot make the server answer another.
/// </summary>
public sealed class HostileInputTests
{
    private static readonly byte[] Utf16WithBom = [0xff, 0xfe, .. Encoding.Unicode.GetBytes("{\"v\":2}")];

    private static QueueClient RawFeatures(RunHarness run) => run.Storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());

    private static async Task<List<PoisonRecord>> WaitForRecordsAsync(RunHarness run, int count, FunctionProcess drain)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        List<PoisonRecord> records;
        while ((records = await run.PoisonRecordsAsync()).Count < count && DateTime.UtcNow < deadline && !drain.HasExited) await Task.Delay(200);
        return records;
    }

    [Fact]
    public async Task Raw_text_wrong_encoding_garbage_and_oversized_messages_are_poisoned_with_a_reason_and_the_server_keeps_serving()
    {
        await using var run = await RunHarness.StartAsync();
        var raw = RawFeatures(run);
        var hostile = new Dictionary<string, string>
        {
            // What common queue tools write: the JSON as plain text, not Base64 (it made the drain loop throw for good).
            ["raw text"] = """{"v":2,"run":"run-1","hospital":"alpha","seq":0,"kind":"train"}""",
            // Base64 of bytes that are not UTF-8 (Latin-1 / UTF-16 text).
            ["wrong encoding"] = Convert.ToBase64String(Utf16WithBom),
            ["garbage"] = QueueText.Encode("\u0001\u0002 not json at all }{"),
            // Base64 of anything over 48 KiB does not fit in a queue message, so an oversized one is raw (60 KiB).
            ["oversized"] = "{\"v\":2,\"pad\":\"" + new string('x', 60 * 1024) + "\"}",
            ["version 1"] = QueueText.Encode("""{"v":1,"run":"run-1","hospital":"alpha","seq":0,"kind":"done","length":0,"replyQueue":"replies-alpha","chunkCount":0}"""),
        };
        foreach (var text in hostile.Values) await raw.SendMessageAsync(text);

        await using var drain = FunctionProcess.Start(run, "drain", "drain-hostile");
        var records = await WaitForRecordsAsync(run, hostile.Count, drain);
        drain.HasExited.Should().BeFalse("no message stops the server\n" + drain.Output);
        records.Should().HaveCount(hostile.Count, drain.Output);
        records.Should().OnlyContain(r => r.Host == PoisonHosts.Drain && r.DequeueCount == 1, "a message that can never succeed is poisoned on its first "
            + "delivery");
        records.Single(r => r.Message == hostile["raw text"]).Reason.Should().Contain("not Base64");
        records.Single(r => r.Message == hostile["wrong encoding"]).Reason.Should().Contain("not UTF-8");
        records.Single(r => r.Message.Contains("not json", StringComparison.Ordinal)).Reason.Should().Contain("not valid SplitFunctions JSON");
        records.Single(r => r.Message.StartsWith("{\"v\":2,\"pad\"", StringComparison.Ordinal)).Reason.Should().Contain("not Base64");
        records.Single(r => r.Message.Contains("\"v\":1", StringComparison.Ordinal)).Reason.Should().Contain("no MAC");
        var poisoned = (await run.Storage.GetQueueClient(StorageNames.FeaturesPoisonQueue, StorageClientDefaults.RawQueue()).PeekMessagesAsync(32))
            .Value.Select(m => m.Body.ToString());
        poisoned.Should().BeEquivalentTo(hostile.Values, "features-poison holds each message exactly as it was stored");

        // The server still serves: a valid batch is answered.
        var (a, y, shape) = run.Batch(8, salt: 3);
        await run.Features.SendMessageAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y));
        (await run.ReplyToAsync("alpha", 0, TimeSpan.FromSeconds(60))).Kind.Should().Be(ReplyKind.Gradients, drain.Output);
        (await drain.WaitForOutputAsync("Completed", TimeSpan.FromSeconds(30))).Should().Contain("drain: message")
            .And.Contain("Completed", "one log line per message");
        (await run.Replies("alpha").PeekMessagesAsync(1)).Value.Should().BeEmpty("no hostile message was answered");
    }

    [Fact]
    public async Task A_message_naming_another_hospital_is_poisoned_and_that_hospital_hears_nothing_and_trains_on()
    {
        await using var run = await RunHarness.StartAsync();
        var (a, y, shape) = run.Batch(8, salt: 5);
        // Alpha names beta and beta's next sequence, with a blob that does not exist in beta's container (the tester's
        // case), once without a MAC, once with a MAC under its own key, once with a made-up MAC under beta's key id.
        var alphaKey = run.Keys.GetKey("alpha");
        var betaKeyId = run.Keys.GetCurrentKeyId("beta")!;
        var forged = new FrameMessage
        {
            RunId = "run-1",
            HospitalId = "beta",
            Sequence = 0,
            Kind = FrameKind.Train,
            Blob = StorageNames.FrameBlob("features", "run-1", 0),
            Length = 4096,
            Sha256 = new string('a', 64),
            ReplyQueue = StorageNames.RepliesQueue("beta"),
            KeyId = alphaKey.KeyId,
        };
        var underAlphasKey = forged with { Mac = MessageAuthentication.Compute(forged, alphaKey.Key) };
        var madeUp = forged with { KeyId = betaKeyId, Mac = new string('0', 64) };
        var noMac = QueueText.Encode(System.Text.Json.JsonSerializer.Serialize(new
        {
            v = 2,
            run = "run-1",
            hospital = "beta",
            seq = 0,
            kind = "train",
            blob = forged.Blob,
            length = 4096,
            sha256 = forged.Sha256,
            replyQueue = forged.ReplyQueue,
            keyId = betaKeyId
        }));
        await RawFeatures(run).SendMessageAsync(noMac);
        await run.Features.SendMessageAsync(MessageCodec.Serialize(underAlphasKey));
        await run.Features.SendMessageAsync(MessageCodec.Serialize(madeUp));

        await using var drain = FunctionProcess.Start(run, "drain", "drain-forged");
        var records = await WaitForRecordsAsync(run, 3, drain);
        records.Should().HaveCount(3, drain.Output);
        records.Should().OnlyContain(r => r.DequeueCount == 1);
        records.Where(r => r.Reason.Contains("no reply sent", StringComparison.Ordinal)).Should().HaveCount(2);
        records.Should().Contain(r => r.Reason.Contains("does not verify under hospital "
            + "'beta'", StringComparison.Ordinal) || r.Reason.Contains("does not hold", StringComparison.Ordinal));
        records.Should().Contain(r => r.Reason.Contains("mac must be", StringComparison.Ordinal));
        (await run.Replies("beta").PeekMessagesAsync(1)).Value.Should().BeEmpty("nothing is sent to a hospital that did not send the message");

        // Beta's own message under the same sequence is applied and answered as if nothing had happened.
        var real = await run.PrepareAsync("beta", 0, FrameKind.Train, a, shape, y);
        await run.Features.SendMessageAsync(real);
        var reply = await run.NextReplyAsync("beta", TimeSpan.FromSeconds(60));
        reply.Kind.Should().Be(ReplyKind.Gradients, drain.Output);
        reply.Answers.Should().Be(MessageCodec.ParseFrame(real).Mac, "a reply names the MAC of the exact message it answers");
    }

    [Fact]
    public void A_rejection_sent_to_a_hospital_carries_no_server_path()
    {
        HospitalReplies.ForHospital("No key 'k9' for hospital 'alpha' in /srv/splitfn/keys/x: copy that key file; C:\\keys\\a.key too")
            .Should().Be("No key 'k9' for hospital 'alpha' in <server path> copy that key file; <server path> too");
        HospitalReplies.ForHospital("blob 'features/run-1/000000000001.sfe' at http://127.0.0.1:10000/devstoreaccount1 does not exist")
            .Should().Be("blob 'features/run-1/000000000001.sfe' at http://127.0.0.1:10000/devstoreaccount1 does not "
                + "exist", "blob names and URLs are not server paths");
        HospitalReplies.ForHospital(new string('x', 5000)).Length.Should().Be(MessageCodec.MaxReasonLength);
    }

    [Fact]
    public async Task The_drain_process_rides_out_a_20_second_storage_outage_and_loses_or_doubles_no_step()
    {
        await using var run = await RunHarness.StartAsync();
        await using var blobProxy = new TcpOutageProxy(run.Azurite.BlobPort);
        await using var queueProxy = new TcpOutageProxy(run.Azurite.QueuePort);
        var account = StorageConnection.DevelopmentAccountName;
        var viaProxy = $"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={StorageConnection.DevelopmentAccountKey};" +
                       $"BlobEndpoint=http://127.0.0.1:{blobProxy.Port}/{StorageConnection.DevelopmentAccountName};" +
                       $"QueueEndpoint=http://127.0.0.1:{queueProxy.Port}/{StorageConnection.DevelopmentAccountName};";
        await using var drain = FunctionProcess.Start(run, "drain", "drain-outage", new Dictionary<string, string> { ["AzureWebJobsStorage"] = viaProxy });
        const int batches = 6;
        for (var seq = 0; seq < batches; seq++)
        {
            var (a, y, shape) = run.Batch(8, salt: 100 + seq);
            await run.Features.SendMessageAsync(await run.PrepareAsync("alpha", seq, FrameKind.Train, a, shape, y));
            if (seq == 2)
            {
                // The message is on the queue (sent straight to Azurite) while the function cannot reach storage.
                blobProxy.Down();
                queueProxy.Down();
                await Task.Delay(TimeSpan.FromSeconds(20));
                drain.HasExited.Should().BeFalse("an outage does not end the server\n" + drain.Output);
                blobProxy.Up();
                queueProxy.Up();
            }
            var reply = await run.ReplyToAsync("alpha", seq, TimeSpan.FromSeconds(120));
            reply.Sequence.Should().Be(seq, drain.Output);
            reply.Kind.Should().Be(ReplyKind.Gradients, drain.Output);
        }
        drain.Output.Should().Contain("storage unavailable").And.Contain("storage reachable again");
        await drain.StopAsync();

        (await run.PoisonRecordsAsync()).Should().BeEmpty("an outage poisons nothing");
        var store = new RunStore(run.Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        var (checkpoint, _) = await store.LoadLatestAsync("run-1", CancellationToken.None);
        checkpoint!.State.RecentBatches.Select(b => b.Sequence).Should().Equal(Enumerable.Range(0, batches).Select(i => (long)i), drain.Output);
        checkpoint.State.BatchesApplied.Should().Be(batches);
    }
}
