using System.Security.Cryptography;
using Azure;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Storage;

[Collection(AzuriteCollection.Name)]
public sealed class BlobClientTests(AzuriteFixture azurite)
{
    private async Task<BlobContainerClient> NewContainerAsync(StorageClientOptions? options = null)
    {
        var container = azurite.Connection.GetBlobContainerClient(AzuriteFixture.UniqueName("blobs"), options);
        (await container.CreateIfNotExistsAsync()).Should().BeTrue();
        return container;
    }

    [Fact]
    public async Task CreateIfNotExists_reports_whether_it_created_the_container()
    {
        var container = azurite.Connection.GetBlobContainerClient(AzuriteFixture.UniqueName("create"));
        (await container.CreateIfNotExistsAsync()).Should().BeTrue();
        (await container.CreateIfNotExistsAsync()).Should().BeFalse();
        (await container.DeleteIfExistsAsync()).Should().BeTrue();
        (await container.DeleteIfExistsAsync()).Should().BeFalse();
    }

    [Fact]
    public async Task Small_upload_round_trips_through_a_streaming_download()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("features/run-1/000000000001.sfe");
        var payload = RandomNumberGenerator.GetBytes(10_000);

        var info = await blob.UploadAsync(new MemoryStream(payload), new BlobUploadOptions { ContentType = "application/octet-stream" });

