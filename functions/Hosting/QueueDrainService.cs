using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Drain-mode settings (the same semantics as host.json's queue extension).</summary>
public sealed record DrainOptions(TimeSpan VisibilityTimeout, int MaxDequeueCount, bool ExitWhenEmpty, TimeSpan MaxPollDelay)
{
    /// <summary>
    /// While one message is worked on, receive the next one and let the processor download and open its blob, so the
    /// server computes instead of idling on storage between steps. Messages are still handled (and deleted) one at a time.
    /// </summary>
    public bool Prefetch { get; init; } = true;

    /// <summary>
    /// Begin the next message once the current one is applied in memory, while its commit (sealed reply blob, journal
    /// entry, reply) and deletion finish: the server computes instead of waiting on storage. Off: one message at a time
    /// from receipt to deletion.
    /// </summary>
    public bool OverlapCommits { get; init; } = true;
}

/// <summary>
/// Drain mode: pulls the `features` queue itself with the Functions host's semantics, for local runs on Azurite and
/// Container Apps jobs. One message at a time; its visibility is renewed while it is worked on; a rejected message, or
/// one whose MaxDequeueCount-th delivery fails, is poisoned (<see cref="PoisonQueue"/>: the message unchanged on
/// `features-poison`, the reason on `features-rejections`); a deferred one is put back
/// (copy first, then delete) so waiting for another instance never counts as a failure. With
/// <see cref="DrainOptions.Prefetch"/> the next message is received while the current one is handled and its blob is read
/// ahead (<see cref="IMessageProcessor.Prefetch"/>); its visibility is kept from the moment it is received, and it is
/// handled only after the current message is finished, so deletion still follows durability message by message.
/// </summary>
public sealed partial class QueueDrainService(
    StorageConnection storage, IMessageProcessor processor, PoisonQueue poison, DrainOptions options, IHostApplicationLifetime lifetime,
        ILogger<QueueDrainService> logger)
    : BackgroundService
{
    // Raw: anyone with add rights may put anything on `features`; the text is decoded here (QueueText), so a message that
    // is not Base64 is poisoned with that reason instead of failing every receive (the SDK's decoder throws on it).
    private readonly QueueClient features = storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());

    /// <summary>Longest wait between two looks at storage during an outage.</summary>
    public static readonly TimeSpan MaxOutageDelay = TimeSpan.FromSeconds(30);

    /// <summary>Messages handled so far (any outcome).</summary>
    public long Handled => Interlocked.Read(ref handled);

    private long handled;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await RideOutAsync("create the features queue", ct => features.CreateIfNotExistsAsync(cancellationToken: ct), stoppingToken).ConfigureAwait(false);
        LogStarted(logger, features.Name, options.MaxDequeueCount, (int)options.VisibilityTimeout.TotalSeconds, options.Prefetch ? "on" : "off",
            options.OverlapCommits ? "on" : "off");
        // The first look after an empty receive comes after 20 ms, or sooner when MaxPollDelay is shorter.
        var firstDelay = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMilliseconds(20).Ticks, options.MaxPollDelay.Ticks));
        var delay = firstDelay;
        Received? next = null;
        // The message before the current one, still committing (journal, reply) and then deleted; at most one such.
        var finishing = Task.CompletedTask;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Received current;
                if (next is not null)
                {
                    current = next;
                    next = null;
                }
                else
                {
                    QueueMessage[] received;
                    try
                    {
                        received = (await features.ReceiveMessagesAsync(1, options.VisibilityTimeout, stoppingToken).ConfigureAwait(false)).Value;
                    }
                    catch (Exception e) when (StorageOutage.IsTransient(e, stoppingToken))
                    {
                        // The SDK's retries are spent (an AggregateException): wait for storage as long as it takes.
                        LogStorageDown(logger, "receive", StorageOutage.Describe(e));
                        await WaitForStorageAsync(stoppingToken).ConfigureAwait(false);
                        continue;
                    }
                    if (received.Length == 0)
                    {
                        if (options.ExitWhenEmpty)
                        {
                            await finishing.ConfigureAwait(false);
                            LogEmpty(logger);
                            lifetime.StopApplication();
                            return;
                        }
                        await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
                        delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 3 / 2, options.MaxPollDelay.Ticks));
                        continue;
                    }
                    current = new Received(received[0], null);
                }
                delay = firstDelay;
                using var handledAhead = new CancellationTokenSource();
                var prefetch = options.Prefetch ? ReceiveAheadAsync(handledAhead.Token, stoppingToken) : Task.FromResult<Received?>(null);
                var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var handling = HandleReportingAsync(current, applied, stoppingToken);
                try
                {
                    // The next message may begin once this one's effect is applied: its commit (journal, reply) and deletion
                    // overlap the next step's compute. It is still deleted only after its own outcome is durable.
                    await (options.OverlapCommits ? Task.WhenAny(applied.Task, handling) : handling).ConfigureAwait(false);
                    // At most two messages in flight: the one before must be finished before a third begins.
                    await finishing.ConfigureAwait(false);
                    finishing = handling;
                }
                finally
                {
                    await handledAhead.CancelAsync().ConfigureAwait(false);
                    next = await prefetch.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            try
            {
                await finishing.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Shutting down: a message cut short becomes visible again and is answered from its record.
            }
            // Shutting down with a message received ahead: stop renewing it, so it becomes visible again and is redelivered.
            if (next?.Keeper is { } keeper)
            {
                await keeper.StopAsync().ConfigureAwait(false);
                keeper.Dispose();
            }
        }
    }

    // One message from receipt to deletion, with the loop's handling of what it throws; `applied` is set once the
    // processor has applied it in memory (or it is finished), which lets the loop begin the next message.
    private async Task HandleReportingAsync(Received current, TaskCompletionSource applied, CancellationToken stoppingToken)
    {
        try
        {
            await HandleAsync(current.Message, current.Keeper, applied, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StorageOutage.IsTransient(e, stoppingToken))
        {
            // Deleting, poisoning or re-queueing it failed: it becomes visible again and is answered from the record.
            LogStorageDown(logger, $"finish message {current.Message.MessageId}", StorageOutage.Describe(e));
            await WaitForStorageAsync(stoppingToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Nothing one message does may stop the drain loop (invariant 2): log it, it is redelivered.
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
#pragma warning restore CA1031
        {
            LogUnexpected(logger, current.Message.MessageId, e.GetType().Name, e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            applied.TrySetResult();
        }
        Interlocked.Increment(ref handled);
    }

    /// <summary>A received message and, when it was received ahead of its turn, the keeper already renewing its visibility.</summary>
    private sealed record Received(QueueMessage Message, VisibilityKeeper? Keeper);

    // Polls for the next message until one arrives or the current one is handled; starts reading its blob at once.
    private async Task<Received?> ReceiveAheadAsync(CancellationToken handled, CancellationToken stoppingToken)
    {
        await Task.Yield(); // Let the current message start; the receive runs beside its compute.
        var delay = PrefetchPoll;
        while (!stoppingToken.IsCancellationRequested)
        {
            var wasHandled = handled.IsCancellationRequested;
            QueueMessage[] received;
            try
            {
                received = (await features.ReceiveMessagesAsync(1, options.VisibilityTimeout, stoppingToken).ConfigureAwait(false)).Value;
            }
#pragma warning disable CA1031 // A read-ahead never fails the loop: the main loop receives (and reports storage trouble) as usual.
            catch (Exception)
#pragma warning restore CA1031
            {
                return null;
            }
            if (received.Length == 1)
            {
                var message = received[0];
                var keeper = new VisibilityKeeper(features, message, options.VisibilityTimeout);
                if (message.DequeueCount <= options.MaxDequeueCount
                    && QueueText.TryDecode(message.Body.ToString(), out _) is { } text) processor.Prefetch(text, stoppingToken);
                return new Received(message, keeper);
            }
            if (wasHandled) return null;
            try
            {
                await Task.Delay(delay, handled).ConfigureAwait(false);
                // Back off as the main loop does, so a long step (a temporal epoch) is not spent polling storage.
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(options.MaxPollDelay.Ticks, PrefetchPoll.Ticks)));
            }
            catch (OperationCanceledException)
            {
                // The current message is done: one last look, then back to the main loop.
            }
        }
        return null;
    }

    /// <summary>How often the queue is looked at for the next message while the current one is worked on.</summary>
    private static readonly TimeSpan PrefetchPoll = TimeSpan.FromMilliseconds(5);

    private async Task HandleAsync(QueueMessage message, VisibilityKeeper? receivedAhead, TaskCompletionSource applied, CancellationToken stoppingToken)
    {
        if (message.DequeueCount > options.MaxDequeueCount)
        {
            var popReceipt = message.PopReceipt;
            if (receivedAhead is not null)
            {
                var renewed = await receivedAhead.StopAsync().ConfigureAwait(false);
                receivedAhead.Dispose();
                if (renewed is null) return; // Lost to another consumer, which will poison it.
                popReceipt = renewed;
            }
            // Only a process that stopped during the last attempts gets here: a failed last attempt is poisoned at once, below.
            await PoisonAsync(message, popReceipt,
                $"delivered {message.DequeueCount} times (max {options.MaxDequeueCount}); the server stopped during the last attempts (crash or kill): see "
                    + $"the function's log", stoppingToken).ConfigureAwait(false);
            return;
        }
        using var keepAlive = receivedAhead ?? new VisibilityKeeper(features, message, options.VisibilityTimeout);
        if (QueueText.TryDecode(message.Body.ToString(), out var undecodable) is not { } text)
        {
            var held = await keepAlive.StopAsync().ConfigureAwait(false);
            if (held is not null) await PoisonAsync(message, held, undecodable, stoppingToken).ConfigureAwait(false);
            return;
        }
        MessageOutcome outcome;
        try
        {
            var pending = await processor.BeginAsync(text, message.DequeueCount, stoppingToken).ConfigureAwait(false);
            applied.TrySetResult();
            outcome = await pending.Outcome.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return; // Shutting down: the message becomes visible again and is retried.
        }
#pragma warning disable CA1031 // A failing message must never stop the drain loop (invariant 2); it is retried, then poisoned.
        catch (Exception e)
#pragma warning restore CA1031
        {
            var current = await keepAlive.StopAsync().ConfigureAwait(false);
            if (StorageOutage.IsTransient(e, stoppingToken))
            {
                // Storage went away during the step: not the message's fault, so it must not burn a delivery. Once storage
                // is back a fresh copy is queued (delivery count 1) and this one deleted; the step is answered from its
                // record if it was applied (invariant 4).
                LogStorageDown(logger, $"handle message {message.MessageId}", StorageOutage.Describe(e));
                await WaitForStorageAsync(stoppingToken).ConfigureAwait(false);
                await features.SendMessageAsync(message.Body.ToString(), cancellationToken: stoppingToken).ConfigureAwait(false);
                if (current is not null) await DeleteIfStillOursAsync(message, current, stoppingToken).ConfigureAwait(false);
                LogRequeued(logger, message.MessageId);
                return;
            }
            LogFailed(logger, message.MessageId, message.DequeueCount, e.GetType().Name, e.Message);
            if (message.DequeueCount >= options.MaxDequeueCount && current is not null)
            {
                try
                {
                    await PoisonAsync(message, current,
                        $"delivery {message.DequeueCount} failed and was the last allowed (maxDequeueCount {options.MaxDequeueCount}): {e.GetType().Name}: "
                            + $"{e.Message}", stoppingToken).ConfigureAwait(false);
                }
                catch (Exception poisonFailure) when (poisonFailure is RequestFailedException || StorageOutage.IsTransient(poisonFailure, stoppingToken))
                {
                    // Storage is down: the message comes back, is seen as over the count and poisoned then.
                    LogFailed(logger, message.MessageId, message.DequeueCount, "PoisonFailed", poisonFailure.Message);
                }
            }
            return;
        }
        var receipt = await keepAlive.StopAsync().ConfigureAwait(false);
        if (receipt is null)
        {
            LogFailed(logger, message.MessageId, message.DequeueCount, "VisibilityLost", "could not keep the message invisible; it will be redelivered and "
                + "answered from the record");
            return;
        }
        LogHandled(logger, message.MessageId, message.DequeueCount, outcome.Kind, outcome.Detail);
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
                // unchanged wire text
                await features.SendMessageAsync(message.Body.ToString(), TimeSpan.FromSeconds(2), cancellationToken: stoppingToken).ConfigureAwait(false);
                await features.DeleteMessageAsync(message.MessageId, receipt, stoppingToken).ConfigureAwait(false);
                break;
            case OutcomeKind.Continue:
                // A fresh copy first, then the delete: a kill between the two leaves a duplicate, answered from the record.
                await features.SendMessageAsync(message.Body.ToString(), cancellationToken: stoppingToken).ConfigureAwait(false);
                await features.DeleteMessageAsync(message.MessageId, receipt, stoppingToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task PoisonAsync(QueueMessage message, string popReceipt, string reason, CancellationToken ct)
    {
        LogPoisoned(logger, message.MessageId, reason);
        var wire = message.Body.ToString();
        await poison.PoisonAsync(message.MessageId, wire, QueueText.TryDecode(wire, out _) ?? wire, message.DequeueCount, reason, PoisonHosts.Drain, ct)
            .ConfigureAwait(false);
        await features.DeleteMessageAsync(message.MessageId, popReceipt, ct).ConfigureAwait(false);
    }

    private async Task DeleteIfStillOursAsync(QueueMessage message, string popReceipt, CancellationToken ct)
    {
        try
        {
            await features.DeleteMessageAsync(message.MessageId, popReceipt, ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 400)
        {
            // Its receipt expired during the outage: it comes back once more and is answered from the record.
        }
    }

    /// <summary>Probes the queue with back-off (1 s doubling to <see cref="MaxOutageDelay"/>), logging each miss, until storage answers.</summary>
    private async Task WaitForStorageAsync(CancellationToken ct)
    {
        var away = await StorageOutage.WaitUntilReachableAsync(c => features.GetPropertiesAsync(c), MaxOutageDelay,
            (attempt, delay, cause) => LogStillDown(logger, attempt, (int)delay.TotalSeconds, cause), ct).ConfigureAwait(false);
        LogStorageBack(logger, (int)away.TotalSeconds);
    }

    private async Task RideOutAsync(string what, Func<CancellationToken, Task> operation, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await operation(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (StorageOutage.IsTransient(e, ct))
            {
                LogStorageDown(logger, what, StorageOutage.Describe(e));
                await WaitForStorageAsync(ct).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: pulling queue '{Queue}' (maxDequeueCount {Max}, visibility {Seconds} s, prefetch "
        + "{Prefetch}, overlapped commits {Overlap})")]
    private static partial void LogStarted(ILogger logger, string queue, int max, int seconds, string prefetch, string overlap);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: queue empty, exiting (--exit-when-empty)")]
    private static partial void LogEmpty(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: storage unavailable ({What}: {Reason}); waiting for it, nothing is lost")]
    private static partial void LogStorageDown(ILogger logger, string what, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: storage still unavailable (attempt {Attempt}: {Reason}); next look in {Seconds} s")]
    private static partial void LogStillDown(ILogger logger, int attempt, int seconds, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: storage reachable again after {Seconds} s; resuming")]
    private static partial void LogStorageBack(ILogger logger, int seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: message {Id} re-queued after the outage (its delivery did not count)")]
    private static partial void LogRequeued(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: message {Id} (delivery {Count}): {Kind}: {Detail}")]
    private static partial void LogHandled(ILogger logger, string id, long count, OutcomeKind kind, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "drain: message {Id}: unexpected {Type}: {Reason}; it will be redelivered")]
    private static partial void LogUnexpected(ILogger logger, string id, string type, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: message {Id} failed on delivery {Count} ({Type}: {Reason}); it will be retried")]
    private static partial void LogFailed(ILogger logger, string id, long count, string type, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "drain: message {Id} poisoned: {Reason}")]
    private static partial void LogPoisoned(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "drain: message {Id} deferred: {Reason}")]
    private static partial void LogDeferred(ILogger logger, string id, string reason);
}
