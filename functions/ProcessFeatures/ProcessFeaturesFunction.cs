using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using QueueMessage = Azure.Storage.Queues.Models.QueueMessage;

namespace SplitFunctions.Functions.ProcessFeatures;

/// <summary>A run held by another instance did not come free in time: the invocation fails so the host delivers the message again later.</summary>
public sealed class RunBusyException(string message) : Exception(message);

/// <summary>
/// The queue-triggered function. Returning deletes the message (the host's contract); throwing makes the host deliver it
/// again after host.json's visibilityTimeout and, after maxDequeueCount failures, move it to `features-poison` unchanged.
/// A rejected message is poisoned here at once (it can never succeed, so it should not burn retries), and the last
/// failed delivery records its reason on `features-rejections` before the host moves it (docs/architecture.md).
/// </summary>
public sealed partial class ProcessFeaturesFunction(
    IMessageProcessor processor, PoisonQueue poison, StorageConnection storage, IOptions<ServerOptions> options, ILogger<ProcessFeaturesFunction> logger)
{
    public const string Name = "ProcessFeatures";

    /// <summary>How long an invocation waits for a run held by another instance before failing (the lease lasts 60 s).</summary>
    public static readonly TimeSpan DefaultLeaseWait = TimeSpan.FromSeconds(45);

    /// <inheritdoc cref="DefaultLeaseWait"/>
    public TimeSpan LeaseWait { get; init; } = DefaultLeaseWait;

    /// <summary>How often the run is tried again while it is held elsewhere.</summary>
    public static readonly TimeSpan LeasePoll = TimeSpan.FromSeconds(1);

    [Function(Name)]
    public async Task RunAsync([QueueTrigger(StorageNames.FeaturesQueue, Connection = FunctionSettings.Storage)] QueueMessage message,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        try
        {
            var outcome = await ProcessThroughOutagesAsync(message, cancellationToken).ConfigureAwait(false);
            LogHandled(logger, message.MessageId, message.DequeueCount, outcome.Kind, outcome.Detail);
            if (outcome.Kind == OutcomeKind.Continue)
            {
                // The rest as a fresh delivery (the host deletes this one when the invocation returns): kills during
                // a long temporal run count per epoch, not against one message.
                await storage.GetQueueClient(StorageNames.FeaturesQueue).SendMessageAsync(message.MessageText, cancellationToken).ConfigureAwait(false);
            }
            else if (outcome.Kind == OutcomeKind.Rejected)
            {
                LogRejected(logger, message.MessageId, outcome.Detail);
                await poison.PoisonAsync(message.MessageId, QueueText.Encode(message.MessageText), message.MessageText, message.DequeueCount, outcome.Detail,
                    PoisonHosts.Worker, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            LogFailed(logger, message.MessageId, message.DequeueCount, e.GetType().Name, Printable.Escape(e.Message));
            if (message.DequeueCount >= options.Value.MaxDequeueCount) await RecordLastFailureAsync(message, e, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    // A storage outage is not the message's fault: rather than fail the invocation (which burns one of maxDequeueCount
    // deliveries, so a long outage would poison good messages), wait until storage answers and handle the message again
    // (the host keeps it invisible meanwhile; functionTimeout bounds the wait). An applied step is answered from its record.
    private async Task<MessageOutcome> ProcessThroughOutagesAsync(QueueMessage message, CancellationToken ct)
    {
        var probe = storage.GetQueueClient(StorageNames.FeaturesQueue);
        while (true)
        {
            try
            {
                return await ProcessUntilFreeAsync(message, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (StorageOutage.IsTransient(e, ct))
            {
                LogStorageDown(logger, message.MessageId, StorageOutage.Describe(e));
                var away = await StorageOutage.WaitUntilReachableAsync(c => probe.GetPropertiesAsync(c), TimeSpan.FromSeconds(30),
                    (attempt, delay, cause) => LogStillDown(logger, attempt, (int)delay.TotalSeconds, cause), ct).ConfigureAwait(false);
                LogStorageBack(logger, (int)away.TotalSeconds, message.MessageId);
            }
        }
    }

    private async Task<MessageOutcome> ProcessUntilFreeAsync(QueueMessage message, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + LeaseWait;
        while (true)
        {
            var outcome = await processor.ProcessAsync(message.MessageText, message.DequeueCount, ct).ConfigureAwait(false);
            if (outcome.Kind != OutcomeKind.Deferred) return outcome;
            if (DateTimeOffset.UtcNow >= deadline) throw new RunBusyException($"deferred for {LeaseWait.TotalSeconds:F0} s: {outcome.Detail}");
            await Task.Delay(LeasePoll, ct).ConfigureAwait(false);
        }
    }

    private async Task RecordLastFailureAsync(QueueMessage message, Exception failure, CancellationToken ct)
    {
        var reason = $"delivery {message.DequeueCount} failed and was the last allowed (maxDequeueCount {options.Value.MaxDequeueCount}): "
            + $"{failure.GetType().Name}: {failure.Message}";
        try
        {
            await poison.RecordAsync(message.MessageId, message.MessageText, message.DequeueCount, reason, PoisonHosts.Worker, ct).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The original failure is what the host must see; a failed record is only logged.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRecordFailed(logger, message.MessageId, Printable.Escape(e.Message));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "message {Id} (delivery {Count}): {Kind}: {Detail}")]
    private static partial void LogHandled(ILogger logger, string id, long count, OutcomeKind kind, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "message {Id}: storage unavailable ({Reason}); waiting for it, the delivery is kept")]
    private static partial void LogStorageDown(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "storage still unavailable (attempt {Attempt}: {Reason}); next look in {Seconds} s")]
    private static partial void LogStillDown(ILogger logger, int attempt, int seconds, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "storage reachable again after {Seconds} s; handling message {Id} again")]
    private static partial void LogStorageBack(ILogger logger, int seconds, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "message {Id} rejected and poisoned: {Reason}")]
    private static partial void LogRejected(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "message {Id} failed on delivery {Count} ({Type}: {Reason}); the host will retry it")]
    private static partial void LogFailed(ILogger logger, string id, long count, string type, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "message {Id}: could not record why it is poisoned ({Reason})")]
    private static partial void LogRecordFailed(ILogger logger, string id, string reason);
}
