using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Storage;

/// <summary>The three storage endpoints a hospital uses: its container, the shared `features` queue (add only) and its reply queue.</summary>
public sealed record HospitalStorage(BlobContainerClient Container, QueueClient Features, QueueClient Replies)
{
    /// <summary>Clients from the configuration; retries are the agent's Polly policy (it rides out long outages), so the pipeline's own are off.</summary>
    public static HospitalStorage Create(AgentConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var blobOptions = StorageClientDefaults.Blob(StorageRetries.Caller);
        var queueOptions = StorageClientDefaults.Queue(StorageRetries.Caller);
        var storage = config.Storage;
        try
        {
            if (storage.ConnectionString is not null || storage.Identity is not null)
            {
                var connection = storage.Identity is { } identity ? IdentityConnection(identity)
                    : StorageConnection.Parse(storage.ConnectionString!, "storage.connectionString");
                return new HospitalStorage(
                    connection.GetBlobContainerClient(StorageNames.HospitalContainer(config.HospitalId), blobOptions),
                    connection.GetQueueClient(StorageNames.FeaturesQueue, queueOptions),
                    connection.GetQueueClient(StorageNames.RepliesQueue(config.HospitalId), queueOptions));
            }
            // What the agent does with each: read manifests and replies' frames, write its frames; add to features; read and delete replies.
            var (containerUri, containerSas) = SplitSas(storage.ContainerUri!, "containerUri");
            var (featuresUri, featuresSas) = SplitSas(storage.FeaturesQueueUri!, "featuresQueueUri");
            var (repliesUri, repliesSas) = SplitSas(storage.RepliesQueueUri!, "repliesQueueUri");
            RequireName(containerUri, StorageNames.HospitalContainer(config.HospitalId), "containerUri");
            RequireName(repliesUri, StorageNames.RepliesQueue(config.HospitalId), "repliesQueueUri");
            RequireName(featuresUri, StorageNames.FeaturesQueue, "featuresQueueUri");
            CheckSas(containerSas, "containerUri", ("r", "read"), ("w", "write"));
            CheckSas(featuresSas, "featuresQueueUri", ("a", "add"));
            CheckSas(repliesSas, "repliesQueueUri", ("r", "read"), ("p", "process"));
            return new HospitalStorage(
                new BlobContainerClient(containerUri, new AzureSasCredential(containerSas), blobOptions),
                new QueueClient(featuresUri, new AzureSasCredential(featuresSas), queueOptions),
                new QueueClient(repliesUri, new AzureSasCredential(repliesSas), queueOptions));
        }
        catch (StorageSettingsException e)
        {
            throw new AgentException(ExitCode.Configuration, $"configuration: {e.Message}", e);
        }
    }

    // Role assignments scoped to this hospital's container and queues decide what the identity reaches.
    private static StorageConnection IdentityConnection(IdentitySettings identity)
    {
        TokenCredential credential = identity.CertificatePath is { } certificate
            ? new ClientCertificateCredential(identity.TenantId, identity.ClientId, certificate)
            : new DefaultAzureCredential();
        return StorageConnection.FromTokenCredential(identity.AccountName, credential,
            identity.BlobServiceUri is null ? null : new Uri(identity.BlobServiceUri),
            identity.QueueServiceUri is null ? null : new Uri(identity.QueueServiceUri));
    }

    // A URI for another hospital's container would only fail later with a confusing 403: say so now.
    private static void RequireName(Uri uri, string expected, string field)
    {
        var name = uri.AbsolutePath.Trim('/').Split('/')[^1];
        if (!string.Equals(name, expected, StringComparison.Ordinal))
        {
            throw new AgentException(ExitCode.Configuration,
                $"configuration: storage.{field} points at '{name}', but this hospital's is '{expected}'. Use the URIs the operator issued for this hospital "
                    + $"id.");
        }
    }

    // An expired SAS or one without a permission would only fail later, as a bare 403: name the field and what to fix now.
    private static (Uri Uri, string Sas) SplitSas(string uriWithSas, string field)
    {
        if (!Uri.TryCreate(uriWithSas, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new AgentException(ExitCode.Configuration, $"configuration: storage.{field} is not an https URL with a SAS: paste the URI the operator "
                + $"issued for this hospital.");
        }
        var sas = uri.Query.TrimStart('?');
        if (!sas.Contains("sig=", StringComparison.Ordinal))
        {
            throw new AgentException(ExitCode.Configuration, $"configuration: storage.{field} carries no SAS (no 'sig=' in its query): paste the whole URI "
                + $"the operator issued, including '?sv=...&sig=...'.");
        }
        return (new Uri(uri.GetLeftPart(UriPartial.Path)), sas);
    }

    private static void CheckSas(string sas, string field, params (string Letter, string Name)[] needs)
    {
        var query = System.Web.HttpUtility.ParseQueryString(sas);
        if (query["se"] is { } se
            && DateTimeOffset.TryParse(se, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal,
            out var expiresOn)
            && expiresOn <= DateTimeOffset.UtcNow)
        {
            throw new AgentException(ExitCode.StorageAccess,
                $"configuration: the SAS of storage.{field} expired at {expiresOn:u}: ask the operator for new storage URIs (docs/deploy.md, onboarding) and "
                    + $"update the configuration; the run's state is kept.");
        }
        // A SAS naming a stored access policy (si=, what the operator's tool issues so it can revoke them) carries its
        // permissions in that policy, not in the URI: only the service can check them.
        if (query["si"] is not null && query["sp"] is null) return;
        var permissions = query["sp"] ?? "";
        var missing = needs.Where(n => !permissions.Contains(n.Letter, StringComparison.Ordinal)).Select(n => $"'{n.Letter}' ({n.Name})").ToList();
        if (missing.Count > 0)
        {
            throw new AgentException(ExitCode.StorageAccess,
                $"configuration: the SAS of storage.{field} lacks permission {string.Join(" and ", missing)} (it has sp={permissions}): ask the operator for "
                    + $"URIs minted for this hospital; the run's state is kept.");
        }
    }
}
