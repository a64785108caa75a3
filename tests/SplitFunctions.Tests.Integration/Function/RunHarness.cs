using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// A real Azurite, a provisioned run, hospital keys in a local key folder, and what a hospital does on the wire
/// (sealed frames + messages), for testing the function without the agent.
/// </summary>
internal sealed class RunHarness : IAsyncDisposable
{
    private readonly TempDirectory keyFolder = new();

    private RunHarness(AzuriteProcess azurite, RunManifest manifest)
    {
        Azurite = azurite;
        Manifest = manifest;
        Keys = new LocalKeyStore(keyFolder.Path);
        Frames = new ServerFrameStore(azurite.Connection, Keys);
    }

    public AzuriteProcess Azurite { get; }

    public StorageConnection Storage => Azurite.Connection;

    public RunManifest Manifest { get; }

    public LocalKeyStore Keys { get; }

    public string KeyFolder => keyFolder.Path;

    public ServerFrameStore Frames { get; }

    public QueueClient Features => Storage.GetQueueClient(StorageNames.FeaturesQueue);

    public QueueClient Poison => Storage.GetQueueClient(StorageNames.FeaturesPoisonQueue);

    public QueueClient Rejections => Storage.GetQueueClient(StorageNames.FeaturesRejectionsQueue);

    public QueueClient Replies(string hospital) => Storage.GetQueueClient(StorageNames.RepliesQueue(hospital));

    /// <summary>Starts Azurite and provisions a run of ldl-mlp (fast) or the given model.</summary>
    public static async Task<RunHarness> StartAsync(TrainingMode mode = TrainingMode.Vanilla, string model = "ldl-mlp", string[]? hospitals = null,
        int batchSize = 16, int epochs = 3, string runId = "run-1",
        Func<RunManifest, RunManifest>? configure = null)
    {
        var azurite = await AzuriteProcess.StartAsync();
        var manifest = RunManifest.ForModel(runId, ModelCatalog.Get(model), mode, hospitals ?? ["alpha", "beta"], seed: 7) with
        {
            BatchSize = batchSize,
            Epochs = epochs
        };
        if (configure is not null) manifest = configure(manifest);
        var harness = new RunHarness(azurite, manifest);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        foreach (var hospital in manifest.Hospitals) harness.Keys.CreateKey(hospital);
        return harness;
    }

    /// <summary>An in-process server (its message router) over this Azurite (what drain mode and the custom handler wrap).</summary>
    public (MessageRouter Router, LeasedRuns Runs) CreateRouter(string instanceId = "test-instance", int retention = 3,
        long temporalWindowBytes = TemporalFeatureStream.DefaultWindowBytes, long temporalCacheBytes = DecryptedChunkCache.DefaultBudgetBytes,
        ServerFrameStore? frames = null)
    {
        frames ??= Frames;
        var store = new RunStore(Storage.GetBlobContainerClient(StorageNames.RunsContainer), retention);
        var runs = new LeasedRuns(store, frames, TorchSharp.torch.CPU, instanceId, NullLogger<LeasedRuns>.Instance);
        return (MessageRouter.Create(runs, frames, new StepTimeline(), temporalWindowBytes: temporalWindowBytes, temporalCacheBytes: temporalCacheBytes), runs);
    }

    /// <summary>
    /// A temporal run's chunks as its hospitals upload them: <paramref name="chunks"/> per hospital of
    /// <paramref name="samples"/> deterministic samples each, every one indexed by <paramref name="router"/>.
    /// </summary>
    public async Task SendChunksAsync(IMessageProcessor router, int chunks, int samples)
    {
        ArgumentNullException.ThrowIfNull(router);
        foreach (var hospital in Manifest.Hospitals)
        {
            for (var chunk = 0; chunk < chunks; chunk++)
            {
                var (a, y, shape) = Batch(samples, salt: hospital.Length * 10 + chunk);
                var outcome = await router.ProcessAsync(await PrepareAsync(hospital, chunk, FrameKind.Chunk, a, shape, y), 1, CancellationToken.None);
                outcome.Kind.Should().Be(OutcomeKind.Completed, outcome.Detail);
            }
        }
    }

