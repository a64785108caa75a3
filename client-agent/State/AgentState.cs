using System.Text.Json.Serialization;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.ClientAgent.State;

/// <summary>
/// Everything the agent needs to continue a run after a stop or a crash (`&lt;state&gt;/&lt;run&gt;/state.json`). Written atomically
/// after each committed step: the file on disk always describes weights that exist and a cursor that matches them.
/// </summary>
public sealed record AgentState
{
    /// <summary>2: client weights and optimizer state are PyTorch state dicts written by TorchSharp (1: the retired native engine).</summary>
    public const int CurrentVersion = 2;

    [JsonPropertyName("v")] public int Version { get; init; } = CurrentVersion;
    public required string RunId { get; init; }
    public required string HospitalId { get; init; }
    public required string Model { get; init; }
    public required string Mode { get; init; }
    /// <summary>SHA-256 of the manifest this state was started under; a changed manifest mid-run is refused.</summary>
    public required string ManifestSha256 { get; init; }
    /// <summary>Training samples at the start; a changed data set mid-run is refused (the cursor would point elsewhere).</summary>
    public required int TrainSamples { get; init; }

    /// <summary>The epoch in progress (0-based); equals the manifest's epochs when training is complete.</summary>
    public int Epoch { get; init; }
    /// <summary>The next batch of <see cref="Epoch"/> to train (0-based).</summary>
    public int Batch { get; init; }
    /// <summary>The next sequence number; persisted before any message with it is sent.</summary>
    public long NextSequence { get; init; } = 1;
    /// <summary>Client optimizer steps applied so far.</summary>
    public long ClientSteps { get; init; }
    /// <summary>File (in the run folder) with the client weights after <see cref="ClientSteps"/> steps; null: the run's initial weights.</summary>
    public string? ClientWeights { get; init; }
    public string? OptimizerState { get; init; }
    /// <summary>U-shaped mode: files with the tail's weights and optimizer state; null: the run's initial tail.</summary>
    public string? TailWeights { get; init; }
    public string? TailOptimizerState { get; init; }
    /// <summary>Sum of batch loss x batch size over the epoch in progress, for its mean train loss.</summary>
    public double EpochLossSum { get; init; }
    public int EpochSamples { get; init; }

    /// <summary>Temporal mode: chunks of the training set uploaded and acknowledged locally.</summary>
    public int ChunksSent { get; init; }
    /// <summary>Temporal mode: the completion message was sent.</summary>
    public bool DoneSent { get; init; }

    /// <summary>A message whose sequence is taken and whose sealed frame is saved, not yet answered (or not yet sent).</summary>
    public PendingFrame? Pending { get; init; }
    /// <summary>
    /// Pipelined vanilla (manifest pipelineDepth): the training batches in flight, oldest first, consecutive batches of
    /// <see cref="Epoch"/> from <see cref="Batch"/> on; each has its sequence taken and its sealed frame saved. Null when none
    /// (and always in synchronous training, which uses <see cref="Pending"/>).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<PendingFrame>? InFlight { get; init; }
    /// <summary>
    /// The training-batch augmentation this state's pending batches were computed with (<see cref="AugmentationSettings.Describe"/>, "off"
    /// without it); null in states written before it was recorded. A pending batch is recomputed on restart, so it must not change then.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Augmentation { get; init; }
    /// <summary>The function's last rejection; the agent stops until the operator retries it.</summary>
    public RejectionRecord? LastRejection { get; init; }

    /// <summary>Every pass that released this hospital's samples to the server, and the epsilon they spend (docs/privacy.md).</summary>
    public ReleaseLedger Releases { get; init; } = new();

    /// <summary>The typical per-sample norm of the server's gradients so far (privacy.gradients); null before the first.</summary>
    public double? GradientScale { get; init; }
    /// <summary>Per-sample gradients from the server that fell outside the bound and were clipped, and the batches they came in.</summary>
    public long GradientRowsOutsideBound { get; init; }
    public int GradientBatchesOutsideBound { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>
/// The releases of this hospital's samples so far: each pass (a training epoch, a validation, an evaluation) sends every
/// sample of its split once, as a Gaussian mechanism with <see cref="NoiseMultiplier"/> when the run clips. Counted in the
/// same commit that makes the pass's first message pending, so a crash never loses a release from the count.
/// </summary>
public sealed record ReleaseLedger
{
    public int TrainingPasses { get; init; }
    public int ValidationPasses { get; init; }
    public int EvaluationPasses { get; init; }
    /// <summary>Sigma of the run's Gaussian mechanism; null when the run does not clip or adds no noise (no guarantee).</summary>
    public double? NoiseMultiplier { get; init; }
    public double Delta { get; init; }
    /// <summary>Epsilon at <see cref="Delta"/> over every release so far (RDP accountant); null: no guarantee.</summary>
    public double? Epsilon { get; init; }

    /// <summary>Releases of one sample, counted as if it were in every split (an upper bound: the splits are disjoint).</summary>
    [JsonIgnore]
    public int Releases => TrainingPasses + ValidationPasses + EvaluationPasses;
}

/// <summary>Why the function refused a message.</summary>
public sealed record RejectionRecord(long Sequence, FrameKind Kind, string Reason, DateTimeOffset At);
