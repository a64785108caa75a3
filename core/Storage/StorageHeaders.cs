using System.Globalization;
using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>Reading and writing the common headers.</summary>
internal static class StorageHeaders
{
    public static void Apply(Request request, BlobRequestConditions? conditions)
    {
        if (conditions is null) return;
        if (conditions.IfMatch is { } ifMatch) request.Headers.SetValue("If-Match", ifMatch.ToString("H"));
        if (conditions.IfNoneMatch is { } ifNoneMatch) request.Headers.SetValue("If-None-Match", ifNoneMatch.ToString("H"));
        if (conditions.IfModifiedSince is { } ims) request.Headers.SetValue("If-Modified-Since", ims.ToString("r", CultureInfo.InvariantCulture));
        if (conditions.IfUnmodifiedSince is { } ius) request.Headers.SetValue("If-Unmodified-Since", ius.ToString("r", CultureInfo.InvariantCulture));
        if (conditions.LeaseId is { } leaseId) request.Headers.SetValue("x-ms-lease-id", leaseId);
    }

    public static string? Get(Response response, string name) => response.Headers.TryGetValue(name, out var v) ? v : null;

    public static ETag GetETag(Response response) => response.Headers.ETag ?? default;

    public static DateTimeOffset GetLastModified(Response response) =>
        Get(response, "Last-Modified") is { } s ? DateTimeOffset.Parse(s, CultureInfo.InvariantCulture) : default;

    public static BlobContentInfo ContentInfo(Response response) => new(GetETag(response), GetLastModified(response));

    public static BlobProperties Properties(Response response) => new(
        GetETag(response),
        GetLastModified(response),
        response.Headers.ContentLength ?? 0,
        response.Headers.ContentType,
        Get(response, "x-ms-lease-state"),
        Get(response, "x-ms-lease-status"));

    public static string Seconds(TimeSpan value) => ((long)value.TotalSeconds).ToString(CultureInfo.InvariantCulture);
}