    /// <summary>Deterministic activations of the run's cut shape and 0/1 labels.</summary>
    public (float[] Activations, float[] Labels, long[] Shape) Batch(int batch, int salt)
    {
        long[] shape = [batch, .. Manifest.CutShape];
        var count = (int)shape.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(salt);
        var activations = new float[count];
        for (var i = 0; i < count; i++) activations[i] = (float)(rng.NextDouble() * 2 - 1);
        var labels = new float[batch];
        for (var i = 0; i < batch; i++) labels[i] = Manifest.Task == TaskKind.Classification ? rng.Next(2) : (float)(rng.NextDouble() * 3);
        return (activations, labels, shape);
    }

    /// <summary>Uploads a sealed frame as the hospital would and returns the message text (not yet sent).</summary>
    /// <summary>Flips one bit near the end of a prepared features frame, as a storage attacker would.</summary>
    public async Task TamperFeaturesAsync(string hospital, long sequence)
    {
        var blob = Storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital))
            .GetBlobClient(StorageNames.FrameBlob("features", "run-1", sequence));
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[^3] ^= 0x10;
        await blob.UploadReplacingAsync(BinaryData.FromBytes(bytes));
    }

    /// <summary>Activations in the manifest's feature type and labels in fp32, as the agent seals them.</summary>
    public async Task<string> PrepareAsync(string hospital, long sequence, FrameKind kind, float[] activations, long[] shape, float[]? labels)
    {
        List<FrameTensor> tensors = [new(Manifest.FeatureType, shape, activations)];
        if (labels is not null) tensors.Add(new(ElementType.Float32, [labels.Length, 1], labels));
        var key = Keys.GetKey(hospital, Keys.GetCurrentKeyId(hospital)!);
        var sealedBytes = SecureFrameCodec.Seal(key, new CipherContext(Manifest.RunId, hospital, sequence, PayloadKind.Features, key.KeyId), [.. tensors]);
        var blob = StorageNames.FrameBlob(StorageNames.PayloadFolder(PayloadKind.Features), Manifest.RunId, sequence);
        await Storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital)).GetBlobClient(blob)
            .UploadReplacingAsync(new BinaryData(sealedBytes.Blob));
        return MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
        {
            RunId = Manifest.RunId,
            HospitalId = hospital,
            Sequence = sequence,
            Kind = kind,
            Blob = blob,
            Length = sealedBytes.Length,
            Sha256 = sealedBytes.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(hospital),
            KeyId = key.KeyId,
        }, key));
    }

    /// <summary>A U-shaped backward leg: dL/d(server output) sealed as the agent seals it, and its message text.</summary>
    public async Task<string> PrepareBackwardAsync(string hospital, long sequence, float[] outputGradient, long[] shape,
        PayloadKind sealAs = PayloadKind.OutputGradients)
    {
        var key = Keys.GetKey(hospital);
        var sealedBytes = SecureFrameCodec.Seal(key, new CipherContext(Manifest.RunId, hospital, sequence, sealAs, key.KeyId),
            [new FrameTensor(Manifest.FeatureType, shape, outputGradient)]);
        var blob = StorageNames.FrameBlob("features", Manifest.RunId, sequence);
        await Storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital)).GetBlobClient(blob)
            .UploadReplacingAsync(new BinaryData(sealedBytes.Blob));
        return MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
        {
            RunId = Manifest.RunId,
            HospitalId = hospital,
            Sequence = sequence,
            Kind = FrameKind.Backward,
            Blob = blob,
            Length = sealedBytes.Length,
            Sha256 = sealedBytes.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(hospital),
            KeyId = key.KeyId,
        }, key));
    }

    /// <summary>
    /// Seals and uploads frame bytes as given (a hostile or broken hospital: our encoder refuses NaN, so tests patch
    /// the bytes after encoding) and returns the message text.
    /// </summary>
    public async Task<string> PrepareRawAsync(string hospital, long sequence, FrameKind kind, byte[] frame)
    {
        var key = Keys.GetKey(hospital);
        var sealedBytes = FrameCipher.Seal(key.Key, new CipherContext(Manifest.RunId, hospital, sequence, PayloadKind.Features, key.KeyId), frame);
        var blob = StorageNames.FrameBlob("features", Manifest.RunId, sequence);
        await Storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital)).GetBlobClient(blob)
            .UploadReplacingAsync(BinaryData.FromBytes(sealedBytes));
        return MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
        {
            RunId = Manifest.RunId,
            HospitalId = hospital,
            Sequence = sequence,
            Kind = kind,
            Blob = blob,
            Length = sealedBytes.Length,
            Sha256 = SecureFrameCodec.Digest(sealedBytes),
            ReplyQueue = StorageNames.RepliesQueue(hospital),
            KeyId = key.KeyId,
        }, key));
    }

    public string DoneMessage(string hospital, long sequence, int chunkCount) => MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
    {
        RunId = Manifest.RunId,
        HospitalId = hospital,
        Sequence = sequence,
        Kind = FrameKind.Done,
        ReplyQueue = StorageNames.RepliesQueue(hospital),
        ChunkCount = chunkCount,
    }, Keys.GetKey(hospital)));

    /// <summary>Waits for the next reply on the hospital's queue and deletes it.</summary>
    public async Task<ReplyMessage> NextReplyAsync(string hospital, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        var queue = Replies(hospital);
        while (DateTime.UtcNow < deadline)
        {
            QueueMessage[] received = await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30));
            if (received.Length == 1)
            {
                await queue.DeleteMessageAsync(received[0].MessageId, received[0].PopReceipt);
                return MessageCodec.ParseReply(received[0].Body.ToString());
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"no reply for {hospital} within the timeout");
    }

    /// <summary>The reply to <paramref name="sequence"/>, skipping older ones (a redelivered message is answered again, as the agent expects).</summary>
    public async Task<ReplyMessage> ReplyToAsync(string hospital, long sequence, TimeSpan? timeout = null)
    {
        while (true)
        {
            var reply = await NextReplyAsync(hospital, timeout);
            if (reply.Sequence >= sequence) return reply;
        }
    }

    /// <summary>Downloads and opens a gradient or prediction blob named in a reply.</summary>
    public async Task<DecodedTensor[]> ReadReplyAsync(ReplyMessage reply)
    {
        var bytes = (await Storage.GetBlobContainerClient(StorageNames.HospitalContainer(reply.HospitalId)).GetBlobClient(reply.Blob!)
            .DownloadContentAsync()).Value.Content;
        return SecureFrameCodec.Open(Keys.GetKey(reply.HospitalId, reply.KeyId), reply, bytes.ToMemory().Span);
    }

    /// <summary>The messages currently in `features-poison` (each as the hospital sent it).</summary>
    public async Task<List<string>> PoisonTextsAsync()
    {
        var texts = new List<string>();
        foreach (var m in (await Poison.PeekMessagesAsync(32)).Value) texts.Add(m.Body.ToString());
        return texts;
    }

    /// <summary>The records on `features-rejections` saying why each message was poisoned.</summary>
    public async Task<List<PoisonRecord>> PoisonRecordsAsync()
    {
        var records = new List<PoisonRecord>();
        await Rejections.CreateIfNotExistsAsync();
        foreach (var m in (await Rejections.PeekMessagesAsync(32)).Value) records.Add(PoisonRecord.Parse(m.Body.ToString()));
        return records;
    }

    public async ValueTask DisposeAsync()
    {
        await Azurite.DisposeAsync();
        keyFolder.Dispose();
    }
}
