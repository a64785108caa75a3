using SplitFunctions.Core.Data;

namespace SplitFunctions.ClientAgent.Data;

/// <summary>This hospital's share of its local data, prepared for the run's model: training rows, and the held-out validation and test rows.</summary>
public sealed record HospitalData(TrainingSet Train, TrainingSet Validation, TrainingSet Test, string Summary, DataValidationReport? Report,
    ImageDataReport? ImageReport = null)
{
    /// <summary>
    /// Images: the per-channel statistics of this hospital's training rows that normalised every split (the audit prepares
    /// public images alike).
    /// </summary>
    public ChannelStatistics? ImageStatistics { get; init; }

    /// <summary>The held-out split by its command-line name.</summary>
    public TrainingSet Split(string name) => name switch
    {
        "test" => Test,
        "validation" => Validation,
        "train" => Train,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "use test, validation or train"),
    };
}
