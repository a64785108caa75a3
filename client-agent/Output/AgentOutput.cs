namespace SplitFunctions.ClientAgent.Output;

/// <summary>Where one training step stands, for the progress bar or the log line.</summary>
public sealed record StepProgress(string Phase, int Epoch, int Epochs, int Batch, int Batches, double? Loss, double SamplesPerSecond, long Sequence);

/// <summary>Reports progress of one long operation.</summary>
public interface IProgressTracker
{
    void Report(StepProgress progress);
}

/// <summary>How the agent talks to the person or the log collector that runs it.</summary>
public interface IAgentOutput
{
    void Info(string message);

    void Warn(string message);

    /// <summary>Runs <paramref name="work"/> with a tracker over <paramref name="total"/> steps of which <paramref name="done"/> are already done.</summary>
    Task<T> TrackAsync<T>(string title, long total, long done, Func<IProgressTracker, Task<T>> work);
}

/// <summary>Picks the output style: a Spectre progress bar on a terminal, structured log lines otherwise.</summary>
public static class AgentOutputs
{
    public const string Auto = "auto";
    public const string Progress = "progress";
    public const string Log = "log";

    public static IAgentOutput Create(string mode, TextWriter output, TextWriter error, int logEvery)
    {
        var interactive = !Console.IsOutputRedirected && !Console.IsErrorRedirected && ReferenceEquals(output, Console.Out);
        return mode switch
        {
            Progress => new SpectreOutput(),
            Log => new LogLineOutput(output, error, logEvery),
            _ => interactive ? new SpectreOutput() : new LogLineOutput(output, error, logEvery),
        };
    }
}
