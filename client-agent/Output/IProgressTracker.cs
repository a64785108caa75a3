namespace SplitFunctions.ClientAgent.Output;

/// <summary>Where one training step stands, for the progress bar or the log line.</summary>
public sealed record StepProgress(string Phase, int Epoch, int Epochs, int Batch, int Batches, double? Loss, double SamplesPerSecond, long Sequence);

/// <summary>Reports progress of one long operation.</summary>
public interface IProgressTracker
{
    void Report(StepProgress progress);
}
