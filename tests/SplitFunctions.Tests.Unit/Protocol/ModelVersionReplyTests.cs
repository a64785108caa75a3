using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Protocol;

/// <summary>Issue 32: every evaluation answer names the server model that made it, and `notready` carries a temporal run's progress.</summary>
public sealed class ModelVersionReplyTests
{
    private const string Sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    private const string Mac = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static readonly ModelVersion Final = new() { Mode = TrainingMode.Temporal, Step = 12, Epoch = 154, Epochs = 154, Checkpoint = 160, Final = true };

    private static ReplyMessage Predictions => new()
    {
        RunId = "run-7",
        HospitalId = "st-marys",
        Sequence = 42,
        Kind = ReplyKind.Predictions,
        Blob = "predictions/run-7/000000000042.sfe",
        Length = 100,
        Sha256 = Sha,
        KeyId = "k1",
        Answers = Mac,
        Model = Final,
    };

    private const string PredictionsJson =
        """{"v":2,"run":"run-7","hospital":"st-marys","seq":42,"kind":"predictions","blob":"predictions/run-7/000000000042.sfe","length":100,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","keyId":"k1","answers":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","model":{"mode":"temporal","step":12,"epoch":154,"epochs":154,"checkpoint":160,"final":true}}""";

    private static ProtocolException Rejected(string json)
    {
        var parse = () => MessageCodec.ParseReply(json);
        return parse.Should().Throw<ProtocolException>().Which;
    }

    [Fact]
    public void A_predictions_reply_carries_its_model_version_and_reads_back_equal()
    {
        MessageCodec.Serialize(Predictions).Should().Be(PredictionsJson);
        MessageCodec.ParseReply(PredictionsJson).Should().Be(Predictions);
        MessageCodec.ParseReply(PredictionsJson).Model!.Describe().Should()
            .Be("temporal model after epoch 154 of 154 (journal step 12, checkpoint 160), final");
    }

    [Fact]
    public void A_notready_reply_carries_the_servers_epoch_and_no_payload()
    {
        var progress = Final with { Epoch = 37, Final = false };
        var notReady = new ReplyMessage { RunId = "run-7", HospitalId = "st-marys", Sequence = 42, Kind = ReplyKind.NotReady, Answers = Mac, Model = progress };
        var json = MessageCodec.Serialize(notReady);
        json.Should().Contain("\"kind\":\"notready\"").And.Contain("\"epoch\":37").And.NotContain("blob");
        MessageCodec.ParseReply(json).Should().Be(notReady);
        var withBlob = () => MessageCodec.Serialize(notReady with { Blob = "predictions/run-7/000000000042.sfe", Length = 100, Sha256 = Sha, KeyId = "k1" });
        withBlob.Should().Throw<ProtocolException>().WithMessage("*'notready' message carries no payload*");
        var withoutProgress = () => MessageCodec.Serialize(notReady with { Model = null });
        withoutProgress.Should().Throw<ProtocolException>().WithMessage("*'notready' reply must name the server model*");
    }

    [Fact]
    public void A_predictions_reply_without_a_model_version_is_rejected()
    {
        var e = Rejected(PredictionsJson.Replace(""","model":{"mode":"temporal","step":12,"epoch":154,"epochs":154,"checkpoint":160,"final":true}""", "",
            StringComparison.Ordinal));
        e.Rejection.Should().Be(ProtocolRejection.Malformed);
        e.Message.Should().Contain("'predictions' reply must name the server model");
    }

    [Theory]
    [InlineData("\"final\":true}", "\"final\":true,\"extra\":1}", "extra")]
    [InlineData("\"epoch\":154,", "\"epoch\":153,", "final exactly when every epoch is trained")]
    [InlineData("\"epoch\":154,", "\"epoch\":155,", "0 <= epoch <= epochs")]
    [InlineData("\"mode\":\"temporal\"", "\"mode\":\"vanilla\"", "belong only to temporal models")]
    [InlineData("\"step\":12", "\"step\":-1", "must be 0 or more")]
    [InlineData("\"mode\":\"temporal\"", "\"mode\":1", "kind must be one of")]
    public void A_model_version_that_breaks_a_rule_is_rejected(string field, string replacement, string reason)
    {
        var e = Rejected(PredictionsJson.Replace(field, replacement, StringComparison.Ordinal));
        e.Rejection.Should().Be(ProtocolRejection.Malformed);
        e.Message.Should().Contain(reason);
    }

    [Fact]
    public void Only_evaluation_answers_carry_a_model_version()
    {
        var gradients = Predictions with { Kind = ReplyKind.Gradients, Blob = "gradients/run-7/000000000042.sfe" };
        var serialize = () => MessageCodec.Serialize(gradients);
        serialize.Should().Throw<ProtocolException>().WithMessage("*model belongs only on*");
        // U-shaped training legs answer `outputs` without a model; an evaluation's outputs name it.
        var outputs = Predictions with { Kind = ReplyKind.Outputs, Blob = "outputs/run-7/000000000042.sfe" };
        MessageCodec.ParseReply(MessageCodec.Serialize(outputs with { Model = null })).Model.Should().BeNull();
        MessageCodec.ParseReply(MessageCodec.Serialize(outputs)).Model.Should().Be(Final);
    }

    [Fact]
    public void The_same_weights_are_the_same_model_whatever_checkpoint_number_they_were_saved_under()
    {
        Final.SameModel(Final with { Checkpoint = 161 }).Should().BeTrue("an idle release writes the same weights under a new checkpoint number");
        Final.SameModel(Final with { Epoch = 153, Final = false }).Should().BeFalse();
        var vanilla = new ModelVersion { Mode = TrainingMode.Vanilla, Step = 40, Checkpoint = 1, Final = false };
        vanilla.SameModel(vanilla with { Step = 41 }).Should().BeFalse("one more journal step is another model");
        MessageCodec.ParseModel(MessageCodec.SerializeModel(vanilla)).Should().Be(vanilla);
    }
}
