using System.Diagnostics;
using System.Text;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// One vanilla step as the hospital saw it, in milliseconds, with the Stopwatch timestamps of enqueue and reply, the
/// bytes that crossed the wire (sealed frames and message texts), and how many times it looked at its reply queue
/// (each look one receive request: the last finds the reply, the others are empty polls).
/// </summary>
public sealed record HospitalStep(
    long Sequence, int Samples, double ForwardMs, double SealMs, double UploadMs, double EnqueueMs, double WaitMs, double DownloadMs, double OpenMs,
    double BackwardMs, double TotalMs, long EnqueuedAt, long RepliedAt, long End, long SentBytes, long ReceivedBytes, int Looks);

/// <summary>
/// A hospital's vanilla loop in the benchmark process, doing what the agent's VanillaTrainer does on the wire: client
/// forward (the agent's ClientLayer), encode + seal, upload (or the frame inside the message when it fits and
/// <see cref="ReplyPoll.InlineFrames"/>), enqueue `train`, wait for the reply, download (unless inline) + open dL/dA,
/// client backward + step. No state folder: the agent's crash-safety writes are not what is measured here.
/// </summary>
public sealed class BenchHospital : IDisposable
{
    private readonly RunManifest manifest;
    private readonly TrainingSet data;
    private readonly ClientLayer client;
    private readonly HospitalKey key;
    private readonly BlobContainerClient container;
    private readonly QueueClient features;
    private readonly QueueClient replies;
    private long sequence;
    private int cursor;
    private Task deleting = Task.CompletedTask;

