using System.Text.Json.Serialization;

namespace SplitFunctions.Core.Contract;

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

    /// <summary>
    /// The sealed frame itself (base64url, <see cref="MessageCodec.InlineText"/>), when it is small enough to travel in the message
    /// (<see cref="MessageCodec.MaxInlineBytes"/>): the sender uploads no blob and the receiver downloads none. The other
    /// payload fields stay as for a blob (the name is where the frame would lie; the server writes an inline `train`
    /// frame there itself before its journal entry refers to it), and the bytes are checked exactly like a blob's:
    /// announced length before decoding, seal digest, then the envelope. Absent on every message of earlier releases.
    /// </summary>
    [JsonPropertyName("inline"), JsonPropertyOrder(14)]
    public string? Inline { get; init; }
}
