namespace SplitFunctions.ClientAgent.Output;

/// <summary>How the agent talks to the person or the log collector that runs it.</summary>
public interface IAgentOutput
{
    void Info(string message);

    void Warn(string message);

    /// <summary>Runs <paramref name="work"/> with a tracker over <paramref name="total"/> steps of which <paramref name="done"/> are already done.</summary>
    Task<T> TrackAsync<T>(string title, long total, long done, Func<IProgressTracker, Task<T>> work);
}
