using System.Security.Cryptography;
using Azure;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Storage;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Wire;

/// <summary>A sealed frame ready to send: its bytes, blob name, length and SHA-256 (hex lowercase).</summary>
public sealed record SealedFrame(byte[] Bytes, string Blob, long Length, string Sha256);

/// <summary>A reply taken from the reply queue; delete it once its effect is committed.</summary>
public sealed record ReceivedReply(ReplyMessage Reply, QueueMessage Message);

/// <summary>
/// The agent's side of the wire contract with the function (one file, so the protocol can change in one place):
/// seal tensor frames for (run, hospital, sequence, kind, key id), upload them to the hospital's container, enqueue
/// `features` messages, wait for the matching reply, and open reply frames after checking name, length and SHA-256.
/// </summary>
public sealed class FrameChannel(HospitalStorage storage, StorageResilience resilience, HospitalKey key, string runId, TimeSpan replyTimeout, Action<string> log)
{
    private const int MaxReceive = 32;
    private static readonly TimeSpan ReceiveVisibility = TimeSpan.FromSeconds(30);

    public string Hospital => key.HospitalId;

    public string KeyId => key.KeyId;

    public HospitalStorage Storage => storage;

    /// <summary>Encodes and seals features (activations, plus labels for training) for one sequence number.</summary>
    public SealedFrame SealFeatures(long sequence, IReadOnlyList<FrameTensor> tensors)
    {
        var frame = TensorFrame.Encode(tensors);
        var sealedBytes = Envelope.Seal(key.Key, new EnvelopeContext(runId, Hospital, sequence, PayloadKind.Features, KeyId), frame);
        return new SealedFrame(sealedBytes, StorageNames.FrameBlob("features", runId, sequence), sealedBytes.Length, Convert.ToHexStringLower(SHA256.HashData(sealedBytes)));
    }

    /// <summary>Uploads the frame (if any) and enqueues the message. Safe to repeat: the blob is overwritten with the same bytes and the function answers a replayed sequence from its record.</summary>
    public async Task SendAsync(PendingFrame pending, byte[]? sealedBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        if (pending.Blob is not null)
        {
            var bytes = sealedBytes ?? throw new ArgumentNullException(nameof(sealedBytes));
            await resilience.RunAsync($"upload frame #{pending.Sequence}",
                ct => storage.Container.GetBlobClient(pending.Blob).UploadAsync(bytes, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        }
        var message = new FrameMessage
        {
            Run = runId,
            Hospital = Hospital,
            Sequence = pending.Sequence,
            Kind = pending.Kind,
            Blob = pending.Blob,
            Length = pending.Length,
            Sha256 = pending.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(Hospital),
            KeyId = KeyId,
            ChunkCount = pending.ChunkCount,
        };
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
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var messages = await resilience.RunAsync("receive replies",
                ct => storage.Replies.ReceiveMessagesAsync(MaxReceive, ReceiveVisibility, ct), cancellationToken).ConfigureAwait(false);
            ReceivedReply? found = null;
            foreach (var message in messages)
            {
                if (Parse(message) is not { } reply) continue;
                if (reply.Sequence < sequence || (reply.Sequence == sequence && found is not null))
                {
                    await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
                }
                else if (reply.Sequence == sequence)
                {
                    found = new ReceivedReply(reply, message);
                }
            }
            if (found is not null) return found;
            if (messages.Count == MaxReceive) continue;
            if (waited >= replyTimeout)
            {
                throw new AgentException(ExitCode.FunctionTimeout,
                    $"no reply from the function within {replyTimeout.TotalSeconds:F0} s for message #{sequence}: is it running? " +
                    "Check the function app (or `drain` process) and its logs; the next start re-sends this message under the same sequence number.");
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            waited += delay;
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
        }
    }

    /// <summary>Takes what is in the reply queue now without waiting: deletes this run's answered replies up to <paramref name="upTo"/> and returns the first rejection, if any.</summary>
    public async Task<ReceivedReply?> CollectRejectionAsync(long upTo, CancellationToken cancellationToken)
    {
        var messages = await resilience.RunAsync("receive replies",
            ct => storage.Replies.ReceiveMessagesAsync(MaxReceive, ReceiveVisibility, ct), cancellationToken).ConfigureAwait(false);
        foreach (var message in messages)
        {
            if (Parse(message) is not { } reply || reply.Sequence > upTo) continue;
            if (reply.Kind == ReplyKinds.Rejected) return new ReceivedReply(reply, message);
            await DeleteAsync(message, cancellationToken).ConfigureAwait(false);
        }
        return null;
    }

    /// <summary>Downloads and opens the reply's frame, trusting nothing the reply says without checking it.</summary>
    public async Task<IReadOnlyList<DecodedTensor>> ReadReplyFrameAsync(ReplyMessage reply, PayloadKind kind, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var folder = kind == PayloadKind.Gradients ? "gradients" : "predictions";
        var expected = StorageNames.FrameBlob(folder, runId, reply.Sequence);
        if (!string.Equals(reply.Blob, expected, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.WrongContext, $"reply #{reply.Sequence} names blob '{reply.Blob}', expected '{expected}'");
        }
        var data = await resilience.RunAsync($"download {folder} #{reply.Sequence}",
            ct => storage.Container.GetBlobClient(expected).DownloadContentAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        var bytes = data.ToArray();
        if (bytes.Length != reply.Length)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"{expected} has {bytes.Length} bytes, the reply says {reply.Length}");
        }
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (!string.Equals(sha, reply.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ProtocolException(ProtocolRejection.Tampered, $"{expected} SHA-256 {sha} differs from the reply's {reply.Sha256}");
        }
        var plaintext = Envelope.Open(key.Key, new EnvelopeContext(runId, Hospital, reply.Sequence, kind, KeyId), bytes);
        return TensorFrame.Decode(plaintext);
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
        catch (AgentException e) when (e.InnerException is RequestFailedException { Status: 404 })
        {
            // Already deleted or visible again with a new receipt: it is stale now and will be dropped when seen.
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
    }

    private ReplyMessage? Parse(QueueMessage message)
    {
        try
        {
            var reply = MessageCodec.ParseReply(message.MessageText);
            return reply.Run == runId && reply.Hospital == Hospital ? reply : null;
        }
        catch (ProtocolException e)
        {
            log($"ignoring a message on {storage.Replies.Name} that is not a reply: {e.Message}");
            return null;
        }
    }
}
