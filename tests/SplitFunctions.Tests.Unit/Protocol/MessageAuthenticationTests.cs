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
}
