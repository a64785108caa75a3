namespace SplitFunctions.Functions.Hosting;

/// <summary>What the queue side must do with a message once the training service has looked at it.</summary>
public enum OutcomeKind
{
    /// <summary>The effect is durable: delete the message.</summary>
    Completed,

    /// <summary>The message can never succeed (tampered, malformed, wrong run, NaN, oversized): poison it at once, with the reason.</summary>
    Rejected,

    /// <summary>Not now (the run is busy on another instance): leave it for later without counting a failure.</summary>
    Deferred,

    /// <summary>
    /// Part of the work is durable and more remains (a temporal run's next epoch): queue the message again as a fresh
    /// delivery and delete this one, so a long run is many short deliveries and a few kills in it do not poison it.
    /// </summary>
    Continue,
}

/// <summary>The outcome with its reason, as logged and recorded on `features-rejections`.</summary>
public sealed record MessageOutcome(OutcomeKind Kind, string Detail)
{
    public static MessageOutcome Completed(string detail) => new(OutcomeKind.Completed, detail);

    public static MessageOutcome Rejected(string reason) => new(OutcomeKind.Rejected, reason);

    public static MessageOutcome Deferred(string reason) => new(OutcomeKind.Deferred, reason);

    public static MessageOutcome Continue(string progress) => new(OutcomeKind.Continue, progress);
}

/// <summary>A message whose effect is applied in memory; <see cref="Outcome"/> completes when it is durable (or fails: the message is retried).</summary>
public sealed record PendingOutcome(Task<MessageOutcome> Outcome);

/// <summary>The training service as the two hosts see it: one queue message in, one outcome out.</summary>
public interface IMessageProcessor
{
    /// <summary>
    /// Handles one message of the `features` queue. Exceptions mean a transient failure: the message is retried and,
    /// after the maximum dequeue count, poisoned.
    /// </summary>
    Task<MessageOutcome> ProcessAsync(string messageText, long dequeueCount, CancellationToken cancellationToken);

    /// <summary>
    /// Handles a message as far as its effect on the run in memory and returns; <see cref="PendingOutcome.Outcome"/>
    /// completes once that effect is durable (journaled, answered). Drain mode starts the next message then, so the reply
    /// and journal write of one step overlap the next step's compute; it still deletes each message only after its outcome.
    /// The default handles the message completely first (no overlap).
    /// </summary>
    async Task<PendingOutcome> BeginAsync(string messageText, long dequeueCount, CancellationToken cancellationToken) =>
        new(Task.FromResult(await ProcessAsync(messageText, dequeueCount, cancellationToken).ConfigureAwait(false)));

    /// <summary>
    /// A hint that this message is next: start reading what it points to, so handling it waits less on storage. Must not
    /// change any state; failures are left for <see cref="ProcessAsync"/> to meet and report. The default does nothing.
    /// </summary>
    void Prefetch(string messageText, CancellationToken cancellationToken)
    {
    }
}
