using System.Security.Cryptography;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Storage;

/// <summary>The SDK blob behaviours the run store, the frame store and the lease rely on, against Azurite as the clients are configured.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobClientTests(AzuriteFixture azurite)
{
    private async Task<BlobContainerClient> NewContainerAsync()
    {
        var container = azurite.Connection.GetBlobContainerClient(AzuriteFixture.UniqueName("blobs"));
        (await container.CreateIfNotExistsAsync()).Should().NotBeNull("a new container is created");
        return container;
    }

    [Fact]
    public async Task CreateIfNotExists_creates_once_and_returns_null_when_the_container_exists()
    {
        var container = azurite.Connection.GetBlobContainerClient(AzuriteFixture.UniqueName("create"));
        (await container.CreateIfNotExistsAsync()).Should().NotBeNull();
        (await container.CreateIfNotExistsAsync()).Should().BeNull("the SDK answers null, not an error, for an existing container");
        ((bool)await container.DeleteIfExistsAsync()).Should().BeTrue();
        ((bool)await container.DeleteIfExistsAsync()).Should().BeFalse();
    }

    [Fact]
    public async Task The_pinned_service_version_works_without_skipApiVersionCheck_and_the_SDK_default_does_not()
    {
        // Azurite runs without --skipApiVersionCheck (AzuriteProcess): the pinned version is accepted, the SDK's newer default refused.
        var pinned = await NewContainerAsync();
        await pinned.GetBlobClient("v").UploadAsync(BinaryData.FromString("ok"));
        var unpinned = new BlobContainerClient(pinned.Uri, azurite.Connection.SharedKey!, new BlobClientOptions());
        var refused = () => unpinned.GetBlobClient("v").DownloadContentAsync();
        var failure = (await refused.Should().ThrowAsync<RequestFailedException>()).Which;
        failure.Status.Should().Be(400);
        failure.Message.Should().Contain("API version");
    }

    [Fact]
    public async Task Upload_defaults_to_no_overwrite_so_replacing_writes_say_so()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("features/run-1/000000000001.sfe");
        var payload = RandomNumberGenerator.GetBytes(10_000);
        await blob.UploadAsync(BinaryData.FromBytes(payload));

        var again = () => blob.UploadAsync(BinaryData.FromBytes(payload));
        var conflict = (await again.Should().ThrowAsync<RequestFailedException>()).Which;
        conflict.Status.Should().Be(409);
        conflict.ErrorCode.Should().Be("BlobAlreadyExists");

        var replacement = RandomNumberGenerator.GetBytes(4 * 1024 * 1024 + 3);
        var info = await blob.UploadReplacingAsync(BinaryData.FromBytes(replacement));
        var download = (await blob.DownloadContentAsync()).Value;
        download.Details.ETag.Should().Be(info.ETag);
        download.Content.ToArray().Should().Equal(replacement);
    }

    [Fact]
    public async Task Conditional_writes_create_once_and_lose_to_a_changed_ETag()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("journal/000000000001.json");

        (await blob.UploadIfNotExistsAsync(BinaryData.FromString("one"))).Should().BeTrue();
        (await blob.UploadIfNotExistsAsync(BinaryData.FromString("two"))).Should().BeFalse("If-None-Match: * keeps the first write");
        var first = (await blob.DownloadContentAsync()).Value;
        first.Content.ToString().Should().Be("one");

        var updated = (await blob.UploadAsync(BinaryData.FromString("three"),
            new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = first.Details.ETag } })).Value;
        updated.ETag.Should().NotBe(first.Details.ETag);

        // A writer holding the old ETag loses: 412 ConditionNotMet.
        var lostUpdate = () => blob.UploadAsync(BinaryData.FromString("four"),
            new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = first.Details.ETag } });
        var failure = (await lostUpdate.Should().ThrowAsync<RequestFailedException>()).Which;
        failure.Status.Should().Be(412);
        failure.ErrorCode.Should().Be("ConditionNotMet");
        (await blob.DownloadContentAsync()).Value.Content.ToString().Should().Be("three");
    }

    [Fact]
    public async Task Listing_by_prefix_pages_with_a_continuation_token()
    {
        var container = await NewContainerAsync();
        for (var i = 0; i < 5; i++) await container.GetBlobClient($"features/r1/{i:D3}").UploadAsync(BinaryData.FromBytes([(byte)i]));
        await container.GetBlobClient("gradients/r1/000").UploadAsync(BinaryData.FromBytes([9]));

        var all = new List<string>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "features/", CancellationToken.None)) all.Add(item.Name);
        all.Should().Equal("features/r1/000", "features/r1/001", "features/r1/002", "features/r1/003", "features/r1/004");

        string? continuation = null;
        await foreach (var page in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "features/", CancellationToken.None).AsPages(pageSizeHint: 2))
        {
            page.Values.Should().HaveCount(2);
            continuation = page.ContinuationToken;
            break;
        }
        continuation.Should().NotBeNullOrEmpty();
        var rest = new List<BlobItem>();
        await foreach (var page in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "features/", CancellationToken.None)
            .AsPages(continuation, 2)) rest.AddRange(page.Values);
        rest.Select(b => b.Name).Should().Equal("features/r1/002", "features/r1/003", "features/r1/004");
        rest.Should().OnlyContain(b => b.Properties.ContentLength == 1);
    }

    [Fact]
    public async Task Missing_blobs_and_containers_fail_with_status_and_error_code()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("nothing-here");
        ((bool)await blob.ExistsAsync()).Should().BeFalse();
        var download = () => blob.DownloadContentAsync();
        var body = (await download.Should().ThrowAsync<RequestFailedException>()).Which;
        body.Status.Should().Be(404);
        body.ErrorCode.Should().Be("BlobNotFound");
        ((bool)await blob.DeleteIfExistsAsync()).Should().BeFalse();

        var missingContainer = azurite.Connection.GetBlobContainerClient("no-such-container").GetBlobClient("x");
        var upload = () => missingContainer.UploadAsync(BinaryData.FromBytes([1]));
        (await upload.Should().ThrowAsync<RequestFailedException>()).Which.ErrorCode.Should().Be("ContainerNotFound");
    }

    [Fact]
    public async Task Leases_give_one_writer_and_can_be_renewed_released_and_broken()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("runs/r1/lease");
        (await blob.UploadIfNotExistsAsync(BinaryData.Empty)).Should().BeTrue();

        var holder = blob.GetBlobLeaseClient(Guid.NewGuid().ToString());
        (await holder.AcquireAsync(TimeSpan.FromSeconds(15))).Value.LeaseId.Should().Be(holder.LeaseId);
        (await blob.GetPropertiesAsync()).Value.LeaseState.Should().Be(LeaseState.Leased);

        var rival = blob.GetBlobLeaseClient(Guid.NewGuid().ToString());
        var steal = () => rival.AcquireAsync(TimeSpan.FromSeconds(15));
        (await steal.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(409);

        var writeWithoutLease = () => blob.UploadAsync(BinaryData.FromString("x"), overwrite: true);
        (await writeWithoutLease.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(412);
        await blob.UploadAsync(BinaryData.FromString("y"), new BlobUploadOptions { Conditions = new BlobRequestConditions { LeaseId = holder.LeaseId } });

        (await holder.RenewAsync()).Value.LeaseId.Should().Be(holder.LeaseId);
        await holder.ReleaseAsync();
        (await rival.AcquireAsync(BlobLeaseClient.InfiniteLeaseDuration)).Value.LeaseId.Should().Be(rival.LeaseId);

        var broken = (await holder.BreakAsync(TimeSpan.Zero)).Value;
        broken.LeaseTime.Should().Be(0);
        (await blob.GetPropertiesAsync()).Value.LeaseState.Should().Be(LeaseState.Broken);
        var renewBroken = () => rival.RenewAsync();
        await renewBroken.Should().ThrowAsync<RequestFailedException>();
    }

    [Fact]
    public async Task A_connection_string_from_settings_reaches_Azurite()
    {
        var settings = new Dictionary<string, string?> { ["AzureWebJobsStorage"] = azurite.Azurite.ConnectionString };
        var connection = StorageConnection.FromSettings(settings);
        (await connection.GetBlobContainerClient(AzuriteFixture.UniqueName("settings")).CreateIfNotExistsAsync()).Should().NotBeNull();
        (await connection.GetQueueClient(AzuriteFixture.UniqueName("settings")).CreateIfNotExistsAsync()).Should().NotBeNull();
    }

    [Fact]
    public async Task A_wrong_account_key_is_rejected_with_403()
    {
        var wrong = StorageConnection.FromSharedKey(
            new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, Convert.ToBase64String(new byte[64])),
            azurite.Azurite.BlobServiceUri, azurite.Azurite.QueueServiceUri);
        var create = () => wrong.GetBlobContainerClient("forbidden").CreateIfNotExistsAsync();
        (await create.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
    }
}
