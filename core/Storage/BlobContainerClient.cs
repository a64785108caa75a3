using System.Globalization;
using System.Xml.Linq;
using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>One blob container: create, delete, list, and clients for its blobs. Thread-safe.</summary>
public sealed class BlobContainerClient
{
    private readonly StorageRestClient _rest;

    internal BlobContainerClient(Uri uri, StorageRestClient rest, string name, string accountName)
    {
        Uri = uri;
        _rest = rest;
        Name = name;
        AccountName = accountName;
    }

    /// <summary>A client for a container from its URI with a SAS (e.g. one minted by <see cref="HospitalAccess"/>).</summary>
    public BlobContainerClient(Uri containerUri, AzureSasCredential sas, StorageClientOptions? options = null)
    {
        options ??= new StorageClientOptions();
        Uri = containerUri;
        _rest = new StorageRestClient(StorageRestClient.BuildPipeline(options, new SasPolicy(sas), null), options);
        var segments = containerUri.AbsolutePath.Trim('/').Split('/');
        Name = segments[^1];
        AccountName = segments.Length > 1 ? segments[0] : containerUri.Host.Split('.')[0];
    }

    public Uri Uri { get; }

    public string Name { get; }

    public string AccountName { get; }

    internal StorageRestClient Rest => _rest;

    public BlobClient GetBlobClient(string blobName) => new(this, blobName);

    /// <summary>Creates the container; returns false when it already existed.</summary>
    public async Task<bool> CreateIfNotExistsAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Put, Uri, ("restype", "container"));
        await _rest.Pipeline.SendAsync(message, cancellationToken).ConfigureAwait(false);
        var response = message.Response;
        if (response.Status == 201) return true;
        if (response.Status == 409 && StorageHeaders.Get(response, "x-ms-error-code") == "ContainerAlreadyExists") return false;
        throw await StorageErrorParser.CreateExceptionAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the container; returns false when it did not exist.</summary>
    public async Task<bool> DeleteIfExistsAsync(CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Delete, Uri, ("restype", "container"));
        var response = await _rest.SendAsync(message, cancellationToken, 202, 404).ConfigureAwait(false);
        return response.Status == 202;
    }

    /// <summary>Lists blobs whose names start with <paramref name="prefix"/>, in name order; page with <c>AsPages(continuationToken, pageSize)</c>.</summary>
    public AsyncPageable<BlobItem> GetBlobsAsync(string? prefix = null, CancellationToken cancellationToken = default) =>
        new StorageAsyncPageable<BlobItem>((marker, pageSize, ct) => ListPageAsync(prefix, marker, pageSize, ct), cancellationToken);

    private async Task<Page<BlobItem>> ListPageAsync(string? prefix, string? marker, int? pageSize, CancellationToken cancellationToken)
    {
        var message = _rest.CreateMessage(RequestMethod.Get, Uri,
            ("restype", "container"), ("comp", "list"), ("prefix", string.IsNullOrEmpty(prefix) ? null : prefix),
            ("marker", string.IsNullOrEmpty(marker) ? null : marker),
            ("maxresults", pageSize?.ToString(CultureInfo.InvariantCulture)));
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        var root = XDocument.Load(response.ContentStream!).Root!;
        var items = new List<BlobItem>();
        foreach (var blob in root.Element("Blobs")?.Elements("Blob") ?? [])
        {
            var props = blob.Element("Properties");
            items.Add(new BlobItem(
                blob.Element("Name")!.Value,
                new ETag(props?.Element("Etag")?.Value ?? string.Empty),
                long.Parse(props?.Element("Content-Length")?.Value ?? "0", CultureInfo.InvariantCulture),
                props?.Element("Last-Modified") is { } lm ? DateTimeOffset.Parse(lm.Value, CultureInfo.InvariantCulture) : default));
        }
        var next = root.Element("NextMarker")?.Value;
        return Page<BlobItem>.FromValues(items, string.IsNullOrEmpty(next) ? null : next, response);
    }
}
