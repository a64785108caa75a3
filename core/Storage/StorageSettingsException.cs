using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>A storage setting is missing or malformed; <see cref="Setting"/> names the one to fix.</summary>
public sealed class StorageSettingsException(string setting, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The setting (or connection-string part) to fix, e.g. `AzureWebJobsStorage` or `AzureWebJobsStorage__queueServiceUri`.</summary>
    public string Setting { get; } = setting;
}
