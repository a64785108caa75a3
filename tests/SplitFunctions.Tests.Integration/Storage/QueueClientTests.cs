using System.Text;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Storage;

/// <summary>The SDK queue behaviours the drain, the agent and the visibility keeper rely on, against Azurite as the clients are configured.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class QueueClientTests(AzuriteFixture azurite)
{
    private async Task<QueueClient> NewQueueAsync()
    {
        var queue = azurite.Connection.GetQueueClient(AzuriteFixture.UniqueName("q"));
        (await queue.CreateIfNotExistsAsync()).Should().NotBeNull("a new queue is created");
        return queue;
    }

    [Fact]
    public async Task CreateIfNotExists_creates_once_and_returns_null_when_the_queue_exists()
    {
        var queue = await NewQueueAsync();
        (await queue.CreateIfNotExistsAsync()).Should().BeNull();
        ((bool)await queue.DeleteIfExistsAsync()).Should().BeTrue();
        ((bool)await queue.DeleteIfExistsAsync()).Should().BeFalse();
    }

    [Fact]
    public async Task Messages_go_through_receive_update_and_delete_with_pop_receipts_and_dequeue_counts()
    {
        var queue = await NewQueueAsync();
        var sent = (await queue.SendMessageAsync("{\"hello\":\"wörld\"}")).Value;
        sent.MessageId.Should().NotBeNullOrEmpty();
        (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(1);

        var peeked = (await queue.PeekMessagesAsync(5)).Value.Should().ContainSingle().Which;
        peeked.Body.ToString().Should().Be("{\"hello\":\"wörld\"}");
        peeked.DequeueCount.Should().Be(0);

        var received = (await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value.Should().ContainSingle().Which;
        received.MessageId.Should().Be(sent.MessageId);
        received.DequeueCount.Should().Be(1);
        received.Body.ToString().Should().Be("{\"hello\":\"wörld\"}");
        (await queue.ReceiveMessagesAsync(32)).Value.Should().BeEmpty("the message is invisible until its visibility timeout ends");

        // Give it back at once: a new pop receipt replaces the old one.
        var update = (await queue.UpdateMessageAsync(received.MessageId, received.PopReceipt, visibilityTimeout: TimeSpan.Zero)).Value;
        update.PopReceipt.Should().NotBe(received.PopReceipt);
        var again = (await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value.Should().ContainSingle().Which;
        again.DequeueCount.Should().Be(2);

        var staleDelete = () => queue.DeleteMessageAsync(received.MessageId, received.PopReceipt);
        var failure = (await staleDelete.Should().ThrowAsync<RequestFailedException>()).Which;
        // The service documents this case as 400 PopReceiptMismatch, and Azurite answers the same.
        failure.Status.Should().Be(400);
        failure.ErrorCode.Should().Be("PopReceiptMismatch");

        await queue.DeleteMessageAsync(again.MessageId, again.PopReceipt);
        (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(0);
    }

    [Fact]
    public async Task Update_extends_the_visibility_of_a_message_being_worked_on()
    {
        var queue = await NewQueueAsync();
        await queue.SendMessageAsync("first");
        var m = (await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(1))).Value.Single();
        await queue.UpdateMessageAsync(m.MessageId, m.PopReceipt, visibilityTimeout: TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(2));
        (await queue.ReceiveMessagesAsync()).Value.Should().BeEmpty("the renewal outlived the first visibility timeout");
        (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(1);
    }

    [Fact]
    public async Task Encoding_is_base64_like_the_Functions_queue_trigger()
    {
        StorageClientDefaults.Queue().MessageEncoding.Should().Be(QueueMessageEncoding.Base64);
        var name = AzuriteFixture.UniqueName("enc");
        var base64Queue = azurite.Connection.GetQueueClient(name);
        await base64Queue.CreateIfNotExistsAsync();
        await base64Queue.SendMessageAsync("{\"v\":1}");

        var rawOptions = StorageClientDefaults.Queue();
        rawOptions.MessageEncoding = QueueMessageEncoding.None;
        var raw = azurite.Connection.GetQueueClient(name, rawOptions);
        (await raw.PeekMessagesAsync()).Value.Single().Body.ToString().Should().Be(Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"v\":1}")));
    }

    [Fact]
    public async Task A_message_over_64_KiB_once_encoded_is_refused()
    {
        var queue = await NewQueueAsync();
        var text = new string('x', 48 * 1024 + 1); // base64 makes it larger than 64 KiB
        var send = () => queue.SendMessageAsync(text);
        await send.Should().ThrowAsync<RequestFailedException>();
        (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(0);
        await queue.SendMessageAsync(new string('x', 48 * 1024));
        (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount.Should().Be(1);
    }

    [Fact]
    public async Task Receiving_from_a_missing_queue_fails_with_QueueNotFound()
    {
        var queue = azurite.Connection.GetQueueClient("missing-queue");
        var receive = () => queue.ReceiveMessagesAsync();
        var failure = (await receive.Should().ThrowAsync<RequestFailedException>()).Which;
        failure.Status.Should().Be(404);
        failure.ErrorCode.Should().Be("QueueNotFound");
    }
}
