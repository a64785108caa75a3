using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The server's settings, the configuration section `SplitFunctions` (app settings `SplitFunctions__*`, named once in
/// <see cref="FunctionSettings"/> so Bicep and the sample cannot drift). Bound and validated when a host starts.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>The configuration section: `SplitFunctions__Device` is key `SplitFunctions:Device`.</summary>
    public const string Section = "SplitFunctions";

    /// <summary>`auto` (CUDA when present), `cpu` or `cuda`.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Intra-op threads for libtorch; 0 means the processor count.</summary>
    public int Threads { get; set; }

    /// <summary>Checkpoints kept per run besides `latest`.</summary>
    public int CheckpointRetention { get; set; } = 3;

    /// <summary>Deliveries after which a failing message is poisoned; the same number as host.json's maxDequeueCount.</summary>
    public int MaxDequeueCount { get; set; } = DefaultMaxDequeueCount;

    /// <summary>Drain mode: how long a received message stays invisible; renewed at a third of it while worked on.</summary>
    public int VisibilityTimeoutSeconds { get; set; } = 60;

    /// <summary>Temporal mode: MiB of sealed feature chunks per streamed window (two windows are in memory at once).</summary>
    public int TemporalWindowMiB { get; set; } = (int)(TemporalFeatureStream.DefaultWindowBytes >> 20);

    /// <summary>Temporal mode: MiB of decrypted chunks kept between epochs (<see cref="DecryptedChunkCache"/>; 0: none).</summary>
    public int TemporalCacheMiB { get; set; } = (int)(DecryptedChunkCache.DefaultBudgetBytes >> 20);

    /// <summary>Drain mode: <see cref="DrainOptions.OverlapCommits"/>.</summary>
    public bool OverlapCommits { get; set; } = true;

    /// <summary>Key Vault holding one secret per hospital key (Azure).</summary>
    public Uri? KeyVaultUri { get; set; }

    /// <summary>Folder with local hospital key files (development, Azurite).</summary>
    public string? KeyDirectory { get; set; }

    /// <summary>host.json's `extensions.queues.maxDequeueCount` (a test keeps the two equal).</summary>
    public const int DefaultMaxDequeueCount = 5;

    public TimeSpan VisibilityTimeout => TimeSpan.FromSeconds(VisibilityTimeoutSeconds);
}

/// <summary>Checks <see cref="ServerOptions"/> and the storage connection at start, with messages that name the app setting to fix.</summary>
public sealed class ServerOptionsValidation(IConfiguration configuration) : IValidateOptions<ServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        try
        {
            _ = StorageConnection.FromConfiguration(configuration);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            failures.Add(e.Message);
        }
        if (options.KeyVaultUri is null && string.IsNullOrWhiteSpace(options.KeyDirectory))
        {
            failures.Add($"No hospital keys configured: set {FunctionSettings.KeyVaultUri} (Azure Key Vault) or {FunctionSettings.KeyDirectory} (a local key "
                + $"folder).");
        }
        if (options.KeyVaultUri is { IsAbsoluteUri: false } or { Scheme: not "https" })
        {
            failures.Add($"{FunctionSettings.KeyVaultUri}='{options.KeyVaultUri}' is not an https URI of a Key Vault.");
        }
        if (options.Device.Trim().ToLowerInvariant() is not ("auto" or "cpu" or "cuda" or "gpu"))
        {
            failures.Add($"{FunctionSettings.Device}='{options.Device}' is invalid: use auto, cpu or cuda.");
        }
        Range(failures, FunctionSettings.Threads, options.Threads, 0, 1024);
        Range(failures, FunctionSettings.CheckpointRetention, options.CheckpointRetention, 1, 1000);
        Range(failures, FunctionSettings.MaxDequeueCount, options.MaxDequeueCount, 1, 100);
        Range(failures, FunctionSettings.VisibilityTimeoutSeconds, options.VisibilityTimeoutSeconds, 5, 3600);
        Range(failures, FunctionSettings.TemporalWindowMiB, options.TemporalWindowMiB, 1, 65536);
        Range(failures, FunctionSettings.TemporalCacheMiB, options.TemporalCacheMiB, 0, 1 << 20);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Range(List<string> failures, string setting, int value, int min, int max)
    {
        if (value < min || value > max) failures.Add($"{setting}={value} is invalid: use a whole number from {min} to {max}.");
    }
}
