namespace SplitFunctions.Operator;

/// <summary>A failure with its exit code and one line for the operator.</summary>
public sealed class OperatorException(OperatorExitCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public OperatorExitCode Code { get; } = code;
}
