using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Identity;
using Microsoft.Extensions.Configuration;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Where the storage account is and how to authenticate to it, read from the settings Azure Functions uses
/// (`AzureWebJobsStorage` connection string, or `AzureWebJobsStorage__accountName` / `__blobServiceUri` /
/// `__queueServiceUri` / `__credential` / `__clientId` for identity-based connections). Creates the clients.
/// </summary>
public sealed class StorageConnection
{
    /// <summary>The setting name Azure Functions reads the host storage from.</summary>
    public const string DefaultSettingName = "AzureWebJobsStorage";

    /// <summary>Azurite's well-known development account.</summary>
    public const string DevelopmentAccountName = "devstoreaccount1";

    /// <summary>Azurite's well-known development account key (public, documented by Microsoft).</summary>
    public const string DevelopmentAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private const string StorageScope = "https://storage.azure.com/.default";

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

    /// <summary>Parses a storage connection string: `UseDevelopmentStorage=true`, account key, or SAS.</summary>
    public static StorageConnection Parse(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw InvalidConnectionString($"the part '{Redact(part)}' is not of the form Name=Value");
            parts[part[..eq].Trim()] = part[(eq + 1)..].Trim();
        }

        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && bool.TryParse(dev, out var useDev) && useDev)
        {
            var proxy = parts.TryGetValue("DevelopmentStorageProxyUri", out var p) ? new Uri(p) : new Uri("http://127.0.0.1");
            return new StorageConnection(DevelopmentAccountName,
                new Uri($"{proxy.Scheme}://{proxy.Host}:10000/{DevelopmentAccountName}"),
                new Uri($"{proxy.Scheme}://{proxy.Host}:10001/{DevelopmentAccountName}"),
                new StorageSharedKeyCredential(DevelopmentAccountName, DevelopmentAccountKey), null, null);
        }

        parts.TryGetValue("AccountName", out var accountName);
        var protocol = parts.TryGetValue("DefaultEndpointsProtocol", out var proto) ? proto : "https";
        var suffix = parts.TryGetValue("EndpointSuffix", out var s) ? s : "core.windows.net";
        Uri? blob = parts.TryGetValue("BlobEndpoint", out var b) ? new Uri(b) : null;
        Uri? queue = parts.TryGetValue("QueueEndpoint", out var q) ? new Uri(q) : null;
        if (accountName is not null)
        {
            blob ??= new Uri($"{protocol}://{accountName}.blob.{suffix}");
            queue ??= new Uri($"{protocol}://{accountName}.queue.{suffix}");
        }
        if (blob is null || queue is null)
        {
            throw InvalidConnectionString("it names neither AccountName nor both BlobEndpoint and QueueEndpoint");
        }
        accountName ??= AccountNameFromUri(blob);

        if (parts.TryGetValue("AccountKey", out var key))
        {
            return new StorageConnection(accountName, blob, queue, new StorageSharedKeyCredential(accountName, key), null, null);
        }
        if (parts.TryGetValue("SharedAccessSignature", out var sas))
        {
            return new StorageConnection(accountName, blob, queue, null, new AzureSasCredential(sas.TrimStart('?')), null);
        }
        throw InvalidConnectionString("it has neither AccountKey nor SharedAccessSignature");
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
    public static StorageConnection FromSharedKey(StorageSharedKeyCredential credential, Uri blobServiceUri, Uri queueServiceUri) =>
        new(credential.AccountName, blobServiceUri, queueServiceUri, credential, null, null);

    /// <summary>A connection authorised by a SAS token, with explicit endpoints.</summary>
    public static StorageConnection FromSas(string accountName, string sas, Uri blobServiceUri, Uri queueServiceUri) =>
        new(accountName, blobServiceUri, queueServiceUri, null, new AzureSasCredential(sas.TrimStart('?')), null);

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
        if (!string.IsNullOrWhiteSpace(connectionString)) return Parse(connectionString);

        var accountName = get(settingName + "__accountName");
        var blobUri = get(settingName + "__blobServiceUri") is { Length: > 0 } bu ? new Uri(bu) : null;
        var queueUri = get(settingName + "__queueServiceUri") is { Length: > 0 } qu ? new Uri(qu) : null;
        if (accountName is null && blobUri is null)
        {
            throw new InvalidOperationException(
                $"No storage connection is configured: set '{settingName}' to a connection string (UseDevelopmentStorage=true for Azurite), " +
                $"or '{settingName}__accountName' (or '{settingName}__blobServiceUri' and '{settingName}__queueServiceUri') for an identity-based connection.");
        }
        accountName ??= AccountNameFromUri(blobUri!);
        if (queueUri is null && blobUri is not null)
        {
            throw new InvalidOperationException($"'{settingName}__blobServiceUri' is set but '{settingName}__queueServiceUri' is not: set both, or set '{settingName}__accountName'.");
        }

        TokenCredential credential;
        var clientId = get(settingName + "__clientId");
        if (string.Equals(get(settingName + "__credential"), "managedidentity", StringComparison.OrdinalIgnoreCase))
        {
            credential = new ManagedIdentityCredential(clientId is { Length: > 0 }
                ? ManagedIdentityId.FromUserAssignedClientId(clientId)
                : ManagedIdentityId.SystemAssigned);
        }
        else
        {
            credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId });
        }
        return FromTokenCredential(accountName, credential, blobUri, queueUri);
    }

    /// <summary>The pipeline every client of this connection sends through, with this connection's authentication policy.</summary>
    public HttpPipeline BuildPipeline(StorageClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (SharedKey is not null) return StorageRestClient.BuildPipeline(options, null, new SharedKeyPolicy(SharedKey));
        if (Sas is not null) return StorageRestClient.BuildPipeline(options, new SasPolicy(Sas), null);
        return StorageRestClient.BuildPipeline(options, null, new BearerTokenAuthenticationPolicy(TokenCredential!, StorageScope));
    }

    public BlobServiceClient GetBlobServiceClient(StorageClientOptions? options = null)
    {
        options ??= new StorageClientOptions();
        return new BlobServiceClient(BlobServiceUri, new StorageRestClient(BuildPipeline(options), options), AccountName);
    }

    public BlobContainerClient GetBlobContainerClient(string containerName, StorageClientOptions? options = null) =>
        GetBlobServiceClient(options).GetBlobContainerClient(containerName);

    public QueueClient GetQueueClient(string queueName, StorageClientOptions? options = null)
    {
        options ??= new StorageClientOptions();
        return new QueueClient(StorageRestClient.Append(QueueServiceUri, queueName), new StorageRestClient(BuildPipeline(options), options), queueName);
    }

    private static string AccountNameFromUri(Uri uri)
    {
        // Azurite and other path-style endpoints carry the account as the first path segment.
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0) return path.Split('/')[0];
        return uri.Host.Split('.')[0];
    }

    private static FormatException InvalidConnectionString(string why) =>
        new($"The storage connection string is invalid: {why}. Expected 'UseDevelopmentStorage=true', " +
            "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net', or 'BlobEndpoint=...;QueueEndpoint=...;SharedAccessSignature=...'.");

    private static string Redact(string part) =>
        part.StartsWith("AccountKey", StringComparison.OrdinalIgnoreCase) || part.StartsWith("SharedAccessSignature", StringComparison.OrdinalIgnoreCase)
            ? part.Split('=')[0] + "=***"
            : part;
}
