using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Which host poisoned a message.</summary>
public static class PoisonHosts
{
    /// <summary>The Functions isolated worker (the host itself moves messages after maxDequeueCount failures).</summary>
    public const string Worker = "worker";

    /// <summary>Drain mode (it moves every poisoned message itself).</summary>
    public const string Drain = "drain";
}

/// <summary>
/// The one poison format of both hosts: the raw message on `features-poison`, its <see cref="PoisonRecord"/> on
/// `features-rejections`. The record is written first, so a crash in between leaves a reason, never a silent message.
/// </summary>
public sealed class PoisonQueue(StorageConnection storage)
{
    // Raw: the message goes to `features-poison` exactly as it was stored on `features` (Base64 or not).
    private readonly QueueClient poison = storage.GetQueueClient(StorageNames.FeaturesPoisonQueue, StorageClientDefaults.RawQueue());
    private readonly QueueClient rejections = storage.GetQueueClient(StorageNames.FeaturesRejectionsQueue);

    /// <summary>
    /// Records why and moves the message to `features-poison` (drain mode; the worker for a rejected message):
    /// <paramref name="wireText"/> is the message as stored on `features`, <paramref name="messageText"/> its decoded
    /// text for the record (the wire text itself when it could not be decoded).
    /// </summary>
    public async Task PoisonAsync(string messageId, string wireText, string messageText, long dequeueCount, string reason, string host, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(wireText);
        await RecordAsync(messageId, messageText, dequeueCount, reason, host, ct).ConfigureAwait(false);
        await poison.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        await poison.SendMessageAsync(wireText, cancellationToken: ct).ConfigureAwait(false);
    }

    /// <summary>Only records why (the worker's last failed delivery: the Functions host moves the message itself).</summary>
    public async Task RecordAsync(string messageId, string messageText, long dequeueCount, string reason, string host, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(messageText);
        var record = new PoisonRecord(reason, messageId, dequeueCount, host, DateTimeOffset.UtcNow,
            messageText.Length <= PoisonRecord.MaxMessageChars ? messageText : messageText[..PoisonRecord.MaxMessageChars]);
        await rejections.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        await rejections.SendMessageAsync(record.ToJson(), cancellationToken: ct).ConfigureAwait(false);
    }
}
