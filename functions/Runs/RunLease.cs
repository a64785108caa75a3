using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>
/// The single-writer guarantee of a run (invariant 5): a 60-second blob lease on `runs/&lt;run&gt;/lease`, renewed every
/// 15 seconds while this instance works on the run. Losing it (renewal fails) marks the lease lost; the owner drops the run it holds.
/// </summary>
public sealed partial class RunLease : IAsyncDisposable
{
    public static readonly TimeSpan Duration = TimeSpan.FromSeconds(60);

    /// <summary>Renewal interval: a quarter of the lease, so two failed renewals still leave time for a third.</summary>
    public static readonly TimeSpan DefaultRenewEvery = TimeSpan.FromSeconds(15);

    private readonly TimeSpan renewEvery;

    private readonly BlobLeaseClient lease;
    private readonly ILogger logger;
    private readonly CancellationTokenSource stop = new();
    private readonly Task renewal;
    private volatile bool lost;

    private RunLease(string run, BlobLeaseClient lease, TimeSpan renewEvery, ILogger logger)
    {
        Run = run;
        this.renewEvery = renewEvery;
        this.lease = lease;
        this.logger = logger;
        renewal = Task.Run(RenewLoopAsync);
    }

    public string Run { get; }

    public string LeaseId => lease.LeaseId;

    /// <summary>False once a renewal failed: another instance may own the run now.</summary>
    public bool IsHeld => !lost;

    /// <summary>
    /// Tries to take the run's lease; null when another instance holds it. The lease id is derived from
    /// <paramref name="instanceId"/> and the run, so an instance restarted under the same id takes its own lease back at once
    /// instead of waiting for it to expire.
    /// </summary>
    public static async Task<RunLease?> TryAcquireAsync(BlobContainerClient runs, string run, string instanceId, TimeSpan renewEvery, ILogger logger,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var blob = runs.GetBlobClient(RunLayout.Lease(run));
        await blob.UploadIfNotExistsAsync(BinaryData.Empty, ct).ConfigureAwait(false);
        var client = blob.GetBlobLeaseClient(LeaseIdFor(instanceId, run));
        try
        {
            await client.AcquireAsync(Duration, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return null;
        }
        try
        {
            // Who holds the run, for the operator's `run status` (RunStatusReader.InstanceMetadata); informational only.
            await blob.SetMetadataAsync(new Dictionary<string, string> { ["instance"] = instanceId }, new BlobRequestConditions { LeaseId = client.LeaseId },
                ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e)
        {
            LogInstanceNotRecorded(logger, run, e.Message);
        }
        return new RunLease(run, client, renewEvery, logger);
    }

    /// <summary>A GUID that depends only on (instance, run).</summary>
    public static string LeaseIdFor(string instanceId, string run)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(instanceId + "\n" + run));
        return new Guid(hash.AsSpan(0, 16)).ToString();
    }

    /// <summary>
    /// Renews now and fails with <see cref="ConcurrentWriterException"/> when the run is no longer this instance's, so
    /// nothing is recorded by an instance that lost its lease since the last renewal.
    /// </summary>
    public async Task ConfirmAsync(CancellationToken ct)
    {
        if (lost) throw new ConcurrentWriterException($"run '{Run}': lease lost");
        try
        {
            await lease.RenewAsync(cancellationToken: ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            lost = true;
            LogLost(logger, Run, e.Message);
            throw new ConcurrentWriterException($"run '{Run}': lease lost "
                + $"({e.ErrorCode ?? e.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)})", e);
        }
    }

    private async Task RenewLoopAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(renewEvery, stop.Token).ConfigureAwait(false);
                await lease.RenewAsync(cancellationToken: stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                lost = true;
                LogLost(logger, Run, e.Message);
                return;
            }
            catch (Exception e) when (e is RequestFailedException || StorageOutage.IsTransient(e, stop.Token))
            {
                // Transient (an outage ends the SDK's retries in an AggregateException): the lease has 60 s; the next
                // attempt may succeed, and a lease lost meanwhile is found by ConfirmAsync and the ETag conditions.
                LogRenewFailed(logger, Run, StorageOutage.Describe(e));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        await renewal.ConfigureAwait(false);
        stop.Dispose();
        if (!lost)
        {
            try
            {
                await lease.ReleaseAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RequestFailedException || StorageOutage.IsTransient(e))
            {
                // Unreleased, the lease expires by itself within 60 s.
                LogRenewFailed(logger, Run, "release: " + StorageOutage.Describe(e));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: lease lost ({Reason}); dropping the run")]
    private static partial void LogLost(ILogger logger, string run, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: lease taken, but the holding instance was not recorded for `run status` ({Reason})")]
    private static partial void LogInstanceNotRecorded(ILogger logger, string run, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: lease renewal failed ({Reason}); retrying")]
    private static partial void LogRenewFailed(ILogger logger, string run, string reason);
}
