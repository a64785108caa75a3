using System.Buffers;
using System.Globalization;
using System.Text;
using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>One block blob: upload, download, properties, delete, leases. Thread-safe.</summary>
public sealed class BlobClient
{
    private readonly StorageRestClient _rest;

    internal BlobClient(BlobContainerClient container, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Container = container;
        _rest = container.Rest;
        Name = name;
        Uri = StorageRestClient.Append(container.Uri, string.Join('/', name.Split('/').Select(Uri.EscapeDataString)));
    }

    public BlobContainerClient Container { get; }

    public string Name { get; }

    public Uri Uri { get; }

    public BlobLeaseClient GetBlobLeaseClient(string? leaseId = null) => new(this, _rest, leaseId);

    /// <summary>
    /// Uploads <paramref name="content"/> from its current position to its end, replacing the blob. A seekable stream up to
    /// <see cref="StorageClientOptions.SingleUploadThresholdBytes"/> goes in one Put Blob straight from the stream; anything else is
    /// sent in blocks of <see cref="StorageClientOptions.BlockSizeBytes"/> through one pooled buffer, then committed with Put Block List
    /// (the conditions apply to the commit). A failed If-Match throws <see cref="RequestFailedException"/> with status 412.
    /// </summary>
    public async Task<BlobContentInfo> UploadAsync(Stream content, BlobUploadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (content.CanSeek && content.Length - content.Position <= _rest.Options.SingleUploadThresholdBytes)
        {
            return await PutBlobAsync(RequestContent.Create(content), options, cancellationToken).ConfigureAwait(false);
        }

        var blockSize = _rest.Options.BlockSizeBytes;
        var buffer = ArrayPool<byte>.Shared.Rent(blockSize);
        try
        {
            var blockIds = new List<string>();
            while (true)
            {
                var filled = await FillAsync(content, buffer.AsMemory(0, blockSize), cancellationToken).ConfigureAwait(false);
                if (blockIds.Count == 0 && filled < blockSize)
                {
                    // Small non-seekable payload: one request is enough.
                    return await PutBlobAsync(RequestContent.Create(buffer.AsMemory(0, filled)), options, cancellationToken).ConfigureAwait(false);
                }
                if (filled == 0) break;
                var blockId = Convert.ToBase64String(Encoding.ASCII.GetBytes(blockIds.Count.ToString("D8", CultureInfo.InvariantCulture)));
                await PutBlockAsync(blockId, buffer.AsMemory(0, filled), options?.Conditions?.LeaseId, cancellationToken).ConfigureAwait(false);
                blockIds.Add(blockId);
                if (filled < blockSize) break;
            }
            return await PutBlockListAsync(blockIds, options, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Uploads bytes already in memory (one request up to the threshold, blocks beyond), without copying them.</summary>
    public async Task<BlobContentInfo> UploadAsync(ReadOnlyMemory<byte> content, BlobUploadOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (content.Length <= _rest.Options.SingleUploadThresholdBytes)
        {
            return await PutBlobAsync(RequestContent.Create(content), options, cancellationToken).ConfigureAwait(false);
        }
        var blockIds = new List<string>();
        for (var offset = 0; offset < content.Length; offset += _rest.Options.BlockSizeBytes)
        {
            var blockId = Convert.ToBase64String(Encoding.ASCII.GetBytes(blockIds.Count.ToString("D8", CultureInfo.InvariantCulture)));
            var block = content.Slice(offset, Math.Min(_rest.Options.BlockSizeBytes, content.Length - offset));
            await PutBlockAsync(blockId, block, options?.Conditions?.LeaseId, cancellationToken).ConfigureAwait(false);
            blockIds.Add(blockId);
        }
        return await PutBlockListAsync(blockIds, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates the blob only if no blob of this name exists (If-None-Match: *); <see cref="BlobCreateResult.Created"/> says which happened.</summary>
    public async Task<BlobCreateResult> UploadIfNotExistsAsync(Stream content, CancellationToken cancellationToken = default)
    {
        try
        {
            var info = await UploadAsync(content, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken)
                .ConfigureAwait(false);
            return new BlobCreateResult(true, info);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412 && e.ErrorCode is "BlobAlreadyExists" or "ConditionNotMet")
        {
            return new BlobCreateResult(false, null);
        }
    }

    /// <summary>
    /// Starts a download and returns as soon as the headers arrive; read <see cref="BlobDownloadStreamingResult.Content"/> and dispose.
    /// If-None-Match matching gives <see cref="BlobDownloadStreamingResult.NotModified"/>; a failed If-Match throws with status 412.
    /// </summary>
    public async Task<BlobDownloadStreamingResult> DownloadStreamingAsync(BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        var message = _rest.CreateMessage(RequestMethod.Get, Uri);
        message.BufferResponse = false;
        StorageHeaders.Apply(message.Request, conditions);
        try
        {
            var response = await _rest.SendAsync(message, cancellationToken, 200, 304).ConfigureAwait(false);
            if (response.Status == 304)
            {
                response.Dispose();
                return new BlobDownloadStreamingResult(null, Stream.Null, null, notModified: true);
            }
            var stream = response.ContentStream ?? Stream.Null;
            return new BlobDownloadStreamingResult(response, stream, StorageHeaders.Properties(response), notModified: false);
        }
        catch
        {
            message.Dispose();
            throw;
        }
    }

    /// <summary>Downloads the whole blob into memory.</summary>
    public async Task<BinaryData> DownloadContentAsync(BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        using var result = await DownloadStreamingAsync(conditions, cancellationToken).ConfigureAwait(false);
        if (result.NotModified) throw new InvalidOperationException("The blob was not modified (If-None-Match matched); there is no content to return.");
        var length = checked((int)result.Details!.ContentLength);
        var bytes = GC.AllocateUninitializedArray<byte>(length);
        await result.Content.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        return new BinaryData(bytes);
    }

    /// <summary>Gets the blob's properties; throws <see cref="RequestFailedException"/> 404 (BlobNotFound) when it does not exist.</summary>
    public async Task<BlobProperties> GetPropertiesAsync(BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Head, Uri);
        StorageHeaders.Apply(message.Request, conditions);
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        return StorageHeaders.Properties(response);
    }

    /// <summary>True when the blob exists.</summary>
    public async Task<bool> ExistsAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Head, Uri);
        var response = await _rest.SendAsync(message, cancellationToken, 200, 404).ConfigureAwait(false);
        return response.Status == 200;
    }

    /// <summary>Deletes the blob; throws 404 when it does not exist, 412 when a condition fails.</summary>
    public async Task DeleteAsync(BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, Uri);
        StorageHeaders.Apply(message.Request, conditions);
        await _rest.SendAsync(message, cancellationToken, 202).ConfigureAwait(false);
    }

    /// <summary>Deletes the blob; returns false when it did not exist.</summary>
    public async Task<bool> DeleteIfExistsAsync(BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, Uri);
        StorageHeaders.Apply(message.Request, conditions);
        var response = await _rest.SendAsync(message, cancellationToken, 202, 404).ConfigureAwait(false);
        return response.Status == 202;
    }

