namespace SplitFunctions.ClientAgent.Training;

/// <summary>How a training session ended.</summary>
public enum TrainingOutcome
{
    /// <summary>This hospital's part of the run is complete.</summary>
    Complete,

    /// <summary>A limit stopped the session; the next start continues.</summary>
    Paused,
}
