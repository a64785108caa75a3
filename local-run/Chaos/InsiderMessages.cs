using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>
/// The insider of issue 31: a hospital of the run with a valid key (onboarded, in the manifest, no agent) whose every
/// message is authenticated and sealed correctly but whose content attacks the shared model or the server: huge values,
/// infinities, oversized batches, a blob far larger than announced, a deleted blob, legs the run is not waiting for, and
/// forged replies on another hospital's reply queue. Its sequences start far above any real one, so its poison records are
/// matched like the storm's (<see cref="QueueObserver"/>).
/// </summary>
public sealed class InsiderMessages(StorageConnection storage, string keyFolder, RunManifest manifest, string insider)
{
    /// <summary>Sequences of the insider's messages start here.</summary>
    public const long FirstSequence = 2 * HostileMessages.FirstSequence;

    /// <summary>The attacks on `features`, in the order they are cycled through (every mode sends every one of them).</summary>
    public static readonly HostileKind[] Kinds =
    [
        HostileKind.InsiderHugeValues, HostileKind.InsiderInfinity, HostileKind.InsiderOversizedBatch, HostileKind.InsiderHugeBlob,
        HostileKind.InsiderDeletedBlob, HostileKind.InsiderOutOfOrderLeg,
    ];

    // 24 MiB: far beyond any frame of the chaos run's model, small enough for Azurite on a shared machine.
    private const int HugeBlobBytes = 24 << 20;

