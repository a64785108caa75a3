using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Storage;

[Collection(AzuriteCollection.Name)]
public sealed class HospitalAccessTests(AzuriteFixture azurite)
{
    private async Task<(HospitalCredentials Alpha, HospitalCredentials Beta)> ProvisionAsync()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var alpha = "alpha-" + suffix;
        var beta = "beta-" + suffix;
        foreach (var hospital in new[] { alpha, beta })
        {
            await azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(hospital)).CreateIfNotExistsAsync();
            await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(hospital)).CreateIfNotExistsAsync();
        }
        await azurite.Connection.GetQueueClient(StorageNames.FeaturesQueue).CreateIfNotExistsAsync();
        var access = new HospitalAccess(azurite.Connection);
        return (await access.MintAsync(alpha, TimeSpan.FromHours(1)), await access.MintAsync(beta, TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task A_hospital_SAS_works_on_its_own_container()
    {
        var (alpha, _) = await ProvisionAsync();
        var container = alpha.GetContainerClient();
        container.Name.Should().Be(StorageNames.HospitalContainer(alpha.HospitalId));
        var blob = container.GetBlobClient("features/run-1/000000000000.sfe");
        await blob.UploadAsync(BinaryData.FromBytes([1, 2, 3]));
        (await blob.DownloadContentAsync()).Value.Content.ToArray().Should().Equal(1, 2, 3);
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, CancellationToken.None)) names.Add(item.Name);
        names.Should().Equal("features/run-1/000000000000.sfe");
        ((bool)await blob.DeleteIfExistsAsync()).Should().BeTrue();
    }

    [Fact]
    public async Task A_hospital_SAS_cannot_read_or_write_another_hospitals_container()
    {
        var (alpha, beta) = await ProvisionAsync();
        var betaBlob = beta.GetContainerClient().GetBlobClient("features/run-1/000000000000.sfe");
        await betaBlob.UploadAsync(BinaryData.FromBytes([42]));

        // Alpha's SAS pointed at beta's container.
        var trespass = new BlobContainerClient(beta.ContainerUri, new AzureSasCredential(alpha.ContainerSas), StorageClientDefaults.Blob());
        var read = () => trespass.GetBlobClient("features/run-1/000000000000.sfe").DownloadContentAsync();
        (await read.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var write = () => trespass.GetBlobClient("features/run-1/000000000001.sfe").UploadAsync(BinaryData.FromBytes([1]));
        (await write.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var list = async () => { await foreach (var _ in trespass.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, CancellationToken.None)) { } };
        (await list.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var runs = new BlobContainerClient(new Uri(azurite.Azurite.BlobServiceUri + "/" + StorageNames.RunsContainer),
            new AzureSasCredential(alpha.ContainerSas), StorageClientDefaults.Blob());
        var readRuns = () => runs.GetBlobClient("r/manifest.json").DownloadContentAsync();
        (await readRuns.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);

        (await betaBlob.DownloadContentAsync()).Value.Content.ToArray().Should().Equal(42);
    }

    [Fact]
    public async Task A_hospital_reads_only_its_reply_queue_and_may_only_add_to_features()
    {
        var (alpha, beta) = await ProvisionAsync();
        await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(alpha.HospitalId)).SendMessageAsync("for alpha");
        await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(beta.HospitalId)).SendMessageAsync("for beta");

        var replies = alpha.GetRepliesQueueClient();
        var mine = (await replies.ReceiveMessagesAsync()).Value.Should().ContainSingle().Which;
        mine.Body.ToString().Should().Be("for alpha");
        await replies.DeleteMessageAsync(mine.MessageId, mine.PopReceipt);

        var othersReplies = new QueueClient(beta.RepliesQueueUri, new AzureSasCredential(alpha.RepliesQueueSas), StorageClientDefaults.Queue());
        var steal = () => othersReplies.ReceiveMessagesAsync();
        (await steal.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var forgeOthers = () => othersReplies.SendMessageAsync("forged reply to beta");
        (await forgeOthers.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var addWithFeaturesSas = new QueueClient(beta.RepliesQueueUri, new AzureSasCredential(alpha.FeaturesQueueSas), StorageClientDefaults.Queue());
        var forgeWithAdd = () => addWithFeaturesSas.SendMessageAsync("forged reply to beta");
        (await forgeWithAdd.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
        var sendToOwnReplies = () => replies.SendMessageAsync("forged reply");
        (await sendToOwnReplies.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);

        var features = alpha.GetFeaturesQueueClient();
        (await features.SendMessageAsync("frame")).Value.MessageId.Should().NotBeNullOrEmpty();
        var readFeatures = () => features.ReceiveMessagesAsync();
        (await readFeatures.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(403);
    }

    [Fact]
    public void Hospital_ids_are_validated_before_they_become_names()
    {
        StorageNames.HospitalContainer("st-marys-2").Should().Be("h-st-marys-2");
        StorageNames.RepliesQueue("st-marys-2").Should().Be("replies-st-marys-2");
        foreach (var bad in new[] { "", "Upper", "a_b", "-lead", "trail-", "dou--ble", new string('a', 41), "../x" })
        {
            var act = () => StorageNames.HospitalContainer(bad);
            act.Should().Throw<ArgumentException>().WithMessage("*Hospital id*1-40 lowercase letters*");
        }
        StorageNames.IsValidHospitalId(new string('a', 40)).Should().BeTrue();
        StorageNames.FrameBlob("features", "run-1", 42).Should().Be("features/run-1/000000000042.sfe");
    }
}
