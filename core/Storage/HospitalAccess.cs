using Azure;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// The storage credentials one hospital's agent gets: its own container `h-&lt;hospital&gt;` (read, add, create, write, delete, list),
/// its reply queue `replies-&lt;hospital&gt;` (read, process) and the shared `features` queue (add only). Nothing else.
/// </summary>
public sealed record HospitalCredentials(
    string HospitalId,
    Uri ContainerUri,
    string ContainerSas,
    Uri RepliesQueueUri,
    string? RepliesQueueSas,
    Uri FeaturesQueueUri,
    string? FeaturesQueueSas,
    DateTimeOffset ExpiresOn)
{
    public BlobContainerClient GetContainerClient(StorageClientOptions? options = null) => new(ContainerUri, new AzureSasCredential(ContainerSas), options);

    /// <summary>The reply queue client; needs a queue SAS (account-key connections; with Entra ID grant the hospital's identity a queue role instead).</summary>
    public QueueClient GetRepliesQueueClient(StorageClientOptions? options = null) =>
        new(RepliesQueueUri, new AzureSasCredential(RepliesQueueSas ?? throw NoQueueSas()), options);

    public QueueClient GetFeaturesQueueClient(StorageClientOptions? options = null) =>
        new(FeaturesQueueUri, new AzureSasCredential(FeaturesQueueSas ?? throw NoQueueSas()), options);

    private static InvalidOperationException NoQueueSas() => new(
        "No queue SAS was minted: Azure Storage has no user delegation SAS for queues. With a Microsoft Entra connection, " +
        "give the hospital's identity 'Storage Queue Data Message Sender' on 'features' and 'Storage Queue Data Message Processor' on its reply queue.");
}

/// <summary>Mints <see cref="HospitalCredentials"/>: service SAS signed with the account key (Azurite, key-based accounts), or a user delegation SAS for the container when the connection uses a token credential.</summary>
public sealed class HospitalAccess(StorageConnection connection)
{
    private const ContainerSasPermissions ContainerPermissions = ContainerSasPermissions.All;

    public async Task<HospitalCredentials> MintAsync(string hospitalId, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        var container = StorageNames.HospitalContainer(hospitalId);
        var replies = StorageNames.RepliesQueue(hospitalId);
        var startsOn = DateTimeOffset.UtcNow.AddMinutes(-5); // clock skew between the minting host and the service
        var expiresOn = DateTimeOffset.UtcNow.Add(lifetime);
        var containerUri = StorageRestClient.Append(connection.BlobServiceUri, container);
        var repliesUri = StorageRestClient.Append(connection.QueueServiceUri, replies);
        var featuresUri = StorageRestClient.Append(connection.QueueServiceUri, StorageNames.FeaturesQueue);

        if (connection.SharedKey is { } key)
        {
            return new HospitalCredentials(hospitalId,
                containerUri, SasBuilder.ContainerSas(key, container, ContainerPermissions, expiresOn, startsOn),
                repliesUri, SasBuilder.QueueSas(key, replies, QueueSasPermissions.Read | QueueSasPermissions.Process, expiresOn, startsOn),
                featuresUri, SasBuilder.QueueSas(key, StorageNames.FeaturesQueue, QueueSasPermissions.Add, expiresOn, startsOn),
                expiresOn);
        }
        if (connection.TokenCredential is not null)
        {
            var delegationKey = await connection.GetBlobServiceClient().GetUserDelegationKeyAsync(startsOn, expiresOn, cancellationToken).ConfigureAwait(false);
            return new HospitalCredentials(hospitalId,
                containerUri, SasBuilder.ContainerUserDelegationSas(delegationKey, connection.AccountName, container, ContainerPermissions, expiresOn, startsOn),
                repliesUri, null, featuresUri, null, expiresOn);
        }
        throw new InvalidOperationException("A SAS-based connection cannot mint SAS tokens for hospitals: use the account key or a Microsoft Entra identity with 'Storage Blob Delegator'.");
    }
}
