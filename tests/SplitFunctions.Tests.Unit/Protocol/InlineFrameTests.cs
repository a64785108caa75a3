using System.Security.Cryptography;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

/// <summary>
/// Frames carried inside their queue message (issue 33): sealed, digested and MAC'd exactly like blob frames, size-checked
/// before anything is decoded, and refused when altered.
/// </summary>
public sealed class InlineFrameTests
{
    private static readonly HospitalKey Key = new("st-marys", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));

    // An ldl-mlp batch of 64: 64 features and one label per sample, fp32 (about 17 KiB sealed).
    private static SealedFrame SealTrain(long sequence = 42) => SecureFrameCodec.Seal(Key,
        new CipherContext("run-7", "st-marys", sequence, PayloadKind.Features, "k1"),
        new FrameTensor(ElementType.Float32, [64, 64], Enumerable.Range(0, 64 * 64).Select(i => i * 0.001f).ToArray()),
        new FrameTensor(ElementType.Float32, [64, 1], Enumerable.Range(0, 64).Select(i => (float)i).ToArray()));

    private static FrameMessage InlineTrain(SealedFrame frame, long sequence = 42) => MessageAuthentication.Sign(new FrameMessage
    {
        RunId = "run-7",
        HospitalId = "st-marys",
        Sequence = sequence,
        Kind = FrameKind.Train,
        Blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, "run-7", sequence),
        Length = frame.Length,
        Sha256 = frame.Sha256,
        ReplyQueue = "replies-st-marys",
        Epoch = 0,
        Batch = 1,
        Inline = MessageCodec.InlineText(frame.Blob),
    }, Key);

    [Fact]
    public void An_inline_frame_round_trips_through_the_message_and_opens_to_the_same_tensors()
    {
        var frame = SealTrain();
        frame.Length.Should().BeLessThan(MessageCodec.MaxInlineBytes);
        var text = MessageCodec.Serialize(InlineTrain(frame));
        var parsed = MessageCodec.ParseFrame(text);
        MessageAuthentication.Verify(parsed, Key).Should().BeTrue();
        var bytes = MessageCodec.InlineBytes(parsed)!;
        bytes.Should().Equal(frame.Blob);
        var tensors = SecureFrameCodec.OpenInPlace(Key, CipherContext.For(parsed), bytes, parsed.Length, parsed.Sha256!);
        tensors[0].Shape.Should().Equal(64, 64);
        tensors[1].Values.Should().Equal(Enumerable.Range(0, 64).Select(i => (float)i));
    }

    [Fact]
    public void The_mac_covers_the_inline_payload_and_a_message_without_it_keeps_its_old_mac()
    {
        var frame = SealTrain();
        var message = InlineTrain(frame);
        MessageAuthentication.CanonicalText(message).Should().Contain("\ninline=" + message.Inline + "\n");

        // One byte of the payload changed (re-encoded, so the text is still valid base64 of the announced length).
        var altered = (byte[])frame.Blob.Clone();
        altered[altered.Length / 2] ^= 0x01;
        var tampered = message with { Inline = MessageCodec.InlineText(altered) };
        MessageCodec.ParseFrame(MessageCodec.Serialize(tampered)).Should().Be(tampered, "the codec checks form, not authenticity");
        MessageAuthentication.Verify(tampered, Key).Should().BeFalse("the MAC covers the inline payload");
        // Even past the MAC (an insider holding the key re-signs it), the envelope refuses the altered ciphertext.
        var resigned = MessageAuthentication.Sign(tampered with { Mac = null }, Key);
        var open = () => SecureFrameCodec.OpenInPlace(Key, CipherContext.For(resigned), MessageCodec.InlineBytes(resigned)!, resigned.Length, resigned.Sha256!);
        open.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Tampered);

        // Blob frames (and every message of earlier releases) sign the same text as before: no `inline` line.
        var blob = message with { Inline = null, Mac = null };
        MessageAuthentication.CanonicalText(blob).Should().NotContain("inline");
        MessageAuthentication.Verify(MessageAuthentication.Sign(blob, Key), Key).Should().BeTrue();
    }

    [Fact]
    public void Oversized_or_inconsistent_inline_payloads_are_refused_before_any_decoding()
    {
        var message = InlineTrain(SealTrain());

        // Announcing more than the inline limit: refused on the length alone (the text is never decoded).
        var tooLong = MessageCodec.MaxInlineBytes + 1L;
        var oversized = message with { Length = tooLong, Inline = new string('A', (int)MessageCodec.Base64Length(tooLong)) };
        var validate = () => MessageCodec.Validate(oversized);
        validate.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Oversized);
        var decode = () => MessageCodec.InlineBytes(oversized);
        decode.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Oversized);

        // Text longer or shorter than the base64 of the announced length, or outside the alphabet (a line break would
        // make the MAC's canonical text ambiguous).
        foreach (var bad in new[] { message.Inline + "AAAA", message.Inline![4..], "\n" + message.Inline[1..] })
        {
            var parse = () => MessageCodec.Validate(message with { Inline = bad });
            parse.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Malformed);
        }

        // A message past the queue's limit never reaches the JSON parser.
        var huge = MessageCodec.Serialize(message).Replace(message.Inline, new string('A', MessageCodec.MaxMessageBytes), StringComparison.Ordinal);
        var parseHuge = () => MessageCodec.ParseFrame(huge);
        parseHuge.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.MessageTooLarge);

        // Frames read again later from their blobs cannot travel inline, and a reply without a payload carries none.
        foreach (var kind in new[] { FrameKind.Chunk, FrameKind.Forward, FrameKind.Backward })
        {
            var other = () => MessageCodec.Validate(message with { Kind = kind, Epoch = null, Batch = null });
            other.Should().Throw<ProtocolException>().Which.Message.Should().Contain("inline");
        }
    }

    [Fact]
    public void The_largest_inline_frame_fits_the_queue_message_with_every_other_field_at_its_longest()
    {
        var run = string.Join('-', Enumerable.Repeat("r", 32)).PadRight(63, 'r')[..63];
        var hospital = new string('h', StorageNames.MaxHospitalIdLength);
        var key = new HospitalKey(hospital, new string('k', HospitalKey.MaxKeyIdLength), RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
        var payload = RandomNumberGenerator.GetBytes(MessageCodec.MaxInlineBytes);
        var message = MessageAuthentication.Sign(new FrameMessage
        {
            RunId = run,
            HospitalId = hospital,
            Sequence = long.MaxValue,
            Kind = FrameKind.Evaluate,
            Blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, run, long.MaxValue),
            Length = payload.Length,
            Sha256 = new string('f', 64),
            ReplyQueue = StorageNames.RepliesQueue(hospital),
            Inline = MessageCodec.InlineText(payload),
        }, key);
        MessageCodec.ParseFrame(MessageCodec.Serialize(message)).Should().Be(message);

        var reply = MessageAuthentication.SignReply(new ReplyMessage
        {
            RunId = run,
            HospitalId = hospital,
            Sequence = long.MaxValue,
            Kind = ReplyKind.Gradients,
            Blob = StorageNames.FrameBlob(StorageNames.GradientsFolder, run, long.MaxValue),
            Length = payload.Length,
            Sha256 = new string('f', 64),
            KeyId = key.KeyId,
            Loss = -1.2345678901234567e-300,
            Answers = message.Mac,
            Inline = MessageCodec.InlineText(payload),
        }, key);
        var replyText = MessageCodec.Serialize(reply);
        MessageCodec.ParseReply(replyText).Should().Be(reply);
        MessageAuthentication.VerifyReply(MessageCodec.ParseReply(replyText), key).Should().BeTrue();
        MessageAuthentication.VerifyReply(reply with { Inline = MessageCodec.InlineText(payload.Reverse().ToArray()) }, key).Should()
            .BeFalse("a reply's MAC covers its inline payload");
    }
}
