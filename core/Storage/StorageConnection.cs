using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// The one factory of storage clients: where the account is and how to authenticate to it, read from the settings
/// Azure Functions uses (`AzureWebJobsStorage` connection string, or `AzureWebJobsStorage__accountName` /
/// `__blobServiceUri` / `__queueServiceUri` / `__credential` / `__clientId` for identity-based connections), and the
/// SDK's BlobServiceClient / QueueServiceClient built from it with <see cref="StorageClientDefaults"/>.
/// </summary>
public sealed class StorageConnection
{
    /// <summary>The setting name Azure Functions reads the host storage from.</summary>
    public const string DefaultSettingName = "AzureWebJobsStorage";

    /// <summary>Azurite's well-known development account.</summary>
    public const string DevelopmentAccountName = "devstoreaccount1";

    /// <summary>Azurite's well-known development account key (public, documented by Microsoft).</summary>
    public const string DevelopmentAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private StorageConnection(string accountName, Uri blobServiceUri, Uri queueServiceUri,
        StorageSharedKeyCredential? sharedKey, AzureSasCredential? sas, TokenCredential? token)
    {
        AccountName = accountName;
        BlobServiceUri = blobServiceUri;
        QueueServiceUri = queueServiceUri;
        SharedKey = sharedKey;
        Sas = sas;
        TokenCredential = token;
    }

    public string AccountName { get; }

    public Uri BlobServiceUri { get; }

    public Uri QueueServiceUri { get; }

    /// <summary>Set for connection strings with an account key (Azurite included).</summary>
    public StorageSharedKeyCredential? SharedKey { get; }

    /// <summary>Set for connection strings with a SharedAccessSignature.</summary>
    public AzureSasCredential? Sas { get; }

    /// <summary>Set for identity-based connections (Microsoft Entra tokens).</summary>
    public TokenCredential? TokenCredential { get; }

