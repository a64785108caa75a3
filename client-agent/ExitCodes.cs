using SplitFunctions.Core.CommandLine;

namespace SplitFunctions.ClientAgent;

/// <summary>The agent's exit codes; docs/agent.md lists them for the people who schedule it. Never renumber.</summary>
public enum ExitCode
{
    /// <summary>Done what was asked (including a bounded run that stopped at --max-minutes/--max-batches).</summary>
    Ok = ToolExitCodes.Ok,

    /// <summary>An unexpected failure (a bug); the message and stack trace go to stderr.</summary>
    InternalError = ToolExitCodes.InternalError,

    /// <summary>The command line is wrong (unknown option, missing value).</summary>
    Usage = ToolExitCodes.Usage,

    /// <summary>The agent configuration file is missing, unreadable or invalid.</summary>
    Configuration = 3,

    /// <summary>The local data set is missing, unreadable, or has the wrong shape, type or columns.</summary>
    Data = 4,

    /// <summary>The hospital key is missing, has the wrong key id, or its file is readable by others.</summary>
    Key = 5,

    /// <summary>Storage could not be reached (after retries and the outage budget).</summary>
    StorageUnreachable = 6,

    /// <summary>Storage refused the credentials (expired or wrong SAS, missing role) or a container/queue is missing.</summary>
    StorageAccess = 7,

    /// <summary>The run manifest is missing, invalid, or names a model the catalog does not have.</summary>
    Manifest = 8,

    /// <summary>No reply from the function within the reply timeout.</summary>
    FunctionTimeout = 9,

    /// <summary>The function rejected a message; the reason is printed. Not retried.</summary>
    Rejected = 10,

    /// <summary>Another agent holds the state folder's lock.</summary>
    StateLocked = 11,

    /// <summary>The local state is unreadable or belongs to another run, hospital or model.</summary>
    StateCorrupt = 12,

    /// <summary>A reply from the function failed verification (wrong name, length, SHA-256, key or format); nothing was applied.</summary>
    Protocol = 13,

    /// <summary>The run manifest is below this hospital's privacy floor (privacy.floor); the line names the setting. Nothing was sent.</summary>
    PrivacyFloor = 14,

    /// <summary>The next release would exceed privacy.maxEpsilon; the agent stopped before sending it.</summary>
    PrivacyBudget = 15,

    /// <summary>`evaluate --no-wait`: the server is still training a temporal run (the line says which epoch); nothing was evaluated.</summary>
    NotReady = 16,

    /// <summary>`evaluate`: the server's model changed between the batches of the evaluation more than the agent retries (others still train).</summary>
    ModelChanged = 17,

    /// <summary>Stopped by Ctrl-C or SIGTERM; state is consistent and the next start resumes.</summary>
    Cancelled = ToolExitCodes.Cancelled,
}
