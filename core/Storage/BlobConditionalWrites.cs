using System.Runtime.InteropServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Create-only and replace writes, spelled out once: the SDK's UploadAsync neither replaces (overwrite: false) nor creates exclusively by default.
/// </summary>
public static class BlobConditionalWrites
{
    private static readonly BlobRequestConditions OnlyIfAbsent = new() { IfNoneMatch = ETag.All };

    /// <summary>
    /// Writes the blob (with its metadata, if any) only if no blob of this name exists (If-None-Match: *); false when it
    /// existed (nothing was written).
    /// </summary>
    public static Task<bool> UploadIfNotExistsAsync(this BlobClient blob, BinaryData content, CancellationToken cancellationToken = default) =>
        UploadIfNotExistsAsync(blob, content, null, cancellationToken);

    /// <summary>As <see cref="UploadIfNotExistsAsync(BlobClient, BinaryData, CancellationToken)"/>, with the blob's metadata.</summary>
    public static async Task<bool> UploadIfNotExistsAsync(this BlobClient blob, BinaryData content, IDictionary<string, string>? metadata,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blob);
        try
        {
            await blob.UploadAsync(AsStream(content), new BlobUploadOptions { Conditions = OnlyIfAbsent, Metadata = metadata }, cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412 && e.ErrorCode is "BlobAlreadyExists" or "ConditionNotMet")
        {
            return false;
        }
    }

    /// <summary>Writes the blob, replacing any blob of this name (the SDK's UploadAsync would fail with 409 BlobAlreadyExists).</summary>
    public static async Task<BlobContentInfo> UploadReplacingAsync(this BlobClient blob, BinaryData content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return (await blob.UploadAsync(AsStream(content), overwrite: true, cancellationToken).ConfigureAwait(false)).Value;
    }

    // A MemoryStream over the bytes' array, not the SDK's BinaryData path: measured on Azurite (issue 33, item 5), a 4 MiB
    // frame in a slice of a larger pooled array (a sealed frame from SecureFrameCodec.SealPooled) uploaded 2.5-5 ms slower
    // through BinaryData than the same bytes as an exact array, and through a MemoryStream over the slice as fast as those.
    // Seekable either way, so the SDK's retries rewind it.
    private static Stream AsStream(BinaryData content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return MemoryMarshal.TryGetArray(content.ToMemory(), out var bytes)
            ? new MemoryStream(bytes.Array!, bytes.Offset, bytes.Count, writable: false)
            : content.ToStream();
    }
}
