using System.Text.Json.Serialization;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>What a frame message asks of the function.</summary>
public enum FrameKind
{
    /// <summary>Vanilla mode: one batch of features and labels; answered with gradients.</summary>
    Train,

    /// <summary>Temporal mode: one chunk of the hospital's training features and labels; answered with "accepted".</summary>
    Chunk,

    /// <summary>Temporal mode: the hospital has uploaded all <see cref="FrameMessage.ChunkCount"/> chunks; no blob.</summary>
    Done,

    /// <summary>Held-out features; answered with predictions (U-shaped runs: with server outputs).</summary>
    Evaluate,

    /// <summary>U-shaped mode, first leg: the head's activations only; answered with the server's outputs.</summary>
    Forward,

    /// <summary>U-shaped mode, second leg: dL/d(server output) for the forward leg at sequence - 1; answered with dL/dA.</summary>
    Backward,
}

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
}

/// <summary>
/// The fields a frame message and its reply share: the run, the hospital, the sequence number and the sealed blob it
/// names (if any). The explicit property order keeps the JSON of both messages as it was field by field.
/// </summary>
public abstract record RunMessage
{
    [JsonPropertyName("v"), JsonRequired, JsonPropertyOrder(0)]
    public int Version { get; init; } = MessageCodec.CurrentVersion;

    [JsonPropertyName("run"), JsonPropertyOrder(1)]
    public required string RunId { get; init; }

    [JsonPropertyName("hospital"), JsonPropertyOrder(2)]
    public required string HospitalId { get; init; }

    [JsonPropertyName("seq"), JsonPropertyOrder(3)]
    public required long Sequence { get; init; }

    /// <summary>
    /// Frames: blob name in the hospital's container, under `features/&lt;run&gt;/`; null for <see cref="FrameKind.Done"/>.
    /// Replies: blob name under `gradients/&lt;run&gt;/` or `predictions/&lt;run&gt;/`; only with a payload.
    /// </summary>
    [JsonPropertyName("blob"), JsonPropertyOrder(5)]
    public string? Blob { get; init; }

    /// <summary>Sealed blob length in bytes; 0 without a blob.</summary>
    [JsonPropertyName("length"), JsonPropertyOrder(6)]
    public long Length { get; init; }

    /// <summary>Lowercase hex SHA-256 of the sealed blob.</summary>
    [JsonPropertyName("sha256"), JsonPropertyOrder(7)]
    public string? Sha256 { get; init; }

    /// <summary>
    /// Frames: key id of the hospital key the blob was sealed with and the MAC is made under (every kind, `done` included).
    /// Replies: key id the reply blob was sealed with; only with a payload.
    /// </summary>
    [JsonPropertyName("keyId"), JsonPropertyOrder(9)]
    public string? KeyId { get; init; }
}

/// <summary>
/// Message an agent puts on the `features` queue: which sealed blob to process and how to check it, and the MAC that
/// proves its hospital (<see cref="MessageAuthentication"/>). Version 2 (version 1 had no MAC and is refused).
/// </summary>
public sealed record FrameMessage : RunMessage
{
    [JsonPropertyName("kind"), JsonConverter(typeof(StrictEnumConverter<FrameKind>)), JsonPropertyOrder(4)]
    public required FrameKind Kind { get; init; }

    /// <summary>Always `replies-&lt;hospital&gt;`: a message cannot send answers to another hospital.</summary>
    [JsonPropertyName("replyQueue"), JsonPropertyOrder(8)]
    public required string ReplyQueue { get; init; }

    [JsonPropertyName("epoch"), JsonPropertyOrder(10)]
    public int? Epoch { get; init; }

    [JsonPropertyName("batch"), JsonPropertyOrder(11)]
    public int? Batch { get; init; }

    /// <summary>Chunks uploaded in total; only on <see cref="FrameKind.Done"/>.</summary>
    [JsonPropertyName("chunkCount"), JsonPropertyOrder(12)]
    public int? ChunkCount { get; init; }

    /// <summary>HMAC-SHA256 (hex) of the other fields under the hospital's key <see cref="RunMessage.KeyId"/>: <see cref="MessageAuthentication.Sign"/>.</summary>
    [JsonPropertyName("mac"), JsonPropertyOrder(13)]
    public string? Mac { get; init; }
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
}
