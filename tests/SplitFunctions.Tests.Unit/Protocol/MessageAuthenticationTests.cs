using System.Security.Cryptography;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class MessageAuthenticationTests
{
    private static readonly HospitalKey Alpha = new("st-marys", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));

    [Fact]
    public void A_signed_message_verifies_under_its_hospitals_key_and_survives_the_codec()
    {
        var signed = MessageAuthentication.Sign(MessageCodecTests.Train with { Mac = null }, Alpha);
        MessageAuthentication.Verify(signed, Alpha).Should().BeTrue();
        MessageAuthentication.Verify(MessageCodec.ParseFrame(MessageCodec.Serialize(signed)), Alpha).Should().BeTrue();
    }

    [Fact]
    public void Changing_any_field_or_the_key_breaks_the_mac()
    {
        var signed = MessageAuthentication.Sign(MessageCodecTests.Train with { Mac = null }, Alpha);
        var changed = new[]
        {
            signed with { RunId = "run-8" }, signed with { HospitalId = "st-johns" }, signed with { Sequence = 43 }, signed with { Kind = FrameKind.Evaluate },
            signed with { Blob = "features/run-7/000000000043.sfe" }, signed with { Length = 4097 }, signed with { Sha256 = new string('0', 64) },
            signed with { ReplyQueue = "replies-st-johns" }, signed with { Epoch = 2 }, signed with { Batch = null }, signed with { ChunkCount = 1 },
        };
        foreach (var message in changed) MessageAuthentication.Verify(message, Alpha).Should().BeFalse(message.ToString());
        var otherKey = Alpha with { Key = RandomNumberGenerator.GetBytes(FrameCipher.KeySize) };
        MessageAuthentication.Verify(signed, otherKey).Should().BeFalse("another key of the same id");
        MessageAuthentication.Verify(signed, Alpha with { KeyId = "k2" }).Should().BeFalse("another key id");
    }

    [Fact]
    public void A_hospital_cannot_sign_for_another()
    {
        var sign = () => MessageAuthentication.Sign(MessageCodecTests.Train with { HospitalId = "st-johns", ReplyQueue = "replies-st-johns", Mac = null },
            Alpha);
        sign.Should().Throw<ArgumentException>().WithMessage("*cannot be signed*");
    }
    [Fact]
    public void A_reply_MAC_covers_every_field_and_only_the_hospital_s_key_makes_it()
    {
        var key = Alpha;
        var other = Alpha with { Key = RandomNumberGenerator.GetBytes(FrameCipher.KeySize) };
        var reply = MessageAuthentication.SignReply(new ReplyMessage
        {
            RunId = "run-7",
            HospitalId = "st-marys",
            Sequence = 42,
            Kind = ReplyKind.Gradients,
            Blob = StorageNames.FrameBlob("gradients", "run-7", 42),
            Length = 4096,
            Sha256 = new string('b', 64),
            KeyId = "k1",
            Loss = 0.25,
            Answers = new string('a', 64),
        }, key);
        MessageAuthentication.VerifyReply(reply, key).Should().BeTrue();
        MessageAuthentication.VerifyReply(MessageCodec.ParseReply(MessageCodec.Serialize(reply)), key).Should().BeTrue("the JSON round trip keeps it");
        MessageAuthentication.VerifyReply(reply, other).Should().BeFalse("another key");
        MessageAuthentication.VerifyReply(reply with { Mac = null }, key).Should().BeFalse("no MAC");
        foreach (var altered in new[]
        {
            reply with { Sequence = 43 }, reply with { Loss = 0.5 }, reply with { Loss = null }, reply with { Length = 4097 },
            reply with { Sha256 = new string('c', 64) }, reply with { Answers = new string('d', 64) }, reply with { RunId = "run-8" },
            reply with { Kind = ReplyKind.Rejected, Blob = null, Length = 0, Sha256 = null, KeyId = null, Loss = null, Reason = "forged" },
        })
        {
            MessageAuthentication.VerifyReply(altered, key).Should().BeFalse(altered.ToString());
        }
        // A request's MAC key never makes a reply's MAC (separate HKDF info).
        var request = new FrameMessage
        {
            RunId = "run-7",
            HospitalId = "st-marys",
            Sequence = 42,
            Kind = FrameKind.Train,
            ReplyQueue = "replies-st-marys",
            KeyId = "k1",
        };
        var requestStyle = reply with { Mac = MessageAuthentication.Compute(request, key.Key) };
        MessageAuthentication.VerifyReply(requestStyle, key).Should().BeFalse();
    }
}
