namespace SplitFunctions.ClientAgent.Output;

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
