using System.Globalization;
using Microsoft.Extensions.Configuration;
using SplitFunctions.Core.Configuration;

namespace SplitFunctions.Functions.Hosting;

/// <summary>The function's settings, read only through <see cref="FunctionSettings"/> names so Bicep and the sample cannot drift.</summary>
public sealed record ServerSettings(string Device, int Threads, int CheckpointRetention, int MaxDequeueCount, TimeSpan VisibilityTimeout, Uri? KeyVaultUri, string? KeyDirectory)
{
    public static ServerSettings From(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var keyVault = Read(configuration, FunctionSettings.KeyVaultUri);
        var keyDirectory = Read(configuration, FunctionSettings.KeyDirectory);
        if (keyVault is null && keyDirectory is null)
        {
            throw new InvalidOperationException(
                $"No hospital keys configured: set {FunctionSettings.KeyVaultUri} (Azure Key Vault) or {FunctionSettings.KeyDirectory} (a local key folder).");
        }
        return new ServerSettings(
            Read(configuration, FunctionSettings.Device) ?? "auto",
            Int(configuration, FunctionSettings.Threads, 0, 0, 1024),
            Int(configuration, FunctionSettings.CheckpointRetention, 3, 1, 1000),
            Int(configuration, FunctionSettings.MaxDequeueCount, 5, 1, 100),
            TimeSpan.FromSeconds(Int(configuration, FunctionSettings.VisibilityTimeoutSeconds, 60, 5, 3600)),
            keyVault is null ? null : new Uri(keyVault),
            keyDirectory);
    }

    /// <summary>Reads a setting by its app-setting name (`A__B` is configuration key `A:B`).</summary>
    public static string? Read(IConfiguration configuration, string name)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(name);
        var value = configuration[name.Replace("__", ":", StringComparison.Ordinal)];
        return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    }

    private static int Int(IConfiguration configuration, string name, int fallback, int min, int max)
    {
        var text = Read(configuration, name);
        if (text is null) return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new InvalidOperationException($"Setting {name}='{text}' is invalid: use a whole number from {min} to {max}.");
        }
        return value;
    }
}
