using Azure;
using Azure.Core;
using Azure.Identity;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.ClientAgent.Storage;

/// <summary>The three storage endpoints a hospital uses: its container, the shared `features` queue (add only) and its reply queue.</summary>
public sealed record HospitalStorage(BlobContainerClient Container, QueueClient Features, QueueClient Replies)
{
    /// <summary>Clients from the configuration; retries are the agent's Polly policy, so the pipeline's own are off.</summary>
    public static HospitalStorage Create(AgentConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var options = new StorageClientOptions();
        options.Retry.MaxRetries = 0;
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
        var storage = config.Storage;
        try
        {
            if (storage.ConnectionString is not null || storage.Identity is not null)
            {
                var connection = storage.Identity is { } identity ? IdentityConnection(identity) : StorageConnection.Parse(storage.ConnectionString!);
                return new HospitalStorage(
                    connection.GetBlobContainerClient(StorageNames.HospitalContainer(config.HospitalId), options),
                    connection.GetQueueClient(StorageNames.FeaturesQueue, options),
                    connection.GetQueueClient(StorageNames.RepliesQueue(config.HospitalId), options));
            }
            var (containerUri, containerSas) = SplitSas(storage.ContainerUri!);
            RequireName(containerUri, StorageNames.HospitalContainer(config.HospitalId), "containerUri");
            RequireName(new Uri(storage.RepliesQueueUri!), StorageNames.RepliesQueue(config.HospitalId), "repliesQueueUri");
            RequireName(new Uri(storage.FeaturesQueueUri!), StorageNames.FeaturesQueue, "featuresQueueUri");
            var (featuresUri, featuresSas) = SplitSas(storage.FeaturesQueueUri!);
            var (repliesUri, repliesSas) = SplitSas(storage.RepliesQueueUri!);
            return new HospitalStorage(
                new BlobContainerClient(containerUri, new AzureSasCredential(containerSas), options),
                new QueueClient(featuresUri, new AzureSasCredential(featuresSas), options),
                new QueueClient(repliesUri, new AzureSasCredential(repliesSas), options));
        }
        catch (FormatException e)
        {
            throw new AgentException(ExitCode.Configuration, $"configuration: storage: {e.Message}", e);
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
                $"configuration: storage.{field} points at '{name}', but this hospital's is '{expected}'. Use the URIs the operator issued for this hospital id.");
        }
    }

    private static (Uri Uri, string Sas) SplitSas(string uriWithSas)
    {
        var uri = new Uri(uriWithSas);
        return (new Uri(uri.GetLeftPart(UriPartial.Path)), uri.Query.TrimStart('?'));
    }
}