    private readonly QueueClient features = storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());
    private readonly LocalKeyStore keys = new(keyFolder);
    private readonly long[] outputShape = OutputShape(manifest);
    private long next = FirstSequence;

    /// <summary>The insider's hospital id.</summary>
    public string HospitalId => insider;

    /// <summary>Forged replies written on other hospitals' reply queues so far.</summary>
    public int ForgedReplies { get; private set; }

    private FrameKind StepKind => manifest.Mode switch
    {
        TrainingMode.Temporal => FrameKind.Chunk,
        TrainingMode.UShaped => FrameKind.Forward,
        _ => FrameKind.Train,
    };

    /// <summary>Sends one attack of <paramref name="kind"/>; returns the message whose poison record must be found.</summary>
    public async Task<HostileMessage> SendAsync(HostileKind kind, CancellationToken ct)
    {
        var key = keys.GetKey(insider);
        var rows = manifest.BatchSize;
        switch (kind)
        {
            case HostileKind.InsiderHugeValues when manifest.Mode == TrainingMode.UShaped:
                {
                    // A forward leg the server accepts, then its backward leg with every output gradient 3e38 (the probe that made
                    // 31,946 server weights NaN).
                    var forward = next++;
                    var wire = await UploadAsync(key, forward, FrameKind.Forward, Frame(rows, 0.25f, labels: false), PayloadKind.Features, ct)
                        .ConfigureAwait(false);
                    await features.SendMessageAsync(wire, ct).ConfigureAwait(false);
                    await WaitForReplyAsync(forward, ct).ConfigureAwait(false);
                    var backward = next++;
                    var gradient = new FrameTensor(ElementType.Float32, [rows, .. outputShape], Fill(rows * Count(outputShape), 3e38f));
                    return await SendFrameAsync(kind, key, backward, FrameKind.Backward, TensorFrame.Encode(gradient), PayloadKind.OutputGradients, ct)
                        .ConfigureAwait(false);
                }
            case HostileKind.InsiderHugeValues:
                return await SendFrameAsync(kind, key, next++, StepKind, Frame(rows, 3e38f, StepKind != FrameKind.Forward), PayloadKind.Features, ct)
                    .ConfigureAwait(false);
            case HostileKind.InsiderInfinity:
                {
                    // The encoder refuses non-finite values, so the infinity is written into the encoded frame.
                    var plain = Frame(rows, 0.25f, StepKind != FrameKind.Forward);
                    BitConverter.TryWriteBytes(plain.AsSpan(plain.Length - 8), float.PositiveInfinity);
                    return await SendFrameAsync(kind, key, next++, StepKind, plain, PayloadKind.Features, ct).ConfigureAwait(false);
                }
            case HostileKind.InsiderOversizedBatch when manifest.Mode == TrainingMode.Temporal:
                {
                    // A chunk may hold up to 128 batches, more than an upload here can carry: the header declares 129 batches of rows
                    // over one batch of data (the first tensor's element count and first dimension, patched after encoding).
                    var plain = Frame(rows, 0.25f, labels: true);
                    var declared = (long)rows * 129;
                    BinaryPrimitives.WriteInt64LittleEndian(plain.AsSpan(12), declared * Count(manifest.CutShape));
                    BinaryPrimitives.WriteInt64LittleEndian(plain.AsSpan(20), declared);
                    return await SendFrameAsync(kind, key, next++, StepKind, plain, PayloadKind.Features, ct).ConfigureAwait(false);
                }
            case HostileKind.InsiderOversizedBatch:
                return await SendFrameAsync(kind, key, next++, StepKind, Frame(rows * 8, 0.25f, StepKind != FrameKind.Forward), PayloadKind.Features, ct)
                    .ConfigureAwait(false);
            case HostileKind.InsiderHugeBlob:
                {
                    // The message announces a small frame; the blob it names is 24 MiB.
                    var sequence = next++;
                    var name = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, sequence);
                    await Container().GetBlobClient(name).UploadAsync(BinaryData.FromBytes(RandomNumberGenerator.GetBytes(HugeBlobBytes)), overwrite: true, ct)
                        .ConfigureAwait(false);
                    var message = Message(key, sequence, StepKind) with { Blob = name, Length = 4096, Sha256 = new string('a', 64) };
                    return await SendAsync(kind, MessageAuthentication.Sign(message, key), ct).ConfigureAwait(false);
                }
            case HostileKind.InsiderDeletedBlob:
                {
                    var sequence = next++;
                    var wire = await UploadAsync(key, sequence, StepKind, Frame(rows, 0.25f, StepKind != FrameKind.Forward), PayloadKind.Features, ct)
                        .ConfigureAwait(false);
                    await Container().GetBlobClient(StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, sequence))
                        .DeleteIfExistsAsync(cancellationToken: ct).ConfigureAwait(false);
                    await features.SendMessageAsync(wire, ct).ConfigureAwait(false);
                    return Needle(kind, sequence);
                }
            case HostileKind.InsiderOutOfOrderLeg:
                {
                    // A leg the run is not waiting for: U-shaped, a backward leg with no forward leg open for it; temporal, a `done`
                    // counting chunks that were never sent; vanilla, a backward leg in a run that has none.
                    var sequence = next++;
                    if (manifest.Mode == TrainingMode.Temporal)
                    {
                        var done = new FrameMessage
                        {
                            RunId = manifest.RunId,
                            HospitalId = insider,
                            Sequence = sequence,
                            Kind = FrameKind.Done,
                            ReplyQueue = StorageNames.RepliesQueue(insider),
                            ChunkCount = (int)Math.Min(int.MaxValue, sequence + 1),
                        };
                        return await SendAsync(kind, MessageAuthentication.Sign(done, key), ct).ConfigureAwait(false);
                    }
                    var gradient = new FrameTensor(ElementType.Float32, [rows, .. outputShape], Fill(rows * Count(outputShape), 0.01f));
                    return await SendFrameAsync(kind, key, sequence + 5, FrameKind.Backward, TensorFrame.Encode(gradient), PayloadKind.OutputGradients, ct)
                        .ConfigureAwait(false);
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an insider attack");
        }
    }

    /// <summary>
    /// A `rejected` reply on <paramref name="victim"/>'s reply queue answering its message <paramref name="sequence"/> (whose
    /// MAC is <paramref name="answers"/>), signed with the insider's own key: the agent must ignore and delete it, not stop.
    /// </summary>
    public async Task ForgeReplyAsync(string victim, long sequence, string? answers, CancellationToken ct)
    {
        var reply = new ReplyMessage
        {
            RunId = manifest.RunId,
            HospitalId = victim,
            Sequence = sequence,
            Kind = ReplyKind.Rejected,
            Reason = "forged by the insider: stop training",
            Answers = answers,
        };
        // The insider's own key: the MAC any writer of the queue can compute, which the victim's key does not verify.
        var forged = reply with { Mac = MessageAuthentication.ComputeReply(reply, keys.GetKey(insider).Key) };
        await storage.GetQueueClient(StorageNames.RepliesQueue(victim)).SendMessageAsync(MessageCodec.Serialize(forged), ct).ConfigureAwait(false);
        ForgedReplies++;
    }

    /// <summary>The insider's `done` in a temporal run (no chunk of it was ever accepted), so the server's epochs can start.</summary>
    public async Task SendDoneAsync(CancellationToken ct)
    {
        var key = keys.GetKey(insider);
        var done = new FrameMessage
        {
            RunId = manifest.RunId,
            HospitalId = insider,
            Sequence = next++,
            Kind = FrameKind.Done,
            ReplyQueue = StorageNames.RepliesQueue(insider),
            ChunkCount = 0,
        };
        await features.SendMessageAsync(QueueText.Encode(MessageCodec.Serialize(MessageAuthentication.Sign(done, key))), ct).ConfigureAwait(false);
    }

    private async Task<HostileMessage> SendFrameAsync(HostileKind kind, HospitalKey key, long sequence, FrameKind frameKind, byte[] plain, PayloadKind payload,
        CancellationToken ct)
    {
        var wire = await UploadAsync(key, sequence, frameKind, plain, payload, ct).ConfigureAwait(false);
        await features.SendMessageAsync(wire, ct).ConfigureAwait(false);
        return Needle(kind, sequence);
    }

    private async Task<HostileMessage> SendAsync(HostileKind kind, FrameMessage signed, CancellationToken ct)
    {
        await features.SendMessageAsync(QueueText.Encode(MessageCodec.Serialize(signed)), ct).ConfigureAwait(false);
        return Needle(kind, signed.Sequence);
    }

    private async Task<string> UploadAsync(HospitalKey key, long sequence, FrameKind frameKind, byte[] plain, PayloadKind payload, CancellationToken ct)
    {
        var blob = FrameCipher.Seal(key.Key, new CipherContext(manifest.RunId, insider, sequence, payload, key.KeyId), plain);
        var name = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, sequence);
        await Container().GetBlobClient(name).UploadAsync(BinaryData.FromBytes(blob), overwrite: true, ct).ConfigureAwait(false);
        var message = Message(key, sequence, frameKind) with { Blob = name, Length = blob.Length, Sha256 = SecureFrameCodec.Digest(blob) };
        return QueueText.Encode(MessageCodec.Serialize(MessageAuthentication.Sign(message, key)));
    }

    // Waits (up to a minute) for the server's answer to the insider's forward leg, so its backward leg finds it open.
    private async Task WaitForReplyAsync(long sequence, CancellationToken ct)
    {
        var replies = storage.GetQueueClient(StorageNames.RepliesQueue(insider));
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var message in (await replies.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(1), ct).ConfigureAwait(false)).Value)
            {
                await replies.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
                if (MessageCodec.ParseReply(message.Body.ToString()).Sequence == sequence) return;
            }
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    private FrameMessage Message(HospitalKey key, long sequence, FrameKind kind) => new()
    {
        RunId = manifest.RunId,
        HospitalId = insider,
        Sequence = sequence,
        Kind = kind,
        ReplyQueue = StorageNames.RepliesQueue(insider),
        KeyId = key.KeyId,
    };

    // A frame of `rows` samples of the cut's shape, every value `value`, with 0/1 labels when the mode sends them.
    private byte[] Frame(int rows, float value, bool labels)
    {
        var features = new FrameTensor(ElementType.Float32, [rows, .. manifest.CutShape], Fill(rows * Count(manifest.CutShape), value));
        if (!labels) return TensorFrame.Encode(features);
        var width = manifest.ModelDefinition.LabelWidth;
        var targets = new float[rows * width];
        for (var i = 0; i < targets.Length; i += 2) targets[i] = 1;
        return TensorFrame.Encode(features, new FrameTensor(ElementType.Float32, [rows, width], targets));
    }

    private Azure.Storage.Blobs.BlobContainerClient Container() => storage.GetBlobContainerClient(StorageNames.HospitalContainer(insider));

    private static HostileMessage Needle(HostileKind kind, long sequence) =>
        new(kind, string.Create(CultureInfo.InvariantCulture, $"\"seq\":{sequence}"));

    private static float[] Fill(long count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return values;
    }

    private static long Count(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    // What the server's part outputs: the U-shaped body's output shape (the backward leg's gradient), else unused.
    private static long[] OutputShape(RunManifest manifest)
    {
        if (manifest.Mode != TrainingMode.UShaped) return [1];
        using var model = new ServerModel(manifest, TorchSharp.torch.CPU);
        return model.OutputShape;
    }
}
