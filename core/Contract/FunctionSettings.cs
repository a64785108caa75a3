namespace SplitFunctions.Core.Contract;

/// <summary>
/// Every app setting the function reads, in one place: Bicep (`infra-bicep/`) and `local.settings.sample.json`
/// must set exactly these (a test checks it). Double underscores are the environment-variable form of
/// configuration sections, as Azure Functions uses them.
/// </summary>
public static class FunctionSettings
{
    /// <summary>Storage connection: a connection string, or the prefix of the identity-based settings below.</summary>
    public const string Storage = "AzureWebJobsStorage";

    /// <summary>Identity-based storage: account name (Azure), instead of a connection string.</summary>
    public const string StorageAccountName = "AzureWebJobsStorage__accountName";

    /// <summary>Identity-based storage: `managedidentity` to use a user-assigned identity.</summary>
    public const string StorageCredential = "AzureWebJobsStorage__credential";

    /// <summary>Identity-based storage: client id of the user-assigned managed identity.</summary>
    public const string StorageClientId = "AzureWebJobsStorage__clientId";

    /// <summary>Identity-based storage: blob endpoint (Azure sets it from the account, so no cloud's DNS suffix is assumed).</summary>
    public const string StorageBlobServiceUri = "AzureWebJobsStorage__blobServiceUri";

    /// <summary>Identity-based storage: queue endpoint, set together with <see cref="StorageBlobServiceUri"/>.</summary>
    public const string StorageQueueServiceUri = "AzureWebJobsStorage__queueServiceUri";

    /// <summary>Key Vault URI holding one secret per hospital key (Azure); unset means the local key folder.</summary>
    public const string KeyVaultUri = "SplitFunctions__KeyVaultUri";

    /// <summary>Folder with local hospital key files (development, Azurite).</summary>
    public const string KeyDirectory = "SplitFunctions__KeyDirectory";

    /// <summary>`auto` (CUDA when present), `cpu` or `cuda[:n]`.</summary>
    public const string Device = "SplitFunctions__Device";

    /// <summary>Intra-op threads for libtorch; 0 or unset means the processor count.</summary>
    public const string Threads = "SplitFunctions__Threads";

    /// <summary>How many checkpoints to keep per run besides `latest`.</summary>
    public const string CheckpointRetention = "SplitFunctions__CheckpointRetention";

    /// <summary>
    /// Deliveries after which a failing message is poisoned: drain mode's count, and the one the function compares with host.json's maxDequeueCount.
    /// </summary>
    public const string MaxDequeueCount = "SplitFunctions__MaxDequeueCount";

    /// <summary>Drain mode: visibility timeout of a received message, renewed while it is being worked on.</summary>
    public const string VisibilityTimeoutSeconds = "SplitFunctions__VisibilityTimeoutSeconds";

    /// <summary>Temporal mode: MiB of sealed feature chunks per streamed window; bounds the function's memory whatever the data size.</summary>
    public const string TemporalWindowMiB = "SplitFunctions__TemporalWindowMiB";

    /// <summary>Temporal mode: MiB of decrypted feature chunks kept between epochs (0: none); a fixed bound, whatever the data size.</summary>
    public const string TemporalCacheMiB = "SplitFunctions__TemporalCacheMiB";

    /// <summary>Drain mode: begin the next message while the current one's reply, journal entry and deletion finish.</summary>
    public const string OverlapCommits = "SplitFunctions__OverlapCommits";

    /// <summary>All of the above, for the consistency test and start-up diagnostics.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        Storage, StorageAccountName, StorageBlobServiceUri, StorageQueueServiceUri, StorageCredential, StorageClientId,
        KeyVaultUri, KeyDirectory, Device, Threads, CheckpointRetention, MaxDequeueCount, VisibilityTimeoutSeconds, TemporalWindowMiB, TemporalCacheMiB,
            OverlapCommits,
    ];
}
