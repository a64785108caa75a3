using System.Text.Json;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>
/// Everything about a run's server side that is not tensors: how many steps were applied, the last sequence
/// applied per hospital (the replay watermark), temporal-mode progress and the loss history. Saved with every
/// checkpoint (<see cref="RunLayout.StateFile"/>); the journal replays what happened after it. `run status` reads
/// the part it shows (<see cref="RunProgress"/>) from the same JSON.
/// </summary>
public sealed record RunState
{
    /// <summary>2: server.pt and optimizer.bin are PyTorch state dicts written by TorchSharp (1: the retired native engine).</summary>
    public const int CurrentFormat = 2;

    /// <summary>Checkpoint format; 0 when the state was written before formats were recorded (format 1).</summary>
    public int Format { get; init; }

    /// <summary>Journal entries applied so far (also the next journal entry's number).</summary>
    public long Step { get; set; }

    /// <summary>Checkpoints written so far; names the next checkpoint's folder (steps repeat across temporal epochs).</summary>
    public long CheckpointNumber { get; set; }

    /// <summary>Training batches applied (vanilla) or server batches trained (temporal).</summary>
    public long BatchesApplied { get; set; }

    /// <summary>Highest training sequence applied per hospital; anything at or below is a replay.</summary>
    public Dictionary<string, long> Watermarks { get; init; } = new(StringComparer.Ordinal);

    public List<FeatureChunk> Chunks { get; init; } = [];

    /// <summary>Hospitals that sent their temporal completion message, with their chunk counts.</summary>
    public Dictionary<string, int> Done { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Temporal epochs completed over the union of features.</summary>
    public int EpochsCompleted { get; set; }

    public List<EpochRecord> Epochs { get; init; } = [];

    /// <summary>U-shaped mode: per hospital, the forward leg applied and waiting for its backward leg.</summary>
    public Dictionary<string, OpenForward> OpenForwards { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Temporal mode: bytes of sealed chunks per streamed window, fixed when the first epoch starts (0 before).</summary>
    public long TemporalWindowBytes { get; set; }

    /// <summary>Recent vanilla batch losses per hospital (bounded) for progress and reports.</summary>
    public List<BatchRecord> RecentBatches { get; init; } = [];

    public const int RecentBatchLimit = 2000;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this with { Format = CurrentFormat }, RunLayout.Json);

    /// <summary>Reads a checkpoint's state; one of another format is refused with both versions named.</summary>
    public static RunState FromJson(ReadOnlySpan<byte> json)
    {
        var state = JsonSerializer.Deserialize<RunState>(json, RunLayout.Json) ?? throw new InvalidDataException("run state is JSON null");
        if (state.Format != CurrentFormat)
            throw new InvalidDataException($"checkpoint format {Math.Max(state.Format, 1)} is not supported (this build reads format {CurrentFormat}, PyTorch "
                + $"state dicts written by TorchSharp): the run was written by an older SplitFunctions release; start a new run");
        return state;
    }

    public void RecordBatch(string hospital, long sequence, double loss, int samples)
    {
        RecentBatches.Add(new BatchRecord(hospital, sequence, loss, samples));
        if (RecentBatches.Count <= RecentBatchLimit) return;
        // Oldest first, but never a record inside its hospital's pipelining window: RunEffects.IsApplied tells a late
        // pipelined step from an applied one by these records (at most hospitals x MaxPipelineDepth are kept beyond the limit).
        var excess = RecentBatches.Count - RecentBatchLimit;
        var kept = new List<BatchRecord>(RecentBatchLimit + RunManifest.MaxPipelineDepth);
        foreach (var record in RecentBatches)
        {
            if (excess > 0 && !InPipelineWindow(record.Hospital, record.Sequence)) excess--;
            else kept.Add(record);
        }
        RecentBatches.Clear();
        RecentBatches.AddRange(kept);
    }

    /// <summary>
    /// Whether a training sequence is near enough to the hospital's watermark that a pipelined agent may still have it in
    /// flight unapplied: the agent keeps at most <see cref="RunManifest.MaxPipelineDepth"/> consecutive training sequences
    /// in flight and sends the next only after the oldest was answered.
    /// </summary>
    public bool InPipelineWindow(string hospital, long sequence) =>
        sequence > Watermarks.GetValueOrDefault(hospital, -1) - RunManifest.MaxPipelineDepth;
}

/// <summary>
/// A U-shaped forward leg the server answered and keeps for its backward leg (sequence + 1): where the head's
/// activations are, and when the leg was opened (a backward leg later than the manifest's timeout is refused).
/// </summary>
public sealed record OpenForward(long Sequence, string Blob, long Length, string Sha256, string KeyId, DateTimeOffset OpenedAt);
