using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>Leases on one blob: acquire, renew, release, change, break. A failed lease operation throws <see cref="RequestFailedException"/> (409 LeaseAlreadyPresent, 409 LeaseIdMismatchWithLeaseOperation, ...).</summary>
public sealed class BlobLeaseClient
{
    /// <summary>Pass as the duration for a lease that never expires.</summary>
    public static readonly TimeSpan InfiniteLeaseDuration = TimeSpan.FromSeconds(-1);

    private readonly BlobClient _blob;
    private readonly StorageRestClient _rest;

    internal BlobLeaseClient(BlobClient blob, StorageRestClient rest, string? leaseId)
    {
        _blob = blob;
        _rest = rest;
        LeaseId = leaseId ?? Guid.NewGuid().ToString();
    }

    /// <summary>The lease id this client proposes and holds.</summary>
    public string LeaseId { get; private set; }

    /// <summary>Acquires the lease for 15-60 seconds or <see cref="InfiniteLeaseDuration"/>.</summary>
    public async Task<BlobLease> AcquireAsync(TimeSpan duration, BlobRequestConditions? conditions = null, CancellationToken cancellationToken = default)
    {
        if (duration != InfiniteLeaseDuration && (duration < TimeSpan.FromSeconds(15) || duration > TimeSpan.FromSeconds(60)))
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "A blob lease lasts 15 to 60 seconds, or is infinite.");
        }
        using var message = Create("acquire", conditions);
        message.Request.Headers.SetValue("x-ms-lease-duration", StorageHeaders.Seconds(duration));
        message.Request.Headers.SetValue("x-ms-proposed-lease-id", LeaseId);
        var response = await _rest.SendAsync(message, cancellationToken, 201).ConfigureAwait(false);
        return Lease(response);
    }

    public async Task<BlobLease> RenewAsync(CancellationToken cancellationToken = default)
    {
        using var message = Create("renew", null);
        message.Request.Headers.SetValue("x-ms-lease-id", LeaseId);
        return Lease(await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false));
    }

    public async Task<BlobLease> ReleaseAsync(CancellationToken cancellationToken = default)
    {
        using var message = Create("release", null);
        message.Request.Headers.SetValue("x-ms-lease-id", LeaseId);
        return Lease(await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false));
    }

    public async Task<BlobLease> ChangeAsync(string proposedId, CancellationToken cancellationToken = default)
    {
        using var message = Create("change", null);
        message.Request.Headers.SetValue("x-ms-lease-id", LeaseId);
        message.Request.Headers.SetValue("x-ms-proposed-lease-id", proposedId);
        var lease = Lease(await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false));
        LeaseId = proposedId;
        return lease;
    }

    /// <summary>Breaks the lease (whoever holds it); <see cref="BlobLease.LeaseTimeSeconds"/> says how long until it is free.</summary>
    public async Task<BlobLease> BreakAsync(TimeSpan? breakPeriod = null, CancellationToken cancellationToken = default)
    {
        using var message = Create("break", null);
        if (breakPeriod is { } period) message.Request.Headers.SetValue("x-ms-lease-break-period", StorageHeaders.Seconds(period));
        var response = await _rest.SendAsync(message, cancellationToken, 202).ConfigureAwait(false);
        var time = StorageHeaders.Get(response, "x-ms-lease-time") is { } t ? int.Parse(t, System.Globalization.CultureInfo.InvariantCulture) : (int?)null;
        return new BlobLease(StorageHeaders.GetETag(response), StorageHeaders.GetLastModified(response), null, time);
    }

    private HttpMessage Create(string action, BlobRequestConditions? conditions)
    {
        var message = _rest.CreateMessage(RequestMethod.Put, _blob.Uri, ("comp", "lease"));
        message.Request.Headers.SetValue("x-ms-lease-action", action);
        StorageHeaders.Apply(message.Request, conditions);
        return message;
    }

    private static BlobLease Lease(Response response) =>
        new(StorageHeaders.GetETag(response), StorageHeaders.GetLastModified(response), StorageHeaders.Get(response, "x-ms-lease-id"));
}
