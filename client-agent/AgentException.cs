namespace SplitFunctions.ClientAgent;

/// <summary>A failure the hospital's IT staff can act on: the message names the fix, the code says which kind it is.</summary>
public sealed class AgentException : Exception
{
    public AgentException(ExitCode code, string message) : base(message) => Code = code;

    public AgentException(ExitCode code, string message, Exception inner) : base(message, inner) => Code = code;

    public ExitCode Code { get; }
}
