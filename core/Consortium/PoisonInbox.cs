using System.Text.Json;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>One message on `features-poison` with the reason recorded for it (null when no record matches its text).</summary>
public sealed record PoisonedMessage(string Id, DateTimeOffset? InsertedOn, string Text, PoisonRecord? Record)
{
    /// <summary>The run and hospital the message names, when its text is a frame message.</summary>
    public (string? Run, string? Hospital) Names()
    {
        try
        {
            using var json = JsonDocument.Parse(Text);
            string? Get(string name) => json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty(name, out var v)
                && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return (Get("run"), Get("hospital"));
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }
}

/// <summary>
/// `features-poison` and `features-rejections` as the operator handles them: list each poisoned message with why,
/// move it back to `features` (retry) or delete it (drop), its reason record with it.
/// </summary>
public sealed class PoisonInbox(StorageConnection storage)
{
    /// <summary>Most messages the queue service returns per peek or receive.</summary>
    public const int PageSize = 32;

    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(30);

    // Raw: poisoned messages are kept exactly as they were stored on `features` (Base64 or not, see QueueText), and a
    // retry puts them back exactly so; the text shown and matched with its reason record is the decoded one.
    private readonly QueueClient poison = storage.GetQueueClient(StorageNames.FeaturesPoisonQueue, StorageClientDefaults.RawQueue());
    private readonly QueueClient rejections = storage.GetQueueClient(StorageNames.FeaturesRejectionsQueue);
    private readonly QueueClient features = storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());

    /// <summary>Approximate number of poisoned messages (0 when the queue does not exist yet).</summary>
    public async Task<int> CountAsync(CancellationToken ct = default) =>
        await poison.ExistsAsync(ct).ConfigureAwait(false) ? (await poison.GetPropertiesAsync(ct).ConfigureAwait(false)).Value.ApproximateMessagesCount : 0;

    /// <summary>The recorded reasons (up to <see cref="PageSize"/>, oldest first), unreadable records left out.</summary>
    public async Task<IReadOnlyList<PoisonRecord>> ReasonsAsync(CancellationToken ct = default)
    {
        if (!await rejections.ExistsAsync(ct).ConfigureAwait(false)) return [];
        var records = new List<PoisonRecord>();
        foreach (var message in (await rejections.PeekMessagesAsync(PageSize, ct).ConfigureAwait(false)).Value)
        {
            if (TryParse(message.Body.ToString()) is { } record) records.Add(record);
        }
        return records;
    }

    /// <summary>The first <see cref="PageSize"/> poisoned messages with their reasons; nothing is changed.</summary>
    public async Task<IReadOnlyList<PoisonedMessage>> ListAsync(CancellationToken ct = default)
    {
        if (!await poison.ExistsAsync(ct).ConfigureAwait(false)) return [];
        var reasons = await ReasonsAsync(ct).ConfigureAwait(false);
        return [.. (await poison.PeekMessagesAsync(PageSize, ct).ConfigureAwait(false)).Value
            .Select(m => new PoisonedMessage(m.MessageId, m.InsertedOn, Text(m.Body.ToString()),
                reasons.LastOrDefault(r => r.Message == Text(m.Body.ToString()))))];
    }

    /// <summary>Moves the named messages (all when <paramref name="ids"/> is null) back to `features`; returns the ids moved.</summary>
    public Task<IReadOnlyList<string>> RetryAsync(IReadOnlyCollection<string>? ids, CancellationToken ct = default) =>
        TakeAsync(ids, requeue: true, ct);

    /// <summary>Deletes the named messages (all when <paramref name="ids"/> is null) and their reason records; returns the ids deleted.</summary>
    public Task<IReadOnlyList<string>> DropAsync(IReadOnlyCollection<string>? ids, CancellationToken ct = default) =>
        TakeAsync(ids, requeue: false, ct);

    private async Task<IReadOnlyList<string>> TakeAsync(IReadOnlyCollection<string>? ids, bool requeue, CancellationToken ct)
    {
        if (!await poison.ExistsAsync(ct).ConfigureAwait(false)) return [];
        if (requeue) await features.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        var done = new List<string>();
        var texts = new List<string>();
        var held = new List<QueueMessage>();
        // Receive pages until the queue shows nothing more (messages held here stay invisible meanwhile), then let go of the rest.
        while (true)
        {
            var page = (await poison.ReceiveMessagesAsync(PageSize, Hold, ct).ConfigureAwait(false)).Value;
            if (page.Length == 0) break;
            foreach (var message in page)
            {
                if (ids is null || ids.Contains(message.MessageId))
                {
                    if (requeue) await features.SendMessageAsync(message.Body.ToString(), ct).ConfigureAwait(false);
                    await poison.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
                    done.Add(message.MessageId);
                    texts.Add(Text(message.Body.ToString()));
                }
                else
                {
                    held.Add(message);
                }
            }
            if (ids is not null && done.Count == ids.Count) break;
        }
        foreach (var message in held) await poison.UpdateMessageAsync(message.MessageId, message.PopReceipt, visibilityTimeout: TimeSpan.Zero,
            cancellationToken: ct).ConfigureAwait(false);
        await DeleteRecordsAsync(texts, ct).ConfigureAwait(false);
        return done;
    }

    private async Task DeleteRecordsAsync(List<string> texts, CancellationToken ct)
    {
        if (texts.Count == 0 || !await rejections.ExistsAsync(ct).ConfigureAwait(false)) return;
        var held = new List<QueueMessage>();
        while (true)
        {
            var page = (await rejections.ReceiveMessagesAsync(PageSize, Hold, ct).ConfigureAwait(false)).Value;
            if (page.Length == 0) break;
            foreach (var message in page)
            {
                if (TryParse(message.Body.ToString()) is { } record && texts.Contains(record.Message)) await rejections.DeleteMessageAsync(message.MessageId,
                    message.PopReceipt, ct).ConfigureAwait(false);
                else held.Add(message);
            }
        }
        foreach (var message in held) await rejections.UpdateMessageAsync(message.MessageId, message.PopReceipt, visibilityTimeout: TimeSpan.Zero,
            cancellationToken: ct).ConfigureAwait(false);
    }

    // The message's text as the function recorded it: decoded when it is Base64 of UTF-8, else as stored.
    private static string Text(string stored) => QueueText.TryDecode(stored, out _) ?? stored;

    private static PoisonRecord? TryParse(string json)
    {
        try
        {
            return PoisonRecord.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