        using var download = await blob.DownloadStreamingAsync();
        download.NotModified.Should().BeFalse();
        download.Details!.ETag.Should().Be(info.ETag);
        download.Details.ContentLength.Should().Be(payload.Length);
        var copy = new MemoryStream();
        await download.Content.CopyToAsync(copy);
        copy.ToArray().Should().Equal(payload);
        (await blob.GetPropertiesAsync()).ContentType.Should().Be("application/octet-stream");
    }

    [Fact]
    public async Task Large_non_seekable_upload_goes_in_blocks_and_round_trips()
    {
        var options = new StorageClientOptions { SingleUploadThresholdBytes = 100_000, BlockSizeBytes = 64 * 1024 };
        var container = await NewContainerAsync(options);
        var blob = container.GetBlobClient("big.bin");
        var payload = RandomNumberGenerator.GetBytes(300_001); // 4 full blocks and a partial one

        await blob.UploadAsync(new NonSeekableStream(payload));
        (await blob.DownloadContentAsync()).ToArray().Should().Equal(payload);

        // The same from memory, above the threshold, with a condition on the commit.
        var etag = (await blob.GetPropertiesAsync()).ETag;
        var second = RandomNumberGenerator.GetBytes(200_000);
        await blob.UploadAsync(second.AsMemory(), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = etag } });
        (await blob.DownloadContentAsync()).ToArray().Should().Equal(second);
        var stale = () => blob.UploadAsync(second.AsMemory(), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = etag } });
        (await stale.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(412);
    }

    [Fact]
    public async Task Conditional_requests_have_clear_outcomes()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("state.json");

        var first = await blob.UploadIfNotExistsAsync(new MemoryStream("one"u8.ToArray()));
        first.Created.Should().BeTrue();
        var second = await blob.UploadIfNotExistsAsync(new MemoryStream("two"u8.ToArray()));
        second.Created.Should().BeFalse();
        (await blob.DownloadContentAsync()).ToString().Should().Be("one");

        // If-None-Match with the current ETag: not modified, no body.
        using (var cached = await blob.DownloadStreamingAsync(new BlobRequestConditions { IfNoneMatch = first.Info!.ETag }))
        {
            cached.NotModified.Should().BeTrue();
            cached.Details.Should().BeNull();
        }

        var updated = await blob.UploadAsync(new MemoryStream("three"u8.ToArray()), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = first.Info.ETag } });
        updated.ETag.Should().NotBe(first.Info.ETag);

        // A writer holding the old ETag loses: 412 ConditionNotMet.
        var lostUpdate = () => blob.UploadAsync(new MemoryStream("four"u8.ToArray()), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = first.Info.ETag } });
        var failure = (await lostUpdate.Should().ThrowAsync<RequestFailedException>()).Which;
        failure.Status.Should().Be(412);
        failure.ErrorCode.Should().Be("ConditionNotMet");

        var staleRead = () => blob.DownloadStreamingAsync(new BlobRequestConditions { IfMatch = first.Info.ETag });
        (await staleRead.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(412);
        (await blob.DownloadContentAsync(new BlobRequestConditions { IfMatch = updated.ETag })).ToString().Should().Be("three");
    }

    [Fact]
    public async Task Listing_by_prefix_pages_with_a_continuation_token()
    {
        var container = await NewContainerAsync();
        for (var i = 0; i < 5; i++) await container.GetBlobClient($"features/r1/{i:D3}").UploadAsync(new MemoryStream([(byte)i]));
        await container.GetBlobClient("gradients/r1/000").UploadAsync(new MemoryStream([9]));

        var all = new List<string>();
        await foreach (var item in container.GetBlobsAsync("features/")) all.Add(item.Name);
        all.Should().Equal("features/r1/000", "features/r1/001", "features/r1/002", "features/r1/003", "features/r1/004");

        var pages = container.GetBlobsAsync("features/").AsPages(pageSizeHint: 2);
        string? continuation = null;
        await foreach (var page in pages)
        {
            page.Values.Should().HaveCount(2);
            page.ContinuationToken.Should().NotBeNullOrEmpty();
            continuation = page.ContinuationToken;
            break;
        }
        var rest = new List<BlobItem>();
        await foreach (var page in container.GetBlobsAsync("features/").AsPages(continuation, 2)) rest.AddRange(page.Values);
        rest.Select(b => b.Name).Should().Equal("features/r1/002", "features/r1/003", "features/r1/004");
        rest.Should().OnlyContain(b => b.ContentLength == 1);
    }

    [Fact]
    public async Task Missing_blobs_fail_with_status_and_error_code()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("nothing-here");
        (await blob.ExistsAsync()).Should().BeFalse();
        var get = () => blob.GetPropertiesAsync();
        var head = (await get.Should().ThrowAsync<RequestFailedException>()).Which;
        head.Status.Should().Be(404);
        head.ErrorCode.Should().Be("BlobNotFound");
        var download = () => blob.DownloadStreamingAsync();
        var body = (await download.Should().ThrowAsync<RequestFailedException>()).Which;
        body.ErrorCode.Should().Be("BlobNotFound");
        body.Message.Should().Contain("404");

        await blob.UploadAsync(new MemoryStream([1]));
        (await blob.DeleteIfExistsAsync()).Should().BeTrue();
        (await blob.DeleteIfExistsAsync()).Should().BeFalse();
        var missingContainer = azurite.Connection.GetBlobContainerClient("no-such-container").GetBlobClient("x");
        var upload = () => missingContainer.UploadAsync(new MemoryStream([1]));
        (await upload.Should().ThrowAsync<RequestFailedException>()).Which.ErrorCode.Should().Be("ContainerNotFound");
    }

    [Fact]
    public async Task Leases_give_one_writer_and_can_be_renewed_released_and_broken()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("runs/r1/state.json");
        await blob.UploadAsync(new MemoryStream("{}"u8.ToArray()));

        var holder = blob.GetBlobLeaseClient();
        var lease = await holder.AcquireAsync(TimeSpan.FromSeconds(15));
        lease.LeaseId.Should().Be(holder.LeaseId);
        (await blob.GetPropertiesAsync()).LeaseState.Should().Be("leased");

        var rival = blob.GetBlobLeaseClient();
        var steal = () => rival.AcquireAsync(TimeSpan.FromSeconds(15));
        (await steal.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(409);

        var writeWithoutLease = () => blob.UploadAsync(new MemoryStream("x"u8.ToArray()));
        (await writeWithoutLease.Should().ThrowAsync<RequestFailedException>()).Which.Status.Should().Be(412);
        await blob.UploadAsync(new MemoryStream("y"u8.ToArray()), new BlobUploadOptions { Conditions = new BlobRequestConditions { LeaseId = holder.LeaseId } });

        (await holder.RenewAsync()).LeaseId.Should().Be(holder.LeaseId);
        await holder.ReleaseAsync();
        (await rival.AcquireAsync(BlobLeaseClient.InfiniteLeaseDuration)).LeaseId.Should().Be(rival.LeaseId);

        var broken = await holder.BreakAsync(TimeSpan.Zero);
        broken.LeaseTimeSeconds.Should().Be(0);
        (await blob.GetPropertiesAsync()).LeaseState.Should().Be("broken");
        var renewBroken = () => rival.RenewAsync();
        await renewBroken.Should().ThrowAsync<RequestFailedException>();
        var tooLong = () => holder.AcquireAsync(TimeSpan.FromSeconds(61));
        await tooLong.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }

    [Fact]
    public async Task A_connection_string_from_settings_reaches_Azurite()
    {
        var settings = new Dictionary<string, string?> { ["AzureWebJobsStorage"] = azurite.Azurite.ConnectionString };
        var connection = StorageConnection.FromSettings(settings);
        var container = connection.GetBlobContainerClient(AzuriteFixture.UniqueName("settings"));
        (await container.CreateIfNotExistsAsync()).Should().BeTrue();
        (await connection.GetQueueClient(AzuriteFixture.UniqueName("settings")).CreateIfNotExistsAsync()).Should().BeTrue();
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

    private sealed class NonSeekableStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            // Short reads on purpose: the uploader must fill each block itself.
            var n = Math.Min(Math.Min(count, 7_000), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
