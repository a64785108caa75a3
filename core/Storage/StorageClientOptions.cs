using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>Options of the blob and queue clients: pipeline settings (retries, diagnostics, transport) plus the service version.</summary>
public class StorageClientOptions : ClientOptions
{
    /// <summary>The x-ms-version every request and SAS is made with (Azurite accepts it with --skipApiVersionCheck).</summary>
    public const string DefaultServiceVersion = "2021-12-02";

    public StorageClientOptions()
    {
        Retry.Mode = RetryMode.Exponential;
        Retry.MaxRetries = 5;
        Retry.Delay = TimeSpan.FromMilliseconds(200);
        Retry.MaxDelay = TimeSpan.FromSeconds(10);
        Retry.NetworkTimeout = TimeSpan.FromSeconds(100);
        foreach (var header in new[]
                 {
                     "x-ms-version", "x-ms-date", "x-ms-blob-type", "x-ms-lease-action", "x-ms-lease-id", "x-ms-lease-state",
                     "x-ms-lease-status", "x-ms-lease-duration", "x-ms-proposed-lease-id", "x-ms-error-code", "x-ms-popreceipt",
                     "x-ms-time-next-visible", "x-ms-approximate-messages-count", "If-Match", "If-None-Match", "ETag", "Last-Modified",
                 })
        {
            Diagnostics.LoggedHeaderNames.Add(header);
        }
        foreach (var query in new[] { "restype", "comp", "prefix", "maxresults", "blockid", "numofmessages", "visibilitytimeout", "peekonly", "messagettl" })
        {
            Diagnostics.LoggedQueryParameters.Add(query);
        }
    }

    /// <summary>The REST API version to use.</summary>
    public string ServiceVersion { get; set; } = DefaultServiceVersion;

    /// <summary>
    /// Payloads up to this size are uploaded with one Put Blob; larger ones in blocks. One request is several times faster
    /// than Put Block + Put Block List for the 8-64 MiB frames of split learning (Put Blob takes up to 5000 MiB).
    /// </summary>
    public long SingleUploadThresholdBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Size of each Put Block when a payload is uploaded in blocks.</summary>
    public int BlockSizeBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How queue message text is put on the wire; Base64 is what the Functions queue trigger expects by default.</summary>
    public QueueMessageEncoding MessageEncoding { get; set; } = QueueMessageEncoding.Base64;
}

/// <summary>How queue message text is encoded inside the REST body.</summary>
public enum QueueMessageEncoding
{
    /// <summary>UTF-8 bytes of the text, base64-encoded (Azure Functions queue trigger default, host.json messageEncoding=base64).</summary>
    Base64,

    /// <summary>The text itself, XML-escaped.</summary>
    None,
}
