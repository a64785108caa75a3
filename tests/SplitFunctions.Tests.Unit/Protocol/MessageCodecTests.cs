using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class MessageCodecTests
{
    private const string Sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    // The codec checks the MAC's form; whether it verifies is MessageAuthentication's (MessageAuthenticationTests).
    private const string Mac = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    internal static FrameMessage Train => new()
    {
        RunId = "run-7",
        HospitalId = "st-marys",
        Sequence = 42,
        Kind = FrameKind.Train,
        Blob = "features/run-7/000000000042.sfe",
        Length = 4096,
        Sha256 = Sha,
        ReplyQueue = "replies-st-marys",
        KeyId = "k1",
        Epoch = 1,
        Batch = 3,
        Mac = Mac,
    };

    private const string TrainJson =
        """{"v":2,"run":"run-7","hospital":"st-marys","seq":42,"kind":"train","blob":"features/run-7/000000000042.sfe","length":4096,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","replyQueue":"replies-st-marys","keyId":"k1","epoch":1,"batch":3,"mac":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}""";

    private static ProtocolException RejectedFrame(string json)
    {
        var parse = () => MessageCodec.ParseFrame(json);
        return parse.Should().Throw<ProtocolException>().Which;
    }

    [Fact]
    public void Frame_messages_serialize_to_the_documented_json_and_back()
    {
        MessageCodec.Serialize(Train).Should().Be(TrainJson);
        MessageCodec.ParseFrame(TrainJson).Should().Be(Train);
        var done = Train with { Kind = FrameKind.Done, Blob = null, Length = 0, Sha256 = null, ChunkCount = 12, Epoch = null, Batch = null };
        MessageCodec.Serialize(done).Should().Be("""{"v":2,"run":"run-7","hospital":"st-marys","seq":42,"kind":"done","length":0,"replyQueue":"replies-st-marys","keyId":"k1","chunkCount":12,"mac":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}""");
        MessageCodec.ParseFrame(MessageCodec.Serialize(done)).Should().Be(done);
    }

    [Fact]
    public void Reply_messages_round_trip_for_every_kind()
    {
        var gradients = new ReplyMessage
        {
            RunId = "run-7",
            HospitalId = "st-marys",
            Sequence = 42,
            Kind = ReplyKind.Gradients,
            Blob = "gradients/run-7/000000000042.sfe",
            Length = 100,
            Sha256 = Sha,
            KeyId = "k1",
            Loss = 0.693,
            Answers = Mac,
        };
        var rejected = new ReplyMessage
        {
            RunId = "run-7",
            HospitalId = "st-marys",
            Sequence = 43,
            Kind = ReplyKind.Rejected,
            Reason = "Tampered: failed authentication",
            Answers = Mac
        };
        var accepted = new ReplyMessage { RunId = "run-7", HospitalId = "st-marys", Sequence = 44, Kind = ReplyKind.Accepted, Answers = Mac };
        foreach (var reply in new[] { gradients, gradients with
            {
                Kind = ReplyKind.Predictions, Blob = "predictions/run-7/000000000042.sfe", Loss = null,
                Model = new ModelVersion { Mode = Core.Runs.TrainingMode.Vanilla, Step = 41, Checkpoint = 1, Final = false },
            },
            rejected, accepted })
            MessageCodec.ParseReply(MessageCodec.Serialize(reply)).Should().Be(reply);
        MessageCodec.Serialize(rejected).Should().Contain("\"kind\":\"rejected\"").And.Contain("\"reason\":");
    }

    [Fact]
    public void An_unknown_version_is_named_even_when_the_rest_differs()
    {
        var e = RejectedFrame("""{"v":3,"run":"run-7","newField":true}""");
        e.Rejection.Should().Be(ProtocolRejection.UnknownVersion);
        e.Message.Should().Contain("version 3").And.Contain("same SplitFunctions release");
        RejectedFrame(TrainJson.Replace("\"v\":2", "\"v\":0", StringComparison.Ordinal)).Rejection.Should().Be(ProtocolRejection.UnknownVersion);
    }

    [Fact]
    public void A_version_1_message_without_a_mac_is_refused_with_the_reason()
    {
        var v1 = """{"v":1,"run":"run-7","hospital":"st-marys","seq":42,"kind":"train","blob":"features/run-7/000000000042.sfe","length":4096,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","replyQueue":"replies-st-marys","keyId":"k1"}""";
        var e = RejectedFrame(v1);
        e.Rejection.Should().Be(ProtocolRejection.UnknownVersion);
        e.Message.Should().Contain("version 1").And.Contain("reads version 2").And.Contain("no MAC");
        RejectedFrame(TrainJson.Replace(",\"mac\":\"" + Mac + "\"", "", StringComparison.Ordinal)).Message.Should().Contain("mac must be 64 lowercase hex");
    }

    [Theory]
    [InlineData("", "not valid")]
    [InlineData("{\"v\":1,", "not valid")]
    [InlineData("[1]", "one JSON object")]
    [InlineData("{\"run\":\"run-7\"}", "'v'")]
    [InlineData("{\"v\":\"1\"}", "'v'")]
    [InlineData("{\"v\":2}", "missing required properties")]
    public void Malformed_json_is_malformed(string json, string detail)
    {
        var e = RejectedFrame(json);
        e.Rejection.Should().Be(ProtocolRejection.Malformed);
        e.Message.Should().Contain(detail);
    }

    [Theory]
    [InlineData("\"seq\":42,", "", "seq")]
    [InlineData("\"replyQueue\":\"replies-st-marys\",", "", "replyQueue")]
    [InlineData("\"v\":2,", "\"v\":2,\"extra\":1,", "extra")]
    [InlineData("\"v\":2,", "\"v\":2,\"run\":\"run-8\",", "run")]
    [InlineData("\"kind\":\"train\"", "\"kind\":0", "kind must be one of")]
    [InlineData("\"kind\":\"train\"", "\"kind\":\"Train\"", "kind must be one of")]
    [InlineData("\"seq\":42", "\"seq\":\"42\"", "seq")]
    [InlineData("\"run\":\"run-7\"", "\"run\":null", "run")]
    public void Missing_extra_duplicate_or_mistyped_fields_are_malformed(string find, string replace, string detail)
    {
        var e = RejectedFrame(TrainJson.Replace(find, replace, StringComparison.Ordinal));
        e.Rejection.Should().Be(ProtocolRejection.Malformed);
        e.Message.Should().Contain(detail);
    }

    [Fact]
    public void Field_rules_are_enforced_with_the_rule_in_the_message()
    {
        var cases = new (FrameMessage Message, string Detail)[]
        {
            (Train with { RunId = "Run_7" }, "valid run id"),
            (Train with { HospitalId = "../h", ReplyQueue = "replies-x" }, "valid hospital id"),
            (Train with { Sequence = -1 }, "seq is -1"),
            (Train with { ReplyQueue = "replies-st-johns" }, "answered only on 'replies-st-marys'"),
            (Train with { Blob = null }, "blob"),
            (Train with { Blob = "features/run-8/000000000042.sfe" }, "under 'features/run-7/'"),
            (Train with { Blob = "features/run-7/../../h-other/x" }, "blob"),
            (Train with { Length = 0 }, "length is 0"),
            (Train with { Length = MessageCodec.MaxPayloadBytes + 1 }, "length"),
            (Train with { Sha256 = Sha.ToUpperInvariant() }, "64 lowercase hex"),
            (Train with { Sha256 = Sha[..63] }, "64 lowercase hex"),
            (Train with { KeyId = null }, "keyId"),
            (Train with { Epoch = -1 }, "epoch"),
            (Train with { ChunkCount = 3 }, "chunkCount belongs only"),
            (Train with { Kind = FrameKind.Done, ChunkCount = 3 }, "carries no payload"),
            (Train with { Kind = FrameKind.Done, Blob = null, Length = 0, Sha256 = null }, "needs chunkCount"),
            (Train with { Kind = FrameKind.Done, Blob = null, Length = 0, Sha256 = null, KeyId = null, ChunkCount = 3 }, "keyId"),
            (Train with { Mac = null }, "mac must be"),
            (Train with { Mac = Mac.ToUpperInvariant() }, "mac must be"),
        };
        foreach (var (message, detail) in cases)
        {
            var serialize = () => MessageCodec.Serialize(message);
            serialize.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.Malformed).WithMessage($"*{detail}*", message.ToString());
        }

        var reply = new ReplyMessage { RunId = "run-7", HospitalId = "st-marys", Sequence = 1, Kind = ReplyKind.Rejected, Answers = Mac };
        var noAnswers = () => MessageCodec.Serialize(reply with { Reason = "x", Answers = null });
        noAnswers.Should().Throw<ProtocolException>().WithMessage("*answers must be*");
        var noReason = () => MessageCodec.Serialize(reply);
        noReason.Should().Throw<ProtocolException>().WithMessage("*needs a reason*");
        var nanLoss = () => MessageCodec.Serialize(reply with { Kind = ReplyKind.Accepted, Loss = double.NaN });
        nanLoss.Should().Throw<ProtocolException>().WithMessage("*finite*");
    }

    [Fact]
    public void Messages_over_48_KiB_are_refused_before_parsing_including_those_over_64_KiB()
    {
        foreach (var size in new[] { MessageCodec.MaxMessageBytes + 1, 64 * 1024 + 1, 1024 * 1024 })
        {
            // Broken JSON on purpose: the size check must come before the parser sees it.
            var e = RejectedFrame("{\"v\":2,\"pad\":\"" + new string('x', size));
            e.Rejection.Should().Be(ProtocolRejection.MessageTooLarge);
            e.Message.Should().Contain("was not parsed");
        }
        // Multi-byte characters count as their UTF-8 bytes.
        RejectedFrame("{\"v\":2,\"pad\":\"" + new string('é', MessageCodec.MaxMessageBytes / 2 + 1) + "\"}").Rejection.Should()
            .Be(ProtocolRejection.MessageTooLarge);

        var bigReason = new ReplyMessage
        {
            RunId = "run-7",
            HospitalId = "st-marys",
            Sequence = 1,
            Kind = ReplyKind.Rejected,
            Reason = new string('x', MessageCodec.MaxReasonLength + 1),
            Answers = Mac
        };
        var serialize = () => MessageCodec.Serialize(bigReason);
        serialize.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Malformed);
    }

    [Fact]
    public void Duplicate_properties_are_malformed()
    {
        RejectedFrame(TrainJson.Replace("\"seq\":42", "\"seq\":42,\"seq\":43", StringComparison.Ordinal)).Rejection.Should().Be(ProtocolRejection.Malformed);
    }
}
