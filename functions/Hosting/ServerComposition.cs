using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The server as both hosts (the Functions worker and drain mode) register it: settings, storage, keys, the engine, run
/// storage and leases, the steps, the message router that hands them messages, and the release of idle runs.
/// Registration only describes services: settings are read and validated when the host starts, storage and the engine
/// are touched when first used.
/// </summary>
public static class ServerComposition
{
    public static IServiceCollection AddSplitServer(this IServiceCollection services, ServerInstance instance)
    {
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidation>();
        services.AddSingleton(instance);
        services.AddSingleton(sp => StorageConnection.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        services.AddSingleton<ServerEngine>();
        // The operator's record is checked every few seconds on top of the key store, so `revoke` takes effect at once (issue 31).
        services.AddSingleton<IKeyProvider>(sp => new RegistryCheckedKeys(
            sp.GetRequiredService<IOptions<ServerOptions>>().Value is { KeyVaultUri: { } vault }
                ? new KeyVaultKeyProvider(new SecretClient(vault, new DefaultAzureCredential()))
                : new LocalKeyStore(sp.GetRequiredService<IOptions<ServerOptions>>().Value.KeyDirectory!),
            sp.GetRequiredService<StorageConnection>()));
        services.AddSingleton(sp => new ServerFrameStore(sp.GetRequiredService<StorageConnection>(), sp.GetRequiredService<IKeyProvider>()));
        services.AddSingleton(sp => new RunStore(sp.GetRequiredService<StorageConnection>().GetBlobContainerClient(StorageNames.RunsContainer),
            sp.GetRequiredService<IOptions<ServerOptions>>().Value.CheckpointRetention, sp.GetRequiredService<ILogger<RunStore>>()));
        services.AddSingleton(sp
            => new LeasedRuns(sp.GetRequiredService<RunStore>(), sp.GetRequiredService<ServerFrameStore>(), sp.GetRequiredService<ServerEngine>().Device,
            instance.Id, sp.GetRequiredService<ILogger<LeasedRuns>>()));
        services.AddSingleton(sp => new PoisonQueue(sp.GetRequiredService<StorageConnection>()));
        services.AddSingleton<StepTimeline>();
        services.AddSingleton<HospitalReplies>();
        services.AddSingleton<VanillaSteps>();
        services.AddSingleton<UShapedSteps>();
        services.AddSingleton(sp => new TemporalFeatureStream(sp.GetRequiredService<ServerFrameStore>(),
            new DecryptedChunkCache(sp.GetRequiredService<IOptions<ServerOptions>>().Value.TemporalCacheMiB * (1L << 20))));
        services.AddSingleton(sp => new TemporalEpochs(sp.GetRequiredService<LeasedRuns>(), sp.GetRequiredService<TemporalFeatureStream>(),
            sp.GetRequiredService<ILogger<TemporalEpochs>>(), sp.GetRequiredService<IOptions<ServerOptions>>().Value.TemporalWindowMiB * (1L << 20)));
        services.AddSingleton<TemporalChunks>();
        services.AddSingleton<RemoteEvaluation>();
        services.AddSingleton<MessageRouter>();
        services.AddSingleton<IMessageProcessor>(sp => sp.GetRequiredService<MessageRouter>());
        services.AddHostedService<IdleRunRelease>();
        return services;
    }

    /// <summary>
    /// What ValidateOnStart checks, before the host starts, so bad settings end as one line each (exit code 2) rather
    /// than the host's start-failure log with its stack trace.
    /// </summary>
    public static void RequireValidSettings(this IServiceProvider services)
    {
        _ = services.GetRequiredService<IOptions<ServerOptions>>().Value;
        // The storage settings too (StorageSettingsException names the setting), before the host starts any service.
        _ = services.GetRequiredService<StorageConnection>();
    }
}
