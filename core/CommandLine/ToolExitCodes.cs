namespace SplitFunctions.Core.CommandLine;

/// <summary>The exit codes every SplitFunctions command-line tool gives the same meaning; each tool's own codes take these values.</summary>
public static class ToolExitCodes
{
    /// <summary>Done what was asked.</summary>
    public const int Ok = 0;

    /// <summary>An unexpected failure (a bug).</summary>
    public const int InternalError = 1;

    /// <summary>The command line is wrong (unknown option, missing value).</summary>
    public const int Usage = 2;

    /// <summary>Stopped by Ctrl-C (or SIGTERM).</summary>
    public const int Cancelled = 130;
}
