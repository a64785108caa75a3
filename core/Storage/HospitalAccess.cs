using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Azure.Storage.Sas;
using SplitFunctions.Core.Contract;

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
    string RepliesQueueSas,
    Uri FeaturesQueueUri,
    string FeaturesQueueSas,
    DateTimeOffset ExpiresOn)
{
    public BlobContainerClient GetContainerClient(BlobClientOptions? options = null) =>
        new(ContainerUri, new AzureSasCredential(ContainerSas), options ?? StorageClientDefaults.Blob());

    public QueueClient GetRepliesQueueClient(QueueClientOptions? options = null) =>
        new(RepliesQueueUri, new AzureSasCredential(RepliesQueueSas), options ?? StorageClientDefaults.Queue());

    public QueueClient GetFeaturesQueueClient(QueueClientOptions? options = null) =>
        new(FeaturesQueueUri, new AzureSasCredential(FeaturesQueueSas), options ?? StorageClientDefaults.Queue());
}

/// <summary>
/// Mints <see cref="HospitalCredentials"/> with the SDK's SAS builders: service SAS signed with the account key (Azurite,
/// key-based accounts), or user delegation SAS (blob and queue) when the connection uses a Microsoft Entra token credential.
/// </summary>
public sealed class HospitalAccess(StorageConnection connection)
{
    private const BlobContainerSasPermissions ContainerPermissions =
        BlobContainerSasPermissions.Read | BlobContainerSasPermissions.Add | BlobContainerSasPermissions.Create |
        BlobContainerSasPermissions.Write | BlobContainerSasPermissions.Delete | BlobContainerSasPermissions.List;

    private const QueueSasPermissions RepliesPermissions = QueueSasPermissions.Read | QueueSasPermissions.Process;

    private const QueueSasPermissions FeaturesPermissions = QueueSasPermissions.Add;

    /// <summary>Name of the stored access policy on `h-&lt;hospital&gt;` and `replies-&lt;hospital&gt;` that revocable SAS refer to.</summary>
    public const string AccessPolicyId = "hospital-access";

    /// <summary>
    /// SAS the operator can revoke: with an account key, the container and reply-queue SAS refer to the stored access policy
    /// <see cref="AccessPolicyId"/> (permissions and expiry live in the policy), so <see cref="RevokeAsync"/> ends them at
    /// once; the shared `features` queue cannot carry a policy per hospital (5 at most), so its add-only SAS runs to expiry.
    /// With a Microsoft Entra identity there are no stored policies for user delegation SAS: the result is <see cref="MintAsync"/>'s.
    /// </summary>
    public async Task<HospitalCredentials> MintRevocableAsync(string hospitalId, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        if (connection.SharedKey is not { } key) return await MintAsync(hospitalId, lifetime, cancellationToken).ConfigureAwait(false);
        var container = connection.GetBlobContainerClient(StorageNames.HospitalContainer(hospitalId));
        var replies = connection.GetQueueClient(StorageNames.RepliesQueue(hospitalId));
        var startsOn = DateTimeOffset.UtcNow.AddMinutes(-5);
        var expiresOn = DateTimeOffset.UtcNow.Add(lifetime);
        await container.SetAccessPolicyAsync(permissions:
        [
            new Azure.Storage.Blobs.Models.BlobSignedIdentifier
            {
                Id = AccessPolicyId,
                AccessPolicy = new Azure.Storage.Blobs.Models.BlobAccessPolicy { PolicyStartsOn = startsOn, PolicyExpiresOn = expiresOn,
                    Permissions = "racwdl" },
            },
        ], cancellationToken: cancellationToken).ConfigureAwait(false);
        await replies.SetAccessPolicyAsync(
        [
            new Azure.Storage.Queues.Models.QueueSignedIdentifier
            {
                Id = AccessPolicyId,
                AccessPolicy = new Azure.Storage.Queues.Models.QueueAccessPolicy { StartsOn = startsOn, ExpiresOn = expiresOn, Permissions = "rp" },
            },
        ], cancellationToken).ConfigureAwait(false);
        var featuresUri = connection.GetQueueClient(StorageNames.FeaturesQueue).Uri;
        var containerSas = new BlobSasBuilder
        {
            BlobContainerName = container.Name,
            Resource = "c",
            Identifier = AccessPolicyId,
            Protocol = Protocol(container.Uri)
        };
        var repliesSas = new QueueSasBuilder { QueueName = replies.Name, Identifier = AccessPolicyId, Protocol = Protocol(replies.Uri) };
        var featuresSas = new QueueSasBuilder(FeaturesPermissions, expiresOn)
        {
            QueueName = StorageNames.FeaturesQueue,
            StartsOn = startsOn,
            Protocol = Protocol(featuresUri)
        };
        return new HospitalCredentials(hospitalId,
            container.Uri, containerSas.ToSasQueryParameters(key).ToString(),
            replies.Uri, repliesSas.ToSasQueryParameters(key).ToString(),
            featuresUri, featuresSas.ToSasQueryParameters(key).ToString(),
            expiresOn);
    }

