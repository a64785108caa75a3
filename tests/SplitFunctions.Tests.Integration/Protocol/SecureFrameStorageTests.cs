using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Protocol;

/// <summary>The whole path of one frame on real Azurite: seal, upload, enqueue, receive, download, verify, open.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SecureFrameStorageTests(AzuriteFixture azurite)
{
    private static readonly float[] Activations = Enumerable.Range(0, 64 * 32).Select(i => MathF.Sin(i)).ToArray();
    private static readonly float[] Labels = Enumerable.Range(0, 64).Select(i => (float)(i % 2)).ToArray();

    private sealed record Hospital(string Id, HospitalKey Key, BlobContainerClient Container, QueueClient Features);

    private async Task<Hospital> ProvisionAsync()
    {
        var id = "h-" + Guid.NewGuid().ToString("N")[..10];
        var key = new HospitalKey(id, "k1", RandomNumberGenerator.GetBytes(32));
        var container = azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(id));
        await container.CreateIfNotExistsAsync();
        var features = azurite.Connection.GetQueueClient(AzuriteFixture.UniqueName("features"));
        await features.CreateIfNotExistsAsync();
        return new Hospital(id, key, container, features);
    }

    private static async Task<FrameMessage> SendAsync(Hospital h, string run, long seq, SealedFrame frame, string? blobName = null)
    {
        var blob = blobName ?? StorageNames.FrameBlob(StorageNames.FeaturesFolder, run, seq);
        await h.Container.GetBlobClient(blob).UploadReplacingAsync(BinaryData.FromBytes(frame.Blob));
        var message = MessageAuthentication.Sign(new FrameMessage
        {
            RunId = run,
            HospitalId = h.Id,
            Sequence = seq,
            Kind = FrameKind.Train,
            Blob = blob,
            Length = frame.Length,
            Sha256 = frame.Sha256,
            ReplyQueue = StorageNames.RepliesQueue(h.Id),
            KeyId = h.Key.KeyId,
        }, h.Key);
        await h.Features.SendMessageAsync(MessageCodec.Serialize(message));
        return message;
    }

    private static async Task<(FrameMessage Message, byte[] Blob)> ReceiveAsync(Hospital h)
    {
        var received = (await h.Features.ReceiveMessagesAsync()).Value.Should().ContainSingle().Which;
        await h.Features.DeleteMessageAsync(received.MessageId, received.PopReceipt);
        var message = MessageCodec.ParseFrame(received.Body.ToString());
        var blob = (await h.Container.GetBlobClient(message.Blob!).DownloadContentAsync()).Value.Content.ToArray();
        return (message, blob);
    }

    private static SealedFrame Seal(Hospital h, string run, long seq) => SecureFrameCodec.Seal(h.Key,
        new CipherContext(run, h.Id, seq, PayloadKind.Features, h.Key.KeyId),
        new FrameTensor(ElementType.BFloat16, [64, 32], Activations), new FrameTensor(ElementType.Float32, [64, 1], Labels));

    [Fact]
    public async Task A_frame_travels_sealed_through_Azurite_and_opens_at_the_function()
    {
        var h = await ProvisionAsync();
        var frame = Seal(h, "run-1", 5);
        await SendAsync(h, "run-1", 5, frame);

        var (message, blob) = await ReceiveAsync(h);
        var tensors = SecureFrameCodec.Open(h.Key, message, blob);
        tensors[0].Shape.Should().Equal(64, 32);
        tensors[0].Values.Should().Equal(Activations.Select(v => TensorFrame.FromBFloat16Bits(TensorFrame.ToBFloat16Bits(v))));
        tensors[1].Values.Should().Equal(Labels);
        SecureFrameCodec.OpenInPlace(h.Key, CipherContext.For(message), blob, message.Length, message.Sha256!)[1].Values.Should().Equal(Labels);
        blob.AsSpan().IndexOf(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Labels.AsSpan())).Should().Be(-1, "labels never travel in clear");
    }

    [Fact]
    public async Task A_stored_blob_replayed_under_the_next_sequence_is_refused_as_a_replay()
    {
        var h = await ProvisionAsync();
        var frame = Seal(h, "run-1", 5);
        await SendAsync(h, "run-1", 5, frame);
        await ReceiveAsync(h);

        // The same bytes copied to the name and message of sequence 6: digest and length match, the envelope does not.
        await SendAsync(h, "run-1", 6, frame);
        var (message, blob) = await ReceiveAsync(h);
        var open = () => SecureFrameCodec.Open(h.Key, message, blob);
        open.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Replayed);
    }

    [Fact]
    public async Task A_blob_overwritten_after_its_message_fails_the_digest_before_decryption()
    {
        var h = await ProvisionAsync();
        var message = await SendAsync(h, "run-1", 7, Seal(h, "run-1", 7));
        var tampered = Seal(h, "run-1", 7);
        await h.Container.GetBlobClient(message.Blob!).UploadReplacingAsync(BinaryData.FromBytes(tampered.Blob));

        var (received, blob) = await ReceiveAsync(h);
        var open = () => SecureFrameCodec.Open(h.Key, received, blob);
        open.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.DigestMismatch);

        var truncated = () => SecureFrameCodec.Open(h.Key, received, blob.AsSpan(0, blob.Length - 1));
        truncated.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Truncated);
    }

    [Fact]
    public async Task A_message_over_64_KiB_never_reaches_the_queue_and_a_large_one_is_refused_on_receipt()
    {
        var h = await ProvisionAsync();
        var huge = "{\"v\":1,\"pad\":\"" + new string('x', 64 * 1024) + "\"}";
        var send = () => h.Features.SendMessageAsync(huge);
        await send.Should().ThrowAsync<RequestFailedException>();

        // Base64 keeps any message the queue takes within 48 KiB of text; a sender writing raw text (messageEncoding
        // "none") can put up to 64 KiB there, and the codec refuses it unparsed.
        var rawOptions = StorageClientDefaults.Queue();
        rawOptions.MessageEncoding = QueueMessageEncoding.None;
        var raw = azurite.Connection.GetQueueClient(h.Features.Name, rawOptions);
        await raw.SendMessageAsync("{\"v\":1,\"pad\":\"" + new string('x', 60 * 1024) + "\"}");
        var received = (await raw.ReceiveMessagesAsync()).Value.Single();
        var parse = () => MessageCodec.ParseFrame(received.Body.ToString());
        parse.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.MessageTooLarge);
    }
}
