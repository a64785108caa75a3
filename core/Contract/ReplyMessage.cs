using System.Text.Json.Serialization;

namespace SplitFunctions.Core.Contract;

/// <summary>What a reply message carries back to the hospital.</summary>
public enum ReplyKind
{
    Gradients,
    Predictions,

    /// <summary>The frame was refused; <see cref="ReplyMessage.Reason"/> says why.</summary>
    Rejected,

    /// <summary>The frame was applied and needs no payload back (temporal chunks, done).</summary>
    Accepted,

    /// <summary>U-shaped mode: the server part's outputs (the hospital's tail turns them into predictions).</summary>
    Outputs,

    /// <summary>
    /// An `evaluate` that came before the model it asks for exists (temporal: epochs remain); no payload,
    /// <see cref="ReplyMessage.Model"/> says how far training is. The hospital asks again later.
    /// </summary>
    NotReady,
}

/// <summary>
/// Message the function puts on `replies-&lt;hospital&gt;` answering one frame message (same run and sequence, and
/// <see cref="Answers"/> = that message's MAC). Version 2.
/// </summary>
public sealed record ReplyMessage : RunMessage
{
    [JsonPropertyName("kind"), JsonConverter(typeof(StrictEnumConverter<ReplyKind>)), JsonPropertyOrder(4)]
    public required ReplyKind Kind { get; init; }

    /// <summary>Training loss of the batch, when there is one.</summary>
    [JsonPropertyName("loss"), JsonPropertyOrder(10)]
    public double? Loss { get; init; }

    /// <summary>Why the frame was rejected; only on <see cref="ReplyKind.Rejected"/>.</summary>
    [JsonPropertyName("reason"), JsonPropertyOrder(11)]
    public string? Reason { get; init; }

    /// <summary>The <see cref="FrameMessage.Mac"/> of the message this answers: the agent takes a reply only for the exact message it sent.</summary>
    [JsonPropertyName("answers"), JsonPropertyOrder(12)]
    public string? Answers { get; init; }

    /// <summary>
    /// Predictions and evaluation outputs: the model that produced them; `notready`: how far its training is. Absent on
    /// the other kinds.
    /// </summary>
    [JsonPropertyName("model"), JsonPropertyOrder(13)]
    public ModelVersion? Model { get; init; }

    /// <summary>
    /// HMAC-SHA256 (hex) of every other field under the key of the message this answers
    /// (<see cref="MessageAuthentication.SignReply"/>): anyone who can write `replies-&lt;hospital&gt;` can forge the rest,
    /// not this. Kept last; new fields are covered without changes here.
    /// </summary>
    [JsonPropertyName("mac"), JsonPropertyOrder(99)]
    public string? Mac { get; init; }
}