    private async Task<BlobContentInfo> PutBlobAsync(RequestContent content, BlobUploadOptions? options, CancellationToken cancellationToken)
    {
        using var message = _rest.CreateMessage(RequestMethod.Put, Uri);
        message.Request.Headers.SetValue("x-ms-blob-type", "BlockBlob");
        if (options?.ContentType is { } contentType) message.Request.Headers.SetValue("x-ms-blob-content-type", contentType);
        StorageHeaders.Apply(message.Request, options?.Conditions);
        message.Request.Content = content;
        var response = await _rest.SendAsync(message, cancellationToken, 201).ConfigureAwait(false);
        return StorageHeaders.ContentInfo(response);
    }

    private async Task PutBlockAsync(string blockId, ReadOnlyMemory<byte> block, string? leaseId, CancellationToken cancellationToken)
    {
        using var message = _rest.CreateMessage(RequestMethod.Put, Uri, ("comp", "block"), ("blockid", blockId));
        if (leaseId is not null) message.Request.Headers.SetValue("x-ms-lease-id", leaseId);
        message.Request.Content = RequestContent.Create(block);
        await _rest.SendAsync(message, cancellationToken, 201).ConfigureAwait(false);
    }

    private async Task<BlobContentInfo> PutBlockListAsync(List<string> blockIds, BlobUploadOptions? options, CancellationToken cancellationToken)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        foreach (var id in blockIds) xml.Append("<Latest>").Append(id).Append("</Latest>");
        xml.Append("</BlockList>");
        using var message = _rest.CreateMessage(RequestMethod.Put, Uri, ("comp", "blocklist"));
        if (options?.ContentType is { } contentType) message.Request.Headers.SetValue("x-ms-blob-content-type", contentType);
        message.Request.Headers.SetValue("Content-Type", "application/xml");
        StorageHeaders.Apply(message.Request, options?.Conditions);
        message.Request.Content = RequestContent.Create(Encoding.UTF8.GetBytes(xml.ToString()));
        var response = await _rest.SendAsync(message, cancellationToken, 201).ConfigureAwait(false);
        return StorageHeaders.ContentInfo(response);
    }

    private static async ValueTask<int> FillAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (read == 0) break;
            total += read;
        }
        return total;
    }
}
