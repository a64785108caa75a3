using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Runs;

/// <summary>One temporal-mode feature chunk the function has indexed (the blob stays in the hospital's container).</summary>
public sealed record FeatureChunk(string Hospital, long Sequence, string Blob, long Length, string Sha256, string KeyId);

/// <summary>A temporal epoch the server trained: its mean loss over the samples seen.</summary>
public sealed record EpochRecord(int Epoch, double Loss, int Samples, double Seconds);

/// <summary>A vanilla batch the server applied, with its loss.</summary>
public sealed record BatchRecord(string Hospital, long Sequence, double Loss, int Samples);

/// <summary>One durable fact in the run's journal: a message whose effect is applied (written before the message is deleted).</summary>
public sealed record JournalEntry(long Step, string Kind, string Hospital, long Sequence, string? Blob, long Length, string? Sha256, string KeyId,
    int? ChunkCount);

/// <summary>The pointer to a run's newest checkpoint (<see cref="RunLayout.LatestCheckpoint"/>).</summary>
public sealed record LatestCheckpoint(long Number, long Step, DateTimeOffset WrittenAt);

/// <summary>
/// What `run status` reads of a checkpoint's run state (<see cref="RunLayout.StateFile"/>): the function writes the whole
/// state (functions/Runs/RunState.cs), of the same records, with <see cref="RunLayout.Json"/>; the operator's tool reads
/// these fields of it without depending on the function's assembly.
/// </summary>
public sealed record RunProgress
{
    /// <summary>Journal entries applied up to the checkpoint.</summary>
    public long Step { get; init; }

    public long BatchesApplied { get; init; }

    public int EpochsCompleted { get; init; }

    /// <summary>Highest sequence applied per hospital.</summary>
    public Dictionary<string, long> Watermarks { get; init; } = new(StringComparer.Ordinal);

    public List<FeatureChunk> Chunks { get; init; } = [];

    public List<EpochRecord> Epochs { get; init; } = [];

    public List<BatchRecord> RecentBatches { get; init; } = [];
}