    public BenchHospital(SplitRig rig, RunManifest manifest, string hospital, TrainingSet data, ReplyPoll replyPoll)
    {
        ArgumentNullException.ThrowIfNull(rig);
        this.manifest = manifest ?? throw new ArgumentNullException(nameof(manifest));
        this.data = data ?? throw new ArgumentNullException(nameof(data));
        Polling = replyPoll ?? throw new ArgumentNullException(nameof(replyPoll));
        Hospital = hospital;
        client = ClientLayer.Create(manifest, trainable: true, secret: null);
        key = rig.Keys.GetKey(hospital);
        // The hospital's way to storage: through the rig's hospital link (its round trip) when there is one.
        container = rig.HospitalStorage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital));
        features = rig.HospitalStorage.GetQueueClient(StorageNames.FeaturesQueue);
        replies = rig.HospitalStorage.GetQueueClient(StorageNames.RepliesQueue(hospital));
    }

    public string Hospital { get; }

    /// <summary>How the hospital sleeps between looks at its reply queue; may change between rounds.</summary>
    public ReplyPoll Polling { get; set; }

    /// <summary>One batch through the whole round trip.</summary>
    public async Task<HospitalStep> StepAsync(CancellationToken ct = default)
    {
        var n = manifest.BatchSize;
        if ((cursor + 1) * n > data.Count) cursor = 0;
        var indices = Enumerable.Range(cursor++ * n, n).ToArray();
        var seq = sequence++;
        var clock = Stopwatch.StartNew();
        var t0 = clock.Elapsed;

        using var activations = client.Forward(data, indices, train: true, out var targets);
        var values = activations.ToFloats();
        var t1 = clock.Elapsed;

        var context = new CipherContext(manifest.RunId, Hospital, seq, PayloadKind.Features, key.KeyId);
        var sealedFrame = SecureFrameCodec.Seal(key, context,
            new FrameTensor(manifest.FeatureType, activations.shape, values),
            new FrameTensor(ElementType.Float32, [n, 1], targets));
        var t2 = clock.Elapsed;

        var blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, seq);
        // The last reply's delete, if it went on in the background (as the agent's does), lands before this batch is sent.
        await deleting.ConfigureAwait(false);
        deleting = Task.CompletedTask;
        // As the agent's HospitalFrameStore: a frame that fits travels inside the message, no upload.
        var inline = Polling.InlineFrames && sealedFrame.Length <= MessageCodec.MaxInlineBytes ? MessageCodec.InlineText(sealedFrame.Blob) : null;
        if (inline is null)
            await container.GetBlobClient(blob).UploadReplacingAsync(BinaryData.FromBytes(sealedFrame.Blob), ct).ConfigureAwait(false);
        var t3 = clock.Elapsed;

        var text = TrainMessage(seq, blob, sealedFrame, inline);
        await features.SendMessageAsync(text, cancellationToken: ct).ConfigureAwait(false);
        var enqueuedAt = Stopwatch.GetTimestamp();
        var t4 = clock.Elapsed;

        var (reply, replyMessage, looks) = await AwaitReplyAsync(seq, ct).ConfigureAwait(false);
        var repliedAt = Stopwatch.GetTimestamp();
        var t5 = clock.Elapsed;
        if (reply.Kind != ReplyKind.Gradients) throw new InvalidOperationException($"{Hospital}#{seq}: the function answered {reply.Kind}: {reply.Reason}");

        var bytes = MessageCodec.InlineBytes(reply)
            ?? (await container.GetBlobClient(reply.Blob!).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content.ToArray();
        var t6 = clock.Elapsed;
        var gradient = SecureFrameCodec.Open(key, reply, bytes);
        var t7 = clock.Elapsed;

        client.ApplyGradient(activations, gradient[0].Values);
        var t8 = clock.Elapsed;
        deleting = replies.DeleteMessageAsync(replyMessage.MessageId, replyMessage.PopReceipt, ct);
        if (!Polling.BackgroundDelete) await deleting.ConfigureAwait(false);

        return new HospitalStep(seq, n, Ms(t1 - t0), Ms(t2 - t1), Ms(t3 - t2), Ms(t4 - t3), Ms(t5 - t4), Ms(t6 - t5), Ms(t7 - t6), Ms(t8 - t7), Ms(t8 - t0),
            enqueuedAt, repliedAt, Stopwatch.GetTimestamp(),
            (inline is null ? sealedFrame.Length : 0) + QueueBytes(text), (reply.Inline is null ? bytes.Length : 0) + QueueBytes(replyMessage.Body.ToString()),
            looks);
    }

    /// <summary>
    /// <paramref name="count"/> batches pipelined as the agent's PipelinedSteps does: up to <paramref name="depth"/> in flight,
    /// each forward on a stash of the weights it used (ClientLayer.ForwardStashed), each send and each reply's download
    /// beside the other batches' work, the replies awaited oldest first (a later one met on the way held for it) and applied
    /// in order. Each record's parts are that batch's own; its total runs from its forward to its gradient applied.
    /// </summary>
    public async Task<List<HospitalStep>> PipelinedAsync(int count, int depth, CancellationToken ct = default)
    {
        var records = new List<HospitalStep>(count);
        var inFlight = new Queue<PipelinedBatch>();
        var held = new Dictionary<long, (ReplyMessage Reply, QueueMessage Message)>();
        Task<(ReplyMessage Reply, QueueMessage Message, int Looks)>? previous = null;
        var started = 0;
        while (records.Count < count)
        {
            while (inFlight.Count < depth && started < count)
            {
                var batch = Launch(previous, held, ct);
                previous = batch.Reply;
                inFlight.Enqueue(batch);
                started++;
            }
            var head = inFlight.Dequeue();
            var (reply, replyMessage, looks) = await head.Reply.ConfigureAwait(false);
            var repliedAt = head.RepliedAt;
            var bytes = await head.Download.ConfigureAwait(false);
            var t5 = head.Clock.Elapsed;
            var gradient = SecureFrameCodec.Open(key, reply, bytes);
            var t6 = head.Clock.Elapsed;
            client.ApplyStashedGradient(head.Stash, gradient[0].Values);
            var t7 = head.Clock.Elapsed;
            await deleting.ConfigureAwait(false);
            deleting = replies.DeleteMessageAsync(replyMessage.MessageId, replyMessage.PopReceipt, ct);
            records.Add(new HospitalStep(head.Sequence, head.Samples, head.ForwardMs, head.SealMs, head.UploadMs, head.EnqueueMs, head.WaitMs,
                head.DownloadMs, Ms(t6 - t5), Ms(t7 - t6), Ms(t7), head.EnqueuedAt, repliedAt, Stopwatch.GetTimestamp(), head.SentBytes,
                bytes.Length + QueueBytes(replyMessage.Body.ToString()), looks));
        }
        await deleting.ConfigureAwait(false);
        deleting = Task.CompletedTask;
        return records;
    }

    // One pipelined batch: forward and seal now; its send, its reply (after the one before it) and its download go on as tasks.
    private PipelinedBatch Launch(Task<(ReplyMessage Reply, QueueMessage Message, int Looks)>? previous,
        Dictionary<long, (ReplyMessage Reply, QueueMessage Message)> held, CancellationToken ct)
    {
        var n = manifest.BatchSize;
        if ((cursor + 1) * n > data.Count) cursor = 0;
        var indices = Enumerable.Range(cursor++ * n, n).ToArray();
        var batch = new PipelinedBatch { Sequence = sequence++, Samples = n, Clock = Stopwatch.StartNew() };
        batch.Stash = client.ForwardStashed(data, indices, out var targets);
        var values = batch.Stash.Activations.ToFloats();
        batch.ForwardMs = Ms(batch.Clock.Elapsed);
        var sealedFrame = SecureFrameCodec.Seal(key, new CipherContext(manifest.RunId, Hospital, batch.Sequence, PayloadKind.Features, key.KeyId),
            new FrameTensor(manifest.FeatureType, batch.Stash.Activations.shape, values),
            new FrameTensor(ElementType.Float32, [n, 1], targets));
        batch.SealMs = Ms(batch.Clock.Elapsed) - batch.ForwardMs;
        var send = SendAsync(batch, sealedFrame, ct);
        batch.Reply = ReplyAfterAsync(batch, send, previous, held, ct);
        batch.Download = DownloadAsync(batch, ct);
        return batch;
    }

    private async Task SendAsync(PipelinedBatch batch, SealedFrame sealedFrame, CancellationToken ct)
    {
        var blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, manifest.RunId, batch.Sequence);
        var start = batch.Clock.Elapsed;
        await container.GetBlobClient(blob).UploadReplacingAsync(BinaryData.FromBytes(sealedFrame.Blob), ct).ConfigureAwait(false);
        var uploaded = batch.Clock.Elapsed;
        var text = TrainMessage(batch.Sequence, blob, sealedFrame, inline: null);
        await features.SendMessageAsync(text, cancellationToken: ct).ConfigureAwait(false);
        batch.EnqueuedAt = Stopwatch.GetTimestamp();
        batch.UploadMs = Ms(uploaded - start);
        batch.EnqueueMs = Ms(batch.Clock.Elapsed - uploaded);
        batch.SentBytes = sealedFrame.Length + QueueBytes(text);
    }

    private async Task<(ReplyMessage Reply, QueueMessage Message, int Looks)> ReplyAfterAsync(PipelinedBatch batch, Task send,
        Task<(ReplyMessage Reply, QueueMessage Message, int Looks)>? previous, Dictionary<long, (ReplyMessage Reply, QueueMessage Message)> held,
        CancellationToken ct)
    {
        await send.ConfigureAwait(false);
        // One look at the queue at a time, oldest first (as the agent's HospitalFrameStore holds a later reply met on the way).
        if (previous is not null) await previous.ConfigureAwait(false);
        var start = batch.Clock.Elapsed;
        var deadline = Stopwatch.StartNew();
        var looks = 0;
        while (true)
        {
            if (held.Remove(batch.Sequence, out var early))
            {
                batch.WaitMs = Ms(batch.Clock.Elapsed - start);
                batch.RepliedAt = Stopwatch.GetTimestamp();
                return (early.Reply, early.Message, looks);
            }
            looks++;
            foreach (var message in (await replies.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false)).Value)
            {
                var reply = MessageCodec.ParseReply(message.Body.ToString());
                if (reply.RunId == manifest.RunId && reply.Sequence >= batch.Sequence) held[reply.Sequence] = (reply, message);
                else await replies.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
            }
            if (held.ContainsKey(batch.Sequence)) continue;
            if (deadline.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException($"{Hospital}: no reply to #{batch.Sequence} within 120 s");
            await Task.Delay(Polling.Next(deadline.Elapsed), ct).ConfigureAwait(false);
        }
    }

    private async Task<byte[]> DownloadAsync(PipelinedBatch batch, CancellationToken ct)
    {
        var (reply, _, _) = await batch.Reply.ConfigureAwait(false);
        if (reply.Kind != ReplyKind.Gradients)
        {
            throw new InvalidOperationException($"{Hospital}#{batch.Sequence}: the function answered {reply.Kind}: {reply.Reason}");
        }
        var start = batch.Clock.Elapsed;
        var bytes = (await container.GetBlobClient(reply.Blob!).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content.ToArray();
        batch.DownloadMs = Ms(batch.Clock.Elapsed - start);
        return bytes;
    }

    private sealed class PipelinedBatch
    {
        public long Sequence { get; init; }
        public int Samples { get; init; }
        public required Stopwatch Clock { get; init; }
        public StashedForward Stash { get; set; } = null!;
        public Task<(ReplyMessage Reply, QueueMessage Message, int Looks)> Reply { get; set; } = null!;
        public Task<byte[]> Download { get; set; } = null!;
        public double ForwardMs { get; set; }
        public double SealMs { get; set; }
        public double UploadMs { get; set; }
        public double EnqueueMs { get; set; }
        public double WaitMs { get; set; }
        public double DownloadMs { get; set; }
        public long EnqueuedAt { get; set; }
        public long RepliedAt { get; set; }
        public long SentBytes { get; set; }
    }

    // Polls the hospital's reply queue as Polling says (by default the agent's ReplyPolling).
    private async Task<(ReplyMessage Reply, QueueMessage Message, int Looks)> AwaitReplyAsync(long seq, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        var looks = 0;
        while (true)
        {
            looks++;
            foreach (var message in (await replies.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false)).Value)
            {
                var reply = MessageCodec.ParseReply(message.Body.ToString());
                if (reply.RunId == manifest.RunId && reply.Sequence == seq) return (reply, message, looks);
                await replies.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException($"{Hospital}: no reply to #{seq} within 120 s");
            await Task.Delay(Polling.Next(deadline.Elapsed), ct).ConfigureAwait(false);
        }
    }

    private static double Ms(TimeSpan span) => span.TotalMilliseconds;

    /// <summary>
    /// Bytes of a message's text as the queue carries it (base64 of its UTF-8, the queue clients' default); HTTP and XML framing not counted.
    /// </summary>
    public static long QueueBytes(string text) => 4L * ((Encoding.UTF8.GetByteCount(text) + 2) / 3);

    public void Dispose() => client.Dispose();

    // The signed `train` message both the synchronous and the pipelined step enqueue.
    private string TrainMessage(long sequence, string blob, SealedFrame sealedFrame, string? inline) =>
        MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
        {
            RunId = manifest.RunId,
            HospitalId = Hospital,
            Sequence = sequence,
            Kind = FrameKind.Train,
            Blob = blob,
            Length = sealedFrame.Length,
            Sha256 = sealedFrame.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(Hospital),
            KeyId = key.KeyId,
            Inline = inline,
        }, key));

    /// <summary>Random inputs of the model's shape and plausible targets; the speed of a step does not depend on the values.</summary>
    public static TrainingSet SyntheticData(RunManifest manifest, int samples, int salt)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var shape = manifest.ModelDefinition.InputShape;
        var size = (int)shape.Aggregate(1L, (a, b) => a * b);
        var random = new Random(salt);
        var x = new float[samples * size];
        for (var i = 0; i < x.Length; i++) x[i] = random.NextSingle();
        var y = new float[samples];
        for (var i = 0; i < y.Length; i++) y[i] = manifest.Task == TaskKind.Classification ? random.Next(2) : random.NextSingle() * 3;
        return new TrainingSet(x, y, shape);
    }
}
