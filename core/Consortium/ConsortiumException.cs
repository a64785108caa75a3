namespace SplitFunctions.Core.Consortium;

/// <summary>What kind of operator request was refused.</summary>
public enum ConsortiumError
{
    /// <summary>A value is invalid (id, setting, combination of options).</summary>
    Invalid,

    /// <summary>The hospital or run does not exist.</summary>
    NotFound,

    /// <summary>The hospital or run exists already.</summary>
    AlreadyExists,

    /// <summary>The hospital was revoked.</summary>
    Revoked,
}

/// <summary>An operator request refused before anything was written; the message says what to do.</summary>
public sealed class ConsortiumException(ConsortiumError error, string message, Exception? inner = null) : Exception(message, inner)
{
    public ConsortiumError Error { get; } = error;
}
