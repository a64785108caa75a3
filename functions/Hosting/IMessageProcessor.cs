namespace SplitFunctions.Functions.Hosting;

/// <summary>The server as the two hosts see it (<see cref="MessageRouter"/>): one queue message in, one outcome out.</summary>
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
