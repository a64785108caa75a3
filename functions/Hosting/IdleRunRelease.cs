using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Checkpoints and releases idle runs, and every run at shutdown, so no applied step waits on a crash to be replayed.</summary>
internal sealed partial class IdleRunRelease(LeasedRuns runs, ILogger<IdleRunRelease> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken).ConfigureAwait(false);
                try
                {
                    await runs.ReleaseIdleAsync(all: false, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (StorageOutage.IsTransient(e, stoppingToken))
                {
                    // A failed background service stops the host: an outage only postpones the checkpoint (the journal has every step).
                    LogPostponed(logger, StorageOutage.Describe(e));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await runs.ReleaseIdleAsync(all: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StorageOutage.IsTransient(e, cancellationToken))
        {
            LogPostponed(logger, StorageOutage.Describe(e));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "checkpoint of idle runs postponed: storage unavailable ({Reason}); the journal holds every applied "
        + "step")]
    private static partial void LogPostponed(ILogger logger, string reason);
}
