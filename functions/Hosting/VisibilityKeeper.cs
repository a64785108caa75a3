using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// Keeps a received message invisible while it is being worked on (long temporal epochs included), renewing at a third of
/// the visibility timeout as the Functions host does. Each renewal returns a new pop receipt; the last one is what deletes.
/// </summary>
internal sealed class VisibilityKeeper : IDisposable
{
    private readonly QueueClient queue;
    private readonly QueueMessage message;
    private readonly TimeSpan timeout;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private string? popReceipt;

    public VisibilityKeeper(QueueClient queue, QueueMessage message, TimeSpan timeout)
    {
        this.queue = queue;
        this.message = message;
        this.timeout = timeout;
        popReceipt = message.PopReceipt;
        loop = Task.Run(RenewAsync);
    }

    /// <summary>Stops renewing; returns the current pop receipt, or null when the message was lost to another consumer.</summary>
    public async Task<string?> StopAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        return popReceipt;
    }

    private async Task RenewAsync()
    {
        var every = timeout / 3;
        while (true)
        {
            try
            {
                await Task.Delay(every, stop.Token).ConfigureAwait(false);
                var receipt = await queue.UpdateMessageAsync(message.MessageId, popReceipt!, visibilityTimeout: timeout, cancellationToken: stop.Token)
                    .ConfigureAwait(false);
                popReceipt = receipt.Value.PopReceipt;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                popReceipt = null; // It became visible and someone else took it.
                return;
            }
            catch (Exception e) when (e is RequestFailedException || StorageOutage.IsTransient(e, stop.Token))
            {
                // Transient (an outage ends the SDK's retries in an AggregateException): try again at the next tick. If the
                // message became visible meanwhile, the next renewal answers 404 and the step is answered from its record.
            }
        }
    }

    public void Dispose() => stop.Dispose();
}
