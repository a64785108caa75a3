using Azure.Core;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>Who retries a failed storage request: the SDK's pipeline, or the caller's own policy (the agent's Polly outage budget).</summary>
public enum StorageRetries
{
    /// <summary>The SDK pipeline retries transient failures (exponential, 5 tries); the function and the tools use this.</summary>
    Pipeline,

    /// <summary>No pipeline retries: the caller's policy decides (the agent rides out long outages with Polly).</summary>
    Caller,
}

/// <summary>
/// The one place the SDK's client options are set: service version, retries and the queue message encoding.
/// Every blob and queue client of the function, the agent, local-run, the benchmarks and the tests is built with these.
/// </summary>
public static class StorageClientDefaults
{
    // Pinned rather than starting Azurite with --skipApiVersionCheck: the SDK's default (2026-10-06) is newer than
    // Azurite 3.37 implements, and skipping the check would let requests of a version the emulator does not implement
    // pass silently, so the tests would no longer check the behaviour production gets. 2026-06-06 is the newest version
    // Azurite 3.37 accepts; Azure serves it for years, so the function and the agents use it in Azure too: what runs in
    // production is exactly the API version the tests, the demo and the benchmarks exercise. Raise it with Azurite.

    /// <summary>The blob REST API version every request and SAS uses.</summary>
    public const BlobClientOptions.ServiceVersion BlobServiceVersion = BlobClientOptions.ServiceVersion.V2026_06_06;

    /// <summary>The queue REST API version every request and SAS uses.</summary>
    public const QueueClientOptions.ServiceVersion QueueServiceVersion = QueueClientOptions.ServiceVersion.V2026_06_06;

    /// <summary>Blob client options: pinned version, retries per <paramref name="retries"/>.</summary>
    public static BlobClientOptions Blob(StorageRetries retries = StorageRetries.Pipeline)
    {
        var options = new BlobClientOptions(BlobServiceVersion);
        Configure(options, retries);
        return options;
    }

    /// <summary>
    /// Queue client options: pinned version, Base64 message text (what the Functions queue trigger expects), retries per <paramref name="retries"/>.
    /// </summary>
    public static QueueClientOptions Queue(StorageRetries retries = StorageRetries.Pipeline)
    {
        var options = new QueueClientOptions(QueueServiceVersion) { MessageEncoding = QueueMessageEncoding.Base64 };
        Configure(options, retries);
        return options;
    }

    /// <summary>
    /// Queue client options that read and write message text exactly as stored (no Base64 decoding): for a queue anyone
    /// with add rights may fill with anything (`features`), so a message that is not Base64 is read and poisoned rather
    /// than failing the whole receive with a FormatException.
    /// </summary>
    public static QueueClientOptions RawQueue(StorageRetries retries = StorageRetries.Pipeline)
    {
        var options = new QueueClientOptions(QueueServiceVersion) { MessageEncoding = QueueMessageEncoding.None };
        Configure(options, retries);
        return options;
    }

    private static void Configure(ClientOptions options, StorageRetries retries)
    {
        options.Retry.Mode = RetryMode.Exponential;
        options.Retry.Delay = TimeSpan.FromMilliseconds(200);
        options.Retry.MaxDelay = TimeSpan.FromSeconds(10);
        if (retries == StorageRetries.Caller)
        {
            options.Retry.MaxRetries = 0;
            // One attempt that hangs must end so the caller's policy can try again.
            options.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        }
        else
        {
            options.Retry.MaxRetries = 5;
            options.Retry.NetworkTimeout = TimeSpan.FromSeconds(100);
        }
    }
}
