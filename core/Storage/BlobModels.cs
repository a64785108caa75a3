using Azure;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Conditions on a blob request. Outcomes are consistent across the clients:
/// a failed If-Match (or a lease mismatch) throws <see cref="RequestFailedException"/> with status 412 (error code ConditionNotMet,
/// or a lease error code); a download whose If-None-Match matches returns <see cref="BlobDownloadStreamingResult.NotModified"/>;
/// create-only uploads go through <see cref="BlobClient.UploadIfNotExistsAsync(Stream, CancellationToken)"/>, which returns whether the blob was created.
/// </summary>
public class BlobRequestConditions : Azure.RequestConditions
{
    /// <summary>The lease id the request must hold (x-ms-lease-id).</summary>
    public string? LeaseId { get; set; }
}

/// <summary>Options of an upload.</summary>
public sealed class BlobUploadOptions
{
    public BlobRequestConditions? Conditions { get; set; }

    public string? ContentType { get; set; }
}

/// <summary>The state of a blob after a write.</summary>
public sealed record BlobContentInfo(ETag ETag, DateTimeOffset LastModified);

/// <summary>Result of a create-only upload: <see cref="Created"/> is false when the blob already existed (nothing was written).</summary>
public sealed record BlobCreateResult(bool Created, BlobContentInfo? Info);

/// <summary>Properties of a blob (Get Blob Properties, or the headers of a download).</summary>
public sealed record BlobProperties(ETag ETag, DateTimeOffset LastModified, long ContentLength, string? ContentType, string? LeaseState, string? LeaseStatus);

/// <summary>One entry of a blob listing.</summary>
public sealed record BlobItem(string Name, ETag ETag, long ContentLength, DateTimeOffset LastModified);

/// <summary>A lease after acquire, renew, release or change.</summary>
public sealed record BlobLease(ETag ETag, DateTimeOffset LastModified, string? LeaseId, int? LeaseTimeSeconds = null);

/// <summary>
/// A streamed download. Dispose it to return the connection. When the If-None-Match condition matched,
/// <see cref="NotModified"/> is true, <see cref="Content"/> is empty and <see cref="Details"/> is null.
/// </summary>
public sealed class BlobDownloadStreamingResult : IDisposable
{
    private readonly Response? _response;

    internal BlobDownloadStreamingResult(Response? response, Stream content, BlobProperties? details, bool notModified)
    {
        _response = response;
        Content = content;
        Details = details;
        NotModified = notModified;
    }

    public bool NotModified { get; }

    /// <summary>The body as it arrives from the network (not retried mid-stream).</summary>
    public Stream Content { get; }

    public BlobProperties? Details { get; }

    public void Dispose()
    {
        Content.Dispose();
        _response?.Dispose();
    }
}

/// <summary>A key Microsoft Entra ID issues for signing user delegation SAS tokens (Get User Delegation Key).</summary>
public sealed record UserDelegationKey(
    string SignedObjectId, string SignedTenantId, DateTimeOffset SignedStartsOn, DateTimeOffset SignedExpiresOn,
    string SignedService, string SignedVersion, string Value);
