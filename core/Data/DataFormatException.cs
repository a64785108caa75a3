namespace SplitFunctions.Core.Data;

/// <summary>A data file cannot be read as what it claims to be; the message names the file and the fix.</summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string filePath, string message)
        : base($"{filePath}: {message}") => FilePath = filePath;

    public DataFormatException(string filePath, string message, Exception inner)
        : base($"{filePath}: {message}", inner) => FilePath = filePath;

    /// <summary>The file (or archive member, as archive:member) that failed.</summary>
    public string FilePath { get; }
}
