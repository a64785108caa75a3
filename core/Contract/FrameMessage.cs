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

    /// <summary>
    /// HMAC-SHA256 (hex) of the other fields under the hospital's key <see cref="RunMessage.KeyId"/>: <see cref="MessageAuthentication.Sign"/>.
    /// </summary>
    [JsonPropertyName("mac"), JsonPropertyOrder(13)]
    public string? Mac { get; init; }
}
