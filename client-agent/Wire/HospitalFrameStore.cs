using System.Diagnostics;
using System.Runtime.InteropServices;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Storage;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Wire;

/// <summary>A sealed feature frame ready to send: its bytes, blob name, length and SHA-256 (hex lowercase).</summary>
public sealed record FeatureFrame(byte[] Bytes, string Blob, long Length, string Sha256);

/// <summary>A reply taken from the reply queue; delete it once its effect is committed.</summary>
public sealed record ReceivedReply(ReplyMessage Reply, QueueMessage Message);

/// <summary>
/// The frame store seen from the hospital (the server's side is <c>ServerFrameStore</c>); the agent's side of the wire
/// contract with the function (one file, so the protocol can change in one place):
/// seal tensor frames for (run, hospital, sequence, kind, key id), upload them to the hospital's container, enqueue
/// `features` messages, wait for the matching reply, and open reply frames after checking name, length and SHA-256.
/// </summary>
public sealed class HospitalFrameStore(
    HospitalStorage storage, StorageResilience resilience, HospitalKey key, string runId, TimeSpan replyTimeout, Action<string> log,
        Action<string>? info = null, ReplyPolling? polling = null)
{
    private readonly ReplyPolling polling = polling ?? ReplyPolling.Default;

    private const int MaxReceive = 32;
    private static readonly TimeSpan ReceiveVisibility = TimeSpan.FromSeconds(30);

    /// <summary>How often a wait for a reply says it is still waiting.</summary>
    public static readonly TimeSpan WaitingNotice = TimeSpan.FromSeconds(15);

    // The MAC of each message this process sent, by sequence: a reply is taken only if it answers exactly that message.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, string> sent = new();

    // Replies taken from the queue while an earlier sequence was awaited, for later messages this process sent (pipelined
    // training has several in flight): kept here until awaited, rather than hidden from the next look for the visibility timeout.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, ReceivedReply> held = new();

    // The delete of the last handled reply, left to run while the agent computes its next batch (DeleteInBackground).
    private Task deleting = Task.CompletedTask;

    public string Hospital => key.HospitalId;

    public string KeyId => key.KeyId;

    public HospitalStorage Storage => storage;

    /// <summary>
    /// Whether `train` and `evaluate` frames of at most <see cref="MessageCodec.MaxInlineBytes"/> travel inside their
    /// message (and their reply's frame inside the reply) rather than as blobs: an upload and a download, and their
    /// round trips, fewer per step. On by default; off sends every frame as a blob, as earlier releases did.
    /// </summary>
    public bool InlineSmallFrames { get; set; } = true;

    /// <summary>Whether a frame of this kind and size goes inside its message when sent (<see cref="InlineSmallFrames"/>).</summary>
    public bool TravelsInline(FrameKind kind, long length) =>
        InlineSmallFrames && kind is FrameKind.Train or FrameKind.Evaluate && length is > 0 and <= MessageCodec.MaxInlineBytes;

    /// <summary>Encodes and seals features (activations, plus labels for training) for one sequence number.</summary>
    public FeatureFrame SealFeatures(long sequence, params ReadOnlySpan<FrameTensor> tensors)
    {
        var sealedFrame = SecureFrameCodec.Seal(key, new CipherContext(runId, Hospital, sequence, PayloadKind.Features, KeyId), tensors);
        return new FeatureFrame(sealedFrame.Blob, StorageNames.FrameBlob(StorageNames.FeaturesFolder, runId, sequence), sealedFrame.Length, sealedFrame.Sha256);
    }

    /// <summary>U-shaped backward leg: seals dL/d(server output) for one sequence (its own payload kind, so it cannot pass for features).</summary>
    public FeatureFrame SealOutputGradients(long sequence, params ReadOnlySpan<FrameTensor> tensors)
    {
        var sealedFrame = SecureFrameCodec.Seal(key, new CipherContext(runId, Hospital, sequence, PayloadKind.OutputGradients, KeyId), tensors);
        return new FeatureFrame(sealedFrame.Blob, StorageNames.FrameBlob(StorageNames.FeaturesFolder, runId, sequence), sealedFrame.Length, sealedFrame.Sha256);
    }

    /// <summary>
    /// Uploads the frame (if any) and enqueues the message. Safe to repeat: the blob is overwritten with the same bytes and the function answers a replayed
    /// sequence from its record.
    /// </summary>
    public async Task SendAsync(PendingFrame pending, byte[]? sealedBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        await FlushAsync().ConfigureAwait(false);
        // Decided from the kind and the bytes alone, so a re-send after a restart makes the same message (and MAC).
        string? inline = null;
        if (pending.Blob is not null && TravelsInline(pending.Kind, pending.Length))
        {
            var bytes = sealedBytes ?? throw new ArgumentNullException(nameof(sealedBytes));
            if (bytes.Length != pending.Length) throw new InvalidOperationException($"frame #{pending.Sequence} is {bytes.Length} bytes, its record says "
                + $"{pending.Length}");
            inline = MessageCodec.InlineText(bytes);
        }
        else if (pending.Blob is not null)
        {
            var bytes = sealedBytes ?? throw new ArgumentNullException(nameof(sealedBytes));
            await resilience.RunAsync($"upload frame #{pending.Sequence}",
                ct => storage.Container.GetBlobClient(pending.Blob).UploadReplacingAsync(BinaryData.FromBytes(bytes), ct), cancellationToken)
                    .ConfigureAwait(false);
        }
        var train = pending.Kind == FrameKind.Train;
        var message = new FrameMessage
        {
            RunId = runId,
            HospitalId = Hospital,
            Sequence = pending.Sequence,
            Kind = pending.Kind,
            Blob = pending.Blob,
            Length = pending.Length,
            Sha256 = pending.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(Hospital),
            KeyId = KeyId,
            Epoch = train ? pending.Epoch : null,
            Batch = train ? pending.Batch : null,
            ChunkCount = pending.ChunkCount,
            Inline = inline,
        };
        message = MessageAuthentication.Sign(message, key);
        sent[pending.Sequence] = message.Mac!;
        var text = MessageCodec.Serialize(message);
        await resilience.RunAsync($"enqueue message #{pending.Sequence}",
            ct => storage.Features.SendMessageAsync(text, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits for the reply to <paramref name="sequence"/>. Older replies of this run (answered twice, or left by a crash
    /// after their step was committed) are deleted; other runs' replies are left alone. Only time with storage reachable
    /// counts against the reply timeout, so a storage outage is not mistaken for a dead function.
    /// </summary>
    public async Task<ReceivedReply> AwaitReplyAsync(long sequence, CancellationToken cancellationToken)
    {
        var waited = TimeSpan.Zero;
        var nextNotice = WaitingNotice;
        sent.TryGetValue(sequence, out var expected);
        if (held.TryRemove(sequence, out var early) && (expected is null || early.Reply.Answers == expected)) return early;
        // A server step takes tens of milliseconds to seconds: the sleeps between looks grow with the wait but stay short
        // while a running function would answer (ReplyPolling), and a cold function is polled about once a second.
        var delay = polling.Next(TimeSpan.Zero);
        var clock = new Stopwatch();
        while (true)
        {
            // A look counts as waiting unless storage needed retries (an outage): on a busy machine a receive can take
            // seconds, and leaving that out made the wait, its notices and its timeout lag behind the clock.
            var retriesBefore = resilience.Retries;
            clock.Restart();
            QueueMessage[] messages = await resilience.RunAsync("receive replies",
                ct => storage.Replies.ReceiveMessagesAsync(MaxReceive, ReceiveVisibility, ct), cancellationToken).ConfigureAwait(false);
            if (resilience.Retries == retriesBefore) waited += clock.Elapsed;
            ReceivedReply? found = null;
            foreach (var message in messages)
            {
                if (await ParseAsync(message, cancellationToken).ConfigureAwait(false) is not { } reply) continue;
                if (reply.Sequence == sequence && expected is not null && reply.Answers != expected)
                {
                    log($"ignoring a reply #{sequence} that answers another message than the one this agent sent (answers {Short(reply.Answers)}, sent "
                        + $"{Short(expected)}); deleted");
                    await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
                }
                else if (reply.Sequence < sequence || (reply.Sequence == sequence && found is not null))
                {
                    await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
                }
                else if (reply.Sequence == sequence)
                {
                    found = new ReceivedReply(reply, message);
                }
                else if (sent.ContainsKey(reply.Sequence))
                {
                    held[reply.Sequence] = new ReceivedReply(reply, message);
                }
            }
            if (found is not null) return found;
            if (messages.Length == MaxReceive) continue;
            if (waited >= replyTimeout)
            {
                throw new AgentException(ExitCode.FunctionTimeout,
                    $"no reply from the function within {replyTimeout.TotalSeconds:F0} s for message #{sequence}: is it running? " +
                    "Check the function app (or `drain` process) and its logs; the next start re-sends this message under the same sequence number.");
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            waited += delay;
            if (waited >= nextNotice)
            {
                info?.Invoke($"waiting for the function's reply to message #{sequence} ({(int)waited.TotalSeconds} s of {replyTimeout.TotalSeconds:F0} s)");
                nextNotice += WaitingNotice;
            }
            delay = polling.Next(waited);
        }
    }

    /// <summary>
    /// Takes what is in the reply queue now without waiting: deletes this run's answered replies up to <paramref name="upTo"/> and returns the first rejection,
    /// if any.
    /// </summary>
    public async Task<ReceivedReply?> CollectRejectionAsync(long upTo, CancellationToken cancellationToken)
    {
        QueueMessage[] messages = await resilience.RunAsync("receive replies",
            ct => storage.Replies.ReceiveMessagesAsync(MaxReceive, ReceiveVisibility, ct), cancellationToken).ConfigureAwait(false);
        foreach (var message in messages)
        {
            if (await ParseAsync(message, cancellationToken).ConfigureAwait(false) is not { } reply || reply.Sequence > upTo) continue;
            // A message sent by this process is answered only by a reply naming its MAC; one sent before a restart
            // cannot be checked this way (its fields are not kept), and a forged message never gets a reply.
            if (sent.TryGetValue(reply.Sequence, out var expected) && reply.Answers != expected)
            {
                log($"ignoring a reply #{reply.Sequence} that answers another message than the one this agent sent (answers {Short(reply.Answers)}, sent "
                    + $"{Short(expected)}); deleted");
                await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (reply.Kind == ReplyKind.Rejected) return new ReceivedReply(reply, message);
            await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
        }
        return null;
    }

    /// <summary>Downloads and opens the reply's frame, trusting nothing the reply says without checking it.</summary>
    public async Task<DecodedTensor[]> ReadReplyFrameAsync(ReplyMessage reply, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var folder = StorageNames.ReplyFolder(reply.Kind);
        var expected = StorageNames.FrameBlob(folder, runId, reply.Sequence);
        if (!string.Equals(reply.Blob, expected, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.Replayed, $"reply #{reply.Sequence} names blob '{reply.Blob}', expected '{expected}'");
        }
        if (reply.KeyId != KeyId)
        {
            throw new ProtocolException(ProtocolRejection.WrongKeyId, $"reply #{reply.Sequence} is sealed with key '{reply.KeyId}', this agent uses '{KeyId}'");
        }
        // Inside the reply (its MAC verified, its length within the inline limit before anything is decoded): no download.
        if (MessageCodec.InlineBytes(reply) is { } inline)
            return SecureFrameCodec.OpenInPlace(key, CipherContext.For(reply), inline, reply.Length, reply.Sha256!);
        // The blob's stored size first (anyone with write access to the container could replace it with a huge one), then
        // exactly the announced bytes of that version: never more than the reply said.
        var blob = storage.Container.GetBlobClient(expected);
        var properties = (await resilience.RunAsync($"look up {folder} #{reply.Sequence}",
            ct => blob.GetPropertiesAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false)).Value;
        if (properties.ContentLength != reply.Length)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"reply #{reply.Sequence}'s blob holds {properties.ContentLength} bytes but the reply "
                + $"announced {reply.Length}; nothing was downloaded");
        }
        var data = await resilience.RunAsync($"download {folder} #{reply.Sequence}",
            ct => blob.DownloadContentAsync(new Azure.Storage.Blobs.Models.BlobDownloadOptions
            {
                Range = new HttpRange(0, reply.Length),
                Conditions = new Azure.Storage.Blobs.Models.BlobRequestConditions { IfMatch = properties.ETag },
            }, ct), cancellationToken).ConfigureAwait(false);
        // The downloaded buffer is ours alone: open it in place rather than copy it.
        return SecureFrameCodec.OpenInPlace(key, CipherContext.For(reply), MemoryMarshal.AsMemory(data.Value.Content.ToMemory()).Span, reply.Length,
            reply.Sha256!);
    }

    /// <summary>
    /// Deletes a handled reply while the agent goes on to its next batch, saving the step a storage round trip; the next
    /// send (or <see cref="FlushAsync"/>) waits for it and reports its failure. Only for a reply whose effect is committed:
    /// if the agent stops before the delete lands, the reply is stale and is deleted when next seen.
    /// </summary>
    public void DeleteInBackground(QueueMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var before = deleting;
        deleting = DeleteAfterAsync(before, message, cancellationToken);
    }

    /// <summary>Waits for a delete started by <see cref="DeleteInBackground"/>; its failure surfaces here.</summary>
    public async Task FlushAsync()
    {
        var current = deleting;
        deleting = Task.CompletedTask;
        await current.ConfigureAwait(false);
    }

    private async Task DeleteAfterAsync(Task before, QueueMessage message, CancellationToken cancellationToken)
    {
        await before.ConfigureAwait(false);
        await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes a handled reply; one already gone (its pop receipt expired and it was handled again) is fine.</summary>
    public async Task DeleteAsync(QueueMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        try
        {
            await resilience.RunAsync("delete a handled reply",
                ct => storage.Replies.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct), cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // Already deleted, or visible again with a new receipt: it is stale now and will be dropped when seen.
        }
    }

    private static string Short(string? mac) => mac is null ? "nothing" : mac[..Math.Min(12, mac.Length)] + "...";

    // A reply of this run that the server made (its MAC verifies under this hospital's key), or null. A forged one (anyone
    // who can write the reply queue could make a `rejected` that stops this agent) is deleted, and the wait goes on.
    private async Task<ReplyMessage?> ParseAsync(QueueMessage message, CancellationToken cancellationToken)
    {
        ReplyMessage reply;
        try
        {
            reply = MessageCodec.ParseReply(message.Body.ToString());
        }
        catch (ProtocolException e)
        {
            log($"ignoring a message on {storage.Replies.Name} that is not a valid reply: {e.Message}");
            return null;
        }
        if (reply.RunId != runId || reply.HospitalId != Hospital) return null;
        if (!MessageAuthentication.VerifyReply(reply, key))
        {
            log($"ignoring a {reply.Kind.ToString().ToLowerInvariant()} reply #{reply.Sequence} whose MAC does not verify under this hospital's key "
                + $"'{KeyId}' (forged, altered, or from before a key rotation); deleted, still waiting for the server's reply");
            await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
            return null;
        }
        return reply;
    }
}
