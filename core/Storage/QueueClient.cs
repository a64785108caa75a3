using System.Globalization;
using System.Security;
using System.Text;
using System.Xml.Linq;
using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// One storage queue: create, send, receive, update, delete, peek, count. Message text is base64-encoded by default
/// (<see cref="StorageClientOptions.MessageEncoding"/>), which is what the Azure Functions queue trigger expects. Thread-safe.
/// </summary>
public sealed class QueueClient
{
    /// <summary>The service's limit on one message body as it goes on the wire (after encoding).</summary>
    public const int MaxEncodedMessageBytes = 64 * 1024;

    private readonly StorageRestClient _rest;

    internal QueueClient(Uri uri, StorageRestClient rest, string name)
    {
        Uri = uri;
        _rest = rest;
        Name = name;
        MessagesUri = StorageRestClient.Append(uri, "messages");
    }

    /// <summary>A client for a queue from its URI with a SAS (e.g. one minted by <see cref="HospitalAccess"/>).</summary>
    public QueueClient(Uri queueUri, AzureSasCredential sas, StorageClientOptions? options = null)
        : this(queueUri, NewRest(sas, options ?? new StorageClientOptions()), queueUri.AbsolutePath.Trim('/').Split('/')[^1])
    {
    }

    public Uri Uri { get; }

    public string Name { get; }

    private Uri MessagesUri { get; }

