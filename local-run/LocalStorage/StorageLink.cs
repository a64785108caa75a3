using Azure.Storage;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.LocalStorage;

/// <summary>
/// One party's way to Azurite through a proxy per service (blob, queue), with the link's shape: a hospital reaching
/// storage over the internet (tens of milliseconds each way), or the function in the storage account's region (about
/// 1 ms round trip). Its connection string and <see cref="Connection"/> name the proxies; <see cref="Exchanges"/>
/// counts the storage round trips made through it.
/// </summary>
public sealed class StorageLink : IAsyncDisposable
{
    private readonly TcpOutageProxy blob;
    private readonly TcpOutageProxy queue;

    public StorageLink(AzuriteProcess azurite, LinkShape shape)
    {
        ArgumentNullException.ThrowIfNull(azurite);
        blob = new TcpOutageProxy(azurite.BlobPort, shape);
        queue = new TcpOutageProxy(azurite.QueuePort, shape);
        var account = StorageConnection.DevelopmentAccountName;
        var blobUri = new Uri($"http://127.0.0.1:{blob.Port}/{account}");
        var queueUri = new Uri($"http://127.0.0.1:{queue.Port}/{account}");
        Connection = StorageConnection.FromSharedKey(new StorageSharedKeyCredential(account, StorageConnection.DevelopmentAccountKey), blobUri, queueUri);
        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={StorageConnection.DevelopmentAccountKey};"
            + $"BlobEndpoint={blobUri};QueueEndpoint={queueUri};";
    }

    public StorageConnection Connection { get; }

    public string ConnectionString { get; }

    /// <summary>The delay (and cap) of both services' links; a change applies at once, on open connections too.</summary>
    public LinkShape Shape
    {
        get => blob.Shape;
        set
        {
            blob.Shape = value;
            queue.Shape = value;
        }
    }

    /// <summary>Storage round trips through this link so far (blob and queue requests, each one request-response turn).</summary>
    public long Exchanges => blob.Exchanges + queue.Exchanges;

    public async ValueTask DisposeAsync()
    {
        await blob.DisposeAsync().ConfigureAwait(false);
        await queue.DisposeAsync().ConfigureAwait(false);
    }
}
