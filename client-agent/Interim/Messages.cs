// INTERIM: stands in for core/Protocol (branch `protocol`) until it lands; delete this folder then.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SplitFunctions.Core.Protocol;

/// <summary>Kinds of messages on the `features` queue.</summary>
public static class FrameKinds
{
    public const string Train = "train";
    public const string Chunk = "chunk";
    public const string Done = "done";
    public const string Evaluate = "evaluate";
}

/// <summary>Kinds of messages on `replies-&lt;hospital&gt;`.</summary>
public static class ReplyKinds
{
    public const string Gradients = "gradients";
    public const string Predictions = "predictions";
    public const string Accepted = "accepted";
    public const string Rejected = "rejected";
}

/// <summary>A hospital's message to the function: where the sealed frame is and how to check it.</summary>
public sealed record FrameMessage
{
    [JsonPropertyName("v")] public int Version { get; init; } = 1;
    [JsonPropertyName("run")] public required string Run { get; init; }
    [JsonPropertyName("hospital")] public required string Hospital { get; init; }
    [JsonPropertyName("seq")] public required long Sequence { get; init; }
    [JsonPropertyName("kind")] public required string Kind { get; init; }
    [JsonPropertyName("blob")] public string? Blob { get; init; }
    [JsonPropertyName("length")] public long Length { get; init; }
    [JsonPropertyName("sha256")] public string? Sha256 { get; init; }
    [JsonPropertyName("replyQueue")] public required string ReplyQueue { get; init; }
    [JsonPropertyName("keyId")] public required string KeyId { get; init; }
    [JsonPropertyName("chunkCount")] public int? ChunkCount { get; init; }
}

/// <summary>The function's answer to one frame message.</summary>
public sealed record ReplyMessage
{
    [JsonPropertyName("v")] public int Version { get; init; } = 1;
    [JsonPropertyName("run")] public required string Run { get; init; }
    [JsonPropertyName("hospital")] public required string Hospital { get; init; }
    [JsonPropertyName("seq")] public required long Sequence { get; init; }
    [JsonPropertyName("kind")] public required string Kind { get; init; }
    [JsonPropertyName("blob")] public string? Blob { get; init; }
    [JsonPropertyName("length")] public long Length { get; init; }
    [JsonPropertyName("sha256")] public string? Sha256 { get; init; }
    [JsonPropertyName("loss")] public double? Loss { get; init; }
    [JsonPropertyName("reason")] public string? Reason { get; init; }
}

/// <summary>JSON for queue messages.</summary>
public static class MessageCodec
{
    private static readonly JsonSerializerOptions Options = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static string Serialize(FrameMessage message) => JsonSerializer.Serialize(message, Options);

    public static string Serialize(ReplyMessage message) => JsonSerializer.Serialize(message, Options);

    public static FrameMessage ParseFrame(string text) => Parse<FrameMessage>(text);

    public static ReplyMessage ParseReply(string text) => Parse<ReplyMessage>(text);

    private static T Parse<T>(string text)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(text, Options) ?? throw new ProtocolException(ProtocolRejection.Malformed, "message is JSON null");
        }
        catch (JsonException e)
        {
            throw new ProtocolException(ProtocolRejection.Malformed, $"message is not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }
}
