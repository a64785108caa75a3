using Azure;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Drain-mode settings (the same semantics as host.json's queue extension).</summary>
public sealed record DrainOptions(TimeSpan VisibilityTimeout, int MaxDequeueCount, bool ExitWhenEmpty, TimeSpan MaxPollDelay);

/// <summary>
/// Drain mode: pulls the `features` queue itself with the Functions host's semantics, for local runs on Azurite and
/// Container Apps jobs. One message at a time; its visibility is renewed while it is worked on; a message delivered
/// more than MaxDequeueCount times, or rejected, goes to `features-poison` with the reason; a deferred one is put back
/// (copy first, then delete) so waiting for another instance never counts as a failure.
/// </summary>
public sealed partial class QueueDrainService(
    QueueClient features, IMessageProcessor processor, DrainOptions options, IHostApplicationLifetime lifetime, ILogger<QueueDrainService> logger)
    : BackgroundService
{
    /// <summary>Messages handled so far (any outcome).</summary>
    public long Handled { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await features.CreateIfNotExistsAsync(stoppingToken).ConfigureAwait(false);
        LogStarted(logger, features.Name, options.MaxDequeueCount, (int)options.VisibilityTimeout.TotalSeconds);
        var delay = TimeSpan.FromMilliseconds(20);
        while (!stoppingToken.IsCancellationRequested)
        {
            IReadOnlyList<QueueMessage> received;
            try
            {
                received = await features.ReceiveMessagesAsync(1, options.VisibilityTimeout, stoppingToken).ConfigureAwait(false);
            }
            catch (RequestFailedException e)
            {
                LogStorageDown(logger, e.Status, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                LogStorageDown(logger, 0, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ConfigureAwait(false);
                continue;
            }
            if (received.Count == 0)
            {
                if (options.ExitWhenEmpty)
                {
                    LogEmpty(logger);
                    lifetime.StopApplication();
                    return;
                }
                await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.MaxPollDelay.Ticks));
                continue;
            }
            delay = TimeSpan.FromMilliseconds(20);
            await HandleAsync(received[0], stoppingToken).ConfigureAwait(false);
            Handled++;
        }
    }

    private async Task HandleAsync(QueueMessage message, CancellationToken stoppingToken)
    {
        if (message.DequeueCount > options.MaxDequeueCount)
        {
            await PoisonAsync(message, message.PopReceipt,
                $"delivered {message.DequeueCount} times (max {options.MaxDequeueCount}); every attempt failed, see the function's log", stoppingToken).ConfigureAwait(false);
            return;
        }
        using var keepAlive = new VisibilityKeeper(features, message, options.VisibilityTimeout);
        MessageOutcome outcome;
        try
        {
            outcome = await processor.ProcessAsync(message.MessageText, message.DequeueCount, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return; // Shutting down: the message becomes visible again and is retried.
        }
#pragma warning disable CA1031 // A failing message must never stop the drain loop (invariant 2); it is retried, then poisoned.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogFailed(logger, message.MessageId, message.DequeueCount, e.GetType().Name, e.Message);
            await keepAlive.StopAsync().ConfigureAwait(false);
            return;
        }
        var receipt = await keepAlive.StopAsync().ConfigureAwait(false);
        if (receipt is null)
        {
            LogFailed(logger, message.MessageId, message.DequeueCount, "VisibilityLost", "could not keep the message invisible; it will be redelivered and answered from the record");
            return;
        }
        switch (outcome.Kind)
        {
            case OutcomeKind.Completed:
                await features.DeleteMessageAsync(message.MessageId, receipt, stoppingToken).ConfigureAwait(false);
                break;
            case OutcomeKind.Rejected:
                await PoisonAsync(message, receipt, outcome.Detail, stoppingToken).ConfigureAwait(false);
                break;
            case OutcomeKind.Deferred:
                LogDeferred(logger, message.MessageId, outcome.Detail);
                await features.SendMessageAsync(message.MessageText, TimeSpan.FromSeconds(2), cancellationToken: stoppingToken).ConfigureAwait(false);
                await features.DeleteMessageAsync(message.MessageId, receipt, stoppingToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task PoisonAsync(QueueMessage message, string popReceipt, string reason, CancellationToken ct)
    {
        LogPoisoned(logger, message.MessageId, reason);
        await processor.PoisonAsync(message.MessageText, message.DequeueCount, reason, ct).ConfigureAwait(false);
        await features.DeleteMessageAsync(message.MessageId, popReceipt, ct).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: pulling queue '{Queue}' (maxDequeueCount {Max}, visibility {Seconds} s)")]
    private static partial void LogStarted(ILogger logger, string queue, int max, int seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: queue empty, exiting (--exit-when-empty)")]
    private static partial void LogEmpty(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: storage unavailable (status {Status}: {Reason}); retrying in 2 s")]
    private static partial void LogStorageDown(ILogger logger, int status, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: message {Id} failed on delivery {Count} ({Type}: {Reason}); it will be retried")]
    private static partial void LogFailed(ILogger logger, string id, long count, string type, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: message {Id} poisoned: {Reason}")]
    private static partial void LogPoisoned(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: message {Id} deferred: {Reason}")]
    private static partial void LogDeferred(ILogger logger, string id, string reason);
}
