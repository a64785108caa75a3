using System.Text.Json.Serialization;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.ClientAgent.State;

/// <summary>The message in flight: re-sent as is (same sequence, same sealed bytes) after a restart.</summary>
public sealed record PendingFrame
{
    public required long Sequence { get; init; }
    public required FrameKind Kind { get; init; }
    public string? Blob { get; init; }
    public long Length { get; init; }
    public string? Sha256 { get; init; }
    /// <summary>Vanilla: which batch this is, so the client forward can be recomputed for the backward pass.</summary>
    public int Epoch { get; init; }
    public int Batch { get; init; }
    /// <summary>Temporal `chunk`: its index; `done`: the number of chunks.</summary>
    public int? Chunk { get; init; }
    public int? ChunkCount { get; init; }
    /// <summary>U-shaped `backward` leg: the batch loss the tail computed (it never leaves the hospital).</summary>
    public double? Loss { get; init; }

    /// <summary>
    /// Pipelined vanilla: the client steps applied when this batch's forward ran, and the weight file holding those weights
    /// (null: the run's initial weights), kept until the batch is applied so a restart recomputes the forward exactly as sent.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? ForwardSteps { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ForwardWeights { get; init; }

    /// <summary>
    /// The pending message for a sealed frame: its sequence, kind, blob, length and digest, the part every sender
    /// records the same way; callers add what their kind needs (`with { Epoch = ..., Batch = ... }`).
    /// </summary>
    public static PendingFrame For(long sequence, FrameKind kind, FeatureFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        return new() { Sequence = sequence, Kind = kind, Blob = frame.Blob, Length = frame.Length, Sha256 = frame.Sha256 };
    }
}
