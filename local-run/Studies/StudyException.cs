namespace SplitFunctions.LocalRun.Studies;

/// <summary>Exit codes of `splitfn-local` (docs/experiments.md, "Exit codes").</summary>
public enum StudyExitCode
{
    Ok = 0,
    /// <summary>A bug: the message and stack trace go to stderr.</summary>
    InternalError = 1,
    /// <summary>Wrong command line: an unknown option or arm, a malformed --categorical/--range/--lipids, --resume of another study.</summary>
    Usage = 2,
    /// <summary>The data file is missing or unreadable, a mapped column is not in it, or no usable rows are left.</summary>
    Data = 3,
    /// <summary>
    /// The model is unknown, its model file malformed or invalid (a layer, the shapes, the cut, the loss), or it does not fit the data (task, input width,
    /// channels).
    /// </summary>
    Model = 4,
    /// <summary>An arm failed while running; the message names its log folder. Finished arms are saved (--resume continues).</summary>
    ArmFailed = 5,
    /// <summary>Something the local system needs is not installed or built (Azurite, the function, the agent): run scripts/setup.sh.</summary>
    Setup = 6,
    /// <summary>
    /// `chaos`: an invariant broke under faults (a step lost or doubled, an unplanned crash, a hostile message not poisoned, temporal weights differ).
    /// </summary>
    InvariantBroken = 7,
    /// <summary>Ctrl-C: every process started has been stopped; finished arms are saved.</summary>
    Cancelled = 130,
}

/// <summary>A user error of a study: one line for the console and the exit code it ends with.</summary>
public sealed class StudyException : Exception
{
    public StudyException(StudyExitCode code, string message) : base(message) => Code = code;

    public StudyException(StudyExitCode code, string message, Exception inner) : base(message, inner) => Code = code;

    public StudyExitCode Code { get; }
}

/// <summary>A split-learning arm's processes failed; <see cref="LogFolder"/> holds their logs.</summary>
public sealed class ArmFailedException(string message, string logFolder) : Exception(message)
{
    public string LogFolder { get; } = logFolder;
}
