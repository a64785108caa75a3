using System.Text;
using Azure;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Storage;

[Collection(AzuriteCollection.Name)]
public sealed class QueueClientTests(AzuriteFixture azurite)
{
    private async Task<QueueClient> NewQueueAsync(StorageClientOptions? options = null)
    {
        var queue = azurite.Connection.GetQueueClient(AzuriteFixture.UniqueName("q"), options);
        (await queue.CreateIfNotExistsAsync()).Should().BeTrue();
        return queue;
    }

    [Fact]
    public async Task CreateIfNotExists_reports_whether_it_created_the_queue()
    {
        var queue = await NewQueueAsync();
        (await queue.CreateIfNotExistsAsync()).Should().BeFalse();
        (await queue.DeleteIfExistsAsync()).Should().BeTrue();
        (await queue.DeleteIfExistsAsync()).Should().BeFalse();
    }

    [Fact]
    public async Task Messages_go_through_receive_update_and_delete_with_pop_receipts()
    {
        var queue = await NewQueueAsync();
        var sent = await queue.SendMessageAsync("{\"hello\":\"wörld\"}");
        sent.MessageId.Should().NotBeNullOrEmpty();
        (await queue.GetPropertiesAsync()).ApproximateMessagesCount.Should().Be(1);

        var peeked = (await queue.PeekMessagesAsync(5)).Should().ContainSingle().Which;
        peeked.MessageText.Should().Be("{\"hello\":\"wörld\"}");
        peeked.DequeueCount.Should().Be(0);

        var received = (await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Should().ContainSingle().Which;
        received.MessageId.Should().Be(sent.MessageId);
        received.DequeueCount.Should().Be(1);
        received.MessageText.Should().Be("{\"hello\":\"wörld\"}");
        (await queue.ReceiveMessagesAsync(32)).Should().BeEmpty("the message is invisible until its visibility timeout ends");

        // Give it back at once: a new pop receipt replaces the old one.
        var update = await queue.UpdateMessageAsync(received.MessageId, received.PopReceipt, visibilityTimeout: TimeSpan.Zero);
        update.PopReceipt.Should().NotBe(received.PopReceipt);
        var again = (await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Should().ContainSingle().Which;
        again.DequeueCount.Should().Be(2);

        var staleDelete = () => queue.DeleteMessageAsync(received.MessageId, received.PopReceipt);
        var failure = (await staleDelete.Should().ThrowAsync<RequestFailedException>()).Which;
        // The service documents this case as 400 PopReceiptMismatch, and Azurite answers the same.
        failure.Status.Should().Be(400);
        failure.ErrorCode.Should().Be("PopReceiptMismatch");

        await queue.DeleteMessageAsync(again.MessageId, again.PopReceipt);
        (await queue.GetPropertiesAsync()).ApproximateMessagesCount.Should().Be(0);
        (await queue.PeekMessagesAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task Update_can_replace_the_text_and_hide_the_message()
    {
        var queue = await NewQueueAsync();
        await queue.SendMessageAsync("first");
        var m = (await queue.ReceiveMessagesAsync()).Single();
        await queue.UpdateMessageAsync(m.MessageId, m.PopReceipt, "second", TimeSpan.FromSeconds(60));
        (await queue.ReceiveMessagesAsync()).Should().BeEmpty();
        (await queue.GetPropertiesAsync()).ApproximateMessagesCount.Should().Be(1);
    }

    [Fact]
    public async Task Default_encoding_is_base64_like_the_Functions_queue_trigger()
    {
        var name = AzuriteFixture.UniqueName("enc");
        var base64Queue = azurite.Connection.GetQueueClient(name);
        await base64Queue.CreateIfNotExistsAsync();
        await base64Queue.SendMessageAsync("{\"v\":1}");

        var raw = azurite.Connection.GetQueueClient(name, new StorageClientOptions { MessageEncoding = QueueMessageEncoding.None });
        (await raw.PeekMessagesAsync()).Single().MessageText.Should().Be(Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"v\":1}")));

        await raw.ClearMessagesAsync();
        await raw.SendMessageAsync("<not & base64>");
        (await raw.PeekMessagesAsync()).Single().MessageText.Should().Be("<not & base64>");
        var decode = () => base64Queue.PeekMessagesAsync();
        (await decode.Should().ThrowAsync<FormatException>()).WithMessage("*not base64*");
    }

    [Fact]
    public async Task A_message_over_64_KiB_once_encoded_is_refused_before_sending()
    {
        var queue = await NewQueueAsync();
        var text = new string('x', 48 * 1024 + 1); // base64 makes it larger than 64 KiB
        var send = () => queue.SendMessageAsync(text);
        (await send.Should().ThrowAsync<ArgumentException>()).WithMessage("*at most 65536*blob*");
        (await queue.GetPropertiesAsync()).ApproximateMessagesCount.Should().Be(0);
        await queue.SendMessageAsync(new string('x', 48 * 1024));
        (await queue.GetPropertiesAsync()).ApproximateMessagesCount.Should().Be(1);
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