    /// <summary>Removes the stored access policies, which ends every SAS <see cref="MintRevocableAsync"/> issued for the hospital.</summary>
    public async Task RevokeAsync(string hospitalId, CancellationToken cancellationToken = default)
    {
        var container = connection.GetBlobContainerClient(StorageNames.HospitalContainer(hospitalId));
        var replies = connection.GetQueueClient(StorageNames.RepliesQueue(hospitalId));
        if (await container.ExistsAsync(cancellationToken).ConfigureAwait(false))
            await container.SetAccessPolicyAsync(permissions: [], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (await replies.ExistsAsync(cancellationToken).ConfigureAwait(false))
            await replies.SetAccessPolicyAsync([], cancellationToken).ConfigureAwait(false);
    }

    public async Task<HospitalCredentials> MintAsync(string hospitalId, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var container = StorageNames.HospitalContainer(hospitalId);
        var replies = StorageNames.RepliesQueue(hospitalId);
        var startsOn = DateTimeOffset.UtcNow.AddMinutes(-5); // clock skew between the minting host and the service
        var expiresOn = DateTimeOffset.UtcNow.Add(lifetime);
        var blobs = connection.GetBlobServiceClient();
        var queues = connection.GetQueueServiceClient();
        var containerUri = blobs.GetBlobContainerClient(container).Uri;
        var repliesUri = queues.GetQueueClient(replies).Uri;
        var featuresUri = queues.GetQueueClient(StorageNames.FeaturesQueue).Uri;

        var containerSas = new BlobSasBuilder(ContainerPermissions, expiresOn)
        {
            BlobContainerName = container,
            Resource = "c",
            StartsOn = startsOn,
            Protocol = Protocol(containerUri)
        };
        var repliesSas = new QueueSasBuilder(RepliesPermissions, expiresOn) { QueueName = replies, StartsOn = startsOn, Protocol = Protocol(repliesUri) };
        var featuresSas = new QueueSasBuilder(FeaturesPermissions, expiresOn)
        {
            QueueName = StorageNames.FeaturesQueue,
            StartsOn = startsOn,
            Protocol = Protocol(featuresUri)
        };

        if (connection.SharedKey is { } key)
        {
            return new HospitalCredentials(hospitalId,
                containerUri, containerSas.ToSasQueryParameters(key).ToString(),
                repliesUri, repliesSas.ToSasQueryParameters(key).ToString(),
                featuresUri, featuresSas.ToSasQueryParameters(key).ToString(),
                expiresOn);
        }
        if (connection.TokenCredential is not null)
        {
            // No account key with Entra ID: sign with user delegation keys (the identity needs the right to get user
            // delegation keys, e.g. 'Storage Blob Delegator').
            var blobKey = (await blobs.GetUserDelegationKeyAsync(startsOn, expiresOn, cancellationToken).ConfigureAwait(false)).Value;
            var queueKey = (await queues.GetUserDelegationKeyAsync(startsOn, expiresOn, cancellationToken).ConfigureAwait(false)).Value;
            return new HospitalCredentials(hospitalId,
                containerUri, containerSas.ToSasQueryParameters(blobKey, connection.AccountName).ToString(),
                repliesUri, repliesSas.ToSasQueryParameters(queueKey, connection.AccountName).ToString(),
                featuresUri, featuresSas.ToSasQueryParameters(queueKey, connection.AccountName).ToString(),
                expiresOn);
        }
        throw new StorageSettingsException(StorageConnection.DefaultSettingName,
            "A SAS-based connection cannot mint SAS tokens for hospitals: use the account key or a Microsoft Entra identity with the right to get user "
                + "delegation keys (e.g. 'Storage Blob Delegator').");
    }

    // HTTPS only in Azure; Azurite listens on plain HTTP.
    private static SasProtocol Protocol(Uri uri) => uri.Scheme == Uri.UriSchemeHttps ? SasProtocol.Https : SasProtocol.HttpsAndHttp;
}