    /// <summary>Creates the queue; returns false when it already existed.</summary>
    public async Task<bool> CreateIfNotExistsAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Put, Uri);
        var response = await _rest.SendAsync(message, cancellationToken, 201, 204).ConfigureAwait(false);
        return response.Status == 201;
    }

    /// <summary>Deletes the queue; returns false when it did not exist.</summary>
    public async Task<bool> DeleteIfExistsAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, Uri);
        var response = await _rest.SendAsync(message, cancellationToken, 204, 404).ConfigureAwait(false);
        return response.Status == 204;
    }

    /// <summary>Approximate number of messages (Get Queue Metadata).</summary>
    public async Task<QueueProperties> GetPropertiesAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Get, Uri, ("comp", "metadata"));
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        var count = StorageHeaders.Get(response, "x-ms-approximate-messages-count");
        return new QueueProperties(count is null ? 0 : int.Parse(count, CultureInfo.InvariantCulture));
    }

    /// <summary>Sends a message; it becomes visible after <paramref name="visibilityTimeout"/> (default now) and lives for <paramref name="timeToLive"/> (default 7 days).</summary>
    public async Task<SendReceipt> SendMessageAsync(string messageText, TimeSpan? visibilityTimeout = null, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messageText);
        using var message = _rest.CreateMessage(RequestMethod.Post, MessagesUri,
            ("visibilitytimeout", visibilityTimeout is { } v ? StorageHeaders.Seconds(v) : null),
            ("messagettl", timeToLive is { } t ? StorageHeaders.Seconds(t) : null));
        SetBody(message, EncodeText(messageText));
        var response = await _rest.SendAsync(message, cancellationToken, 201).ConfigureAwait(false);
        var m = ReadMessages(response).FirstOrDefault()
                ?? throw new RequestFailedException(response.Status, "Put Message returned no message description.");
        return new SendReceipt(Text(m, "MessageId"), Date(m, "InsertionTime"), Date(m, "ExpirationTime"), Text(m, "PopReceipt"), Date(m, "TimeNextVisible"));
    }

    /// <summary>Receives up to <paramref name="maxMessages"/> (1-32) messages, hiding them for <paramref name="visibilityTimeout"/> (default 30 s).</summary>
    public async Task<IReadOnlyList<QueueMessage>> ReceiveMessagesAsync(int maxMessages = 1, TimeSpan? visibilityTimeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, 32);
        using var message = _rest.CreateMessage(RequestMethod.Get, MessagesUri,
            ("numofmessages", maxMessages.ToString(CultureInfo.InvariantCulture)),
            ("visibilitytimeout", visibilityTimeout is { } v ? StorageHeaders.Seconds(v) : null));
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        return ReadMessages(response).Select(m => new QueueMessage(
            Text(m, "MessageId"), Text(m, "PopReceipt"), long.Parse(Text(m, "DequeueCount"), CultureInfo.InvariantCulture),
            DecodeText(Text(m, "MessageText")), Date(m, "InsertionTime"), Date(m, "ExpirationTime"), Date(m, "TimeNextVisible"))).ToList();
    }

    /// <summary>Looks at up to <paramref name="maxMessages"/> (1-32) visible messages without changing them.</summary>
    public async Task<IReadOnlyList<PeekedMessage>> PeekMessagesAsync(int maxMessages = 1, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, 32);
        using var message = _rest.CreateMessage(RequestMethod.Get, MessagesUri,
            ("peekonly", "true"), ("numofmessages", maxMessages.ToString(CultureInfo.InvariantCulture)));
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        return ReadMessages(response).Select(m => new PeekedMessage(
            Text(m, "MessageId"), long.Parse(Text(m, "DequeueCount"), CultureInfo.InvariantCulture), DecodeText(Text(m, "MessageText")),
            Date(m, "InsertionTime"), Date(m, "ExpirationTime"))).ToList();
    }

    /// <summary>Deletes a received message; throws 404 (MessageNotFound) when the pop receipt is stale.</summary>
    public async Task DeleteMessageAsync(string messageId, string popReceipt, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, StorageRestClient.Append(MessagesUri, Uri.EscapeDataString(messageId)), ("popreceipt", popReceipt));
        await _rest.SendAsync(message, cancellationToken, 204).ConfigureAwait(false);
    }

    /// <summary>Changes a received message's visibility (and optionally its text); the old pop receipt stops working.</summary>
    public async Task<UpdateReceipt> UpdateMessageAsync(string messageId, string popReceipt, string? messageText = null, TimeSpan visibilityTimeout = default, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Put, StorageRestClient.Append(MessagesUri, Uri.EscapeDataString(messageId)),
            ("popreceipt", popReceipt), ("visibilitytimeout", StorageHeaders.Seconds(visibilityTimeout)));
        if (messageText is not null) SetBody(message, EncodeText(messageText));
        var response = await _rest.SendAsync(message, cancellationToken, 204).ConfigureAwait(false);
        return new UpdateReceipt(
            StorageHeaders.Get(response, "x-ms-popreceipt") ?? throw new RequestFailedException(response.Status, "Update Message returned no pop receipt."),
            DateTimeOffset.Parse(StorageHeaders.Get(response, "x-ms-time-next-visible") ?? "", CultureInfo.InvariantCulture));
    }

    /// <summary>Deletes every message in the queue.</summary>
    public async Task ClearMessagesAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, MessagesUri);
        await _rest.SendAsync(message, cancellationToken, 204).ConfigureAwait(false);
    }

    private string EncodeText(string text)
    {
        var encoded = _rest.Options.MessageEncoding == QueueMessageEncoding.Base64
            ? Convert.ToBase64String(Encoding.UTF8.GetBytes(text))
            : SecurityElement.Escape(text);
        var size = Encoding.UTF8.GetByteCount(encoded);
        if (size > MaxEncodedMessageBytes)
        {
            throw new ArgumentException(
                $"The queue message is {size} bytes once encoded ({_rest.Options.MessageEncoding}); a storage queue accepts at most {MaxEncodedMessageBytes}. Put the payload in a blob and send its name.",
                nameof(text));
        }
        return encoded;
    }

    private string DecodeText(string wire)
    {
        if (_rest.Options.MessageEncoding == QueueMessageEncoding.None) return wire;
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(wire));
        }
        catch (FormatException e)
        {
            throw new FormatException($"A message on queue '{Name}' is not base64 although the client expects base64 message encoding (the Functions default); it was probably sent with encoding None.", e);
        }
    }

    private static void SetBody(HttpMessage message, string encodedText)
    {
        var xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>" + encodedText + "</MessageText></QueueMessage>";
        message.Request.Headers.SetValue("Content-Type", "application/xml");
        message.Request.Content = RequestContent.Create(Encoding.UTF8.GetBytes(xml));
    }

    private static IEnumerable<XElement> ReadMessages(Response response) =>
        XDocument.Load(response.ContentStream!).Root?.Elements("QueueMessage") ?? [];

    private static string Text(XElement message, string name) => message.Element(name)?.Value ?? string.Empty;

    private static DateTimeOffset Date(XElement message, string name) =>
        message.Element(name) is { } e ? DateTimeOffset.Parse(e.Value, CultureInfo.InvariantCulture) : default;

    private static StorageRestClient NewRest(AzureSasCredential sas, StorageClientOptions options) =>
        new(StorageRestClient.BuildPipeline(options, new SasPolicy(sas), null), options);
}
