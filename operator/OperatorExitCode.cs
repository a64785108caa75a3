using SplitFunctions.Core.CommandLine;

namespace SplitFunctions.Operator;

/// <summary>The operator tool's exit codes; docs/operator.md lists them. Never renumber.</summary>
public enum OperatorExitCode
{
    /// <summary>Done what was asked.</summary>
    Ok = ToolExitCodes.Ok,

    /// <summary>An unexpected failure (a bug); the message goes to stderr.</summary>
    InternalError = ToolExitCodes.InternalError,

    /// <summary>The command line is wrong (unknown option, missing value).</summary>
    Usage = ToolExitCodes.Usage,

    /// <summary>Storage or key settings are missing or invalid (connection string, account, key folder, Key Vault).</summary>
    Settings = 3,

    /// <summary>The request is invalid (a hospital or run id, a run setting, a combination of options); nothing was written.</summary>
    Invalid = 4,

    /// <summary>The hospital, run or poisoned message does not exist.</summary>
    NotFound = 5,

    /// <summary>The hospital or run exists already.</summary>
    AlreadyExists = 6,

    /// <summary>The hospital was revoked.</summary>
    Revoked = 7,

    /// <summary>Storage or Key Vault could not be reached.</summary>
    Unreachable = 8,

    /// <summary>Storage or Key Vault refused the operator's credentials (401/403: key, role assignment).</summary>
    AccessDenied = 9,

    /// <summary>Stopped by Ctrl-C.</summary>
    Cancelled = ToolExitCodes.Cancelled,
}