    /// <summary>
    /// Parses a storage connection string (`UseDevelopmentStorage=true`, account key, or SAS). Every defect is a
    /// <see cref="StorageSettingsException"/> naming <paramref name="settingName"/> and the part to fix; secrets are never echoed.
    /// </summary>
    public static StorageConnection Parse(string connectionString, string settingName = DefaultSettingName)
    {
        if (string.IsNullOrWhiteSpace(connectionString)) throw Invalid(settingName, "it is empty");
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw Invalid(settingName, $"the part '{Redact(part)}' is not of the form Name=Value");
            parts[part[..eq].Trim()] = part[(eq + 1)..].Trim();
        }

        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && bool.TryParse(dev, out var useDev) && useDev)
        {
            var proxy = parts.TryGetValue("DevelopmentStorageProxyUri", out var p) ? Endpoint(settingName, "DevelopmentStorageProxyUri", p)
                : new Uri("http://127.0.0.1");
            return new StorageConnection(DevelopmentAccountName,
                new Uri($"{proxy.Scheme}://{proxy.Host}:10000/{DevelopmentAccountName}"),
                new Uri($"{proxy.Scheme}://{proxy.Host}:10001/{DevelopmentAccountName}"),
                new StorageSharedKeyCredential(DevelopmentAccountName, DevelopmentAccountKey), null, null);
        }

        parts.TryGetValue("AccountName", out var accountName);
        var protocol = parts.TryGetValue("DefaultEndpointsProtocol", out var proto) ? proto : "https";
        if (protocol is not ("http" or "https")) throw Invalid(settingName, $"DefaultEndpointsProtocol is '{protocol}'; use https (or http for Azurite)");
        var suffix = parts.TryGetValue("EndpointSuffix", out var s) ? s : "core.windows.net";
        var blob = parts.TryGetValue("BlobEndpoint", out var b) ? Endpoint(settingName, "BlobEndpoint", b) : null;
        var queue = parts.TryGetValue("QueueEndpoint", out var q) ? Endpoint(settingName, "QueueEndpoint", q) : null;
        if (accountName is not null)
        {
            blob ??= Endpoint(settingName, "AccountName/EndpointSuffix", $"{protocol}://{accountName}.blob.{suffix}");
            queue ??= Endpoint(settingName, "AccountName/EndpointSuffix", $"{protocol}://{accountName}.queue.{suffix}");
        }
        if (blob is null || queue is null)
        {
            throw Invalid(settingName, $"it names neither AccountName nor {(blob is null ? "BlobEndpoint" : "QueueEndpoint")} (both endpoints are needed "
                + $"without AccountName)");
        }
        accountName ??= AccountNameFromUri(blob);

        if (parts.TryGetValue("AccountKey", out var key))
        {
            if (key.Length == 0 || !IsBase64(key)) throw Invalid(settingName, "AccountKey is not a base64 account key: copy it again from the storage "
                + "account's Access keys");
            return new StorageConnection(accountName, blob, queue, new StorageSharedKeyCredential(accountName, key), null, null);
        }
        if (parts.TryGetValue("SharedAccessSignature", out var sas) && sas.Length > 0)
        {
            return new StorageConnection(accountName, blob, queue, null, new AzureSasCredential(sas.TrimStart('?')), null);
        }
        throw Invalid(settingName, "it has no AccountKey (and no SharedAccessSignature): add AccountKey=... from the storage account's Access keys");
    }

    /// <summary>An identity-based connection: Microsoft Entra tokens from <paramref name="credential"/>.</summary>
    public static StorageConnection FromTokenCredential(string accountName, TokenCredential credential, Uri? blobServiceUri = null, Uri? queueServiceUri = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(accountName);
        ArgumentNullException.ThrowIfNull(credential);
        return new StorageConnection(accountName,
            blobServiceUri ?? new Uri($"https://{accountName}.blob.core.windows.net"),
            queueServiceUri ?? new Uri($"https://{accountName}.queue.core.windows.net"),
            null, null, credential);
    }

    /// <summary>A connection authorised by an account key, with explicit endpoints (Azurite on any port).</summary>
    public static StorageConnection FromSharedKey(StorageSharedKeyCredential credential, Uri blobServiceUri, Uri queueServiceUri)
    {
        ArgumentNullException.ThrowIfNull(credential);
        return new(credential.AccountName, blobServiceUri, queueServiceUri, credential, null, null);
    }

    /// <summary>Reads the connection the way Azure Functions does, from configuration (environment `__` maps to `:`).</summary>
    public static StorageConnection FromConfiguration(IConfiguration configuration, string settingName = DefaultSettingName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return FromSettings(name => configuration[name] ?? configuration[name.Replace("__", ":", StringComparison.Ordinal)], settingName);
    }

    /// <summary>Reads the connection from plain settings (e.g. local.settings.json Values, environment variables).</summary>
    public static StorageConnection FromSettings(IReadOnlyDictionary<string, string?> settings, string settingName = DefaultSettingName)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return FromSettings(name => settings.TryGetValue(name, out var v) ? v : null, settingName);
    }

    private static StorageConnection FromSettings(Func<string, string?> get, string settingName)
    {
        var connectionString = get(settingName);
        if (!string.IsNullOrWhiteSpace(connectionString)) return Parse(connectionString, settingName);

        var accountName = get(settingName + "__accountName");
        var blobUri = get(settingName + "__blobServiceUri") is { Length: > 0 } bu ? Endpoint(settingName + "__blobServiceUri", null, bu) : null;
        var queueUri = get(settingName + "__queueServiceUri") is { Length: > 0 } qu ? Endpoint(settingName + "__queueServiceUri", null, qu) : null;
        if (accountName is null && blobUri is null)
        {
            throw new StorageSettingsException(settingName,
                $"No storage connection is configured: set '{settingName}' to a connection string (UseDevelopmentStorage=true for Azurite), " +
                $"or '{settingName}__accountName' (or '{settingName}__blobServiceUri' and '{settingName}__queueServiceUri') for an identity-based connection.");
        }
        if (queueUri is null && blobUri is not null)
        {
            throw new StorageSettingsException(settingName + "__queueServiceUri",
                $"'{settingName}__blobServiceUri' is set but '{settingName}__queueServiceUri' is not: set both, or set '{settingName}__accountName'.");
        }
        accountName ??= AccountNameFromUri(blobUri!);

        TokenCredential credential;
        var clientId = get(settingName + "__clientId");
        var kind = get(settingName + "__credential");
        if (string.Equals(kind, "managedidentity", StringComparison.OrdinalIgnoreCase))
        {
            credential = new ManagedIdentityCredential(clientId is { Length: > 0 }
                ? ManagedIdentityId.FromUserAssignedClientId(clientId)
                : ManagedIdentityId.SystemAssigned);
        }
        else if (string.IsNullOrEmpty(kind))
        {
            credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId });
        }
        else
        {
            throw new StorageSettingsException(settingName + "__credential",
                $"'{settingName}__credential' is '{kind}': the only value Azure Functions knows is 'managedidentity' (or leave it unset for the default "
                    + $"credential chain).");
        }
        return FromTokenCredential(accountName, credential, blobUri, queueUri);
    }

    /// <summary>The account's blob service client, authorised by this connection.</summary>
    public BlobServiceClient GetBlobServiceClient(BlobClientOptions? options = null)
    {
        options ??= StorageClientDefaults.Blob();
        if (SharedKey is not null) return new BlobServiceClient(BlobServiceUri, SharedKey, options);
        if (Sas is not null) return new BlobServiceClient(BlobServiceUri, Sas, options);
        return new BlobServiceClient(BlobServiceUri, TokenCredential!, options);
    }

    /// <summary>The account's queue service client, authorised by this connection.</summary>
    public QueueServiceClient GetQueueServiceClient(QueueClientOptions? options = null)
    {
        options ??= StorageClientDefaults.Queue();
        if (SharedKey is not null) return new QueueServiceClient(QueueServiceUri, SharedKey, options);
        if (Sas is not null) return new QueueServiceClient(QueueServiceUri, Sas, options);
        return new QueueServiceClient(QueueServiceUri, TokenCredential!, options);
    }

    public BlobContainerClient GetBlobContainerClient(string containerName, BlobClientOptions? options = null) =>
        GetBlobServiceClient(options).GetBlobContainerClient(containerName);

    public QueueClient GetQueueClient(string queueName, QueueClientOptions? options = null) =>
        GetQueueServiceClient(options).GetQueueClient(queueName);

    private static string AccountNameFromUri(Uri uri)
    {
        // Azurite and other path-style endpoints carry the account as the first path segment.
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0) return path.Split('/')[0];
        return uri.Host.Split('.')[0];
    }

    private static Uri Endpoint(string settingName, string? part, string value)
    {
        if (Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0) return uri;
        var what = part is null ? $"'{settingName}'" : $"{part} in '{settingName}'";
        throw new StorageSettingsException(settingName,
            $"The storage setting {what} is not an endpoint URL ('{value}'): use https://<account>.<blob|queue>.core.windows.net (or "
                + $"http://127.0.0.1:<port>/devstoreaccount1 for Azurite).");
    }

    private static bool IsBase64(string value)
    {
        Span<byte> buffer = stackalloc byte[value.Length];
        return Convert.TryFromBase64String(value, buffer, out _);
    }

    private static StorageSettingsException Invalid(string settingName, string why) =>
        new(settingName, $"The storage connection string in '{settingName}' is invalid: {why}. Expected 'UseDevelopmentStorage=true', " +
            "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net', or "
                + "'BlobEndpoint=...;QueueEndpoint=...;SharedAccessSignature=...'.");

    private static string Redact(string part) =>
        part.StartsWith("AccountKey", StringComparison.OrdinalIgnoreCase) || part.StartsWith("SharedAccessSignature", StringComparison.OrdinalIgnoreCase)
            ? part.Split('=')[0] + "=***"
            : part.Length > 40 ? part[..40] + "..." : part;
}
