using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Hosting;

/// <summary>This server instance's stable id: it names the run leases it takes, so a restart under the same id takes them back at once.</summary>
public sealed record ServerInstance(string Id)
{
    /// <summary>The replica name Azure Container Apps sets, else the machine name.</summary>
    public static string DefaultId => Environment.GetEnvironmentVariable("CONTAINER_APP_REPLICA_NAME") ?? Environment.MachineName;
}

/// <summary>
/// The training service as both hosts (the Functions worker and drain mode) register it. Registration only describes
/// services: settings are read and validated when the host starts, storage and the engine are touched when first used.
/// </summary>
public static class ServerComposition
{
    public static IServiceCollection AddTrainingService(this IServiceCollection services, ServerInstance instance)
    {
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidation>();
        services.AddSingleton(instance);
        services.AddSingleton(sp => StorageConnection.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        services.AddSingleton<ServerEngine>();
        services.AddSingleton<IKeyProvider>(sp => sp.GetRequiredService<IOptions<ServerOptions>>().Value is { KeyVaultUri: { } vault }
            ? new KeyVaultKeyProvider(new SecretClient(vault, new DefaultAzureCredential()))
            : new LocalKeyStore(sp.GetRequiredService<IOptions<ServerOptions>>().Value.KeyDirectory!));
        services.AddSingleton(sp => new ServerFrameStore(sp.GetRequiredService<StorageConnection>(), sp.GetRequiredService<IKeyProvider>()));
        services.AddSingleton(sp => new RunStore(sp.GetRequiredService<StorageConnection>().GetBlobContainerClient(StorageNames.RunsContainer),
            sp.GetRequiredService<IOptions<ServerOptions>>().Value.CheckpointRetention));
        services.AddSingleton(sp => new LeasedRuns(sp.GetRequiredService<RunStore>(), sp.GetRequiredService<ServerFrameStore>(), sp.GetRequiredService<ServerEngine>().Device,
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
        services.AddHostedService<SessionHousekeeping>();
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

/// <summary>The engine as the settings ask for it: libtorch's thread count set and the device chosen, once, when first needed.</summary>
public sealed class ServerEngine
{
    public ServerEngine(IOptions<ServerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Value.Threads > 0) TorchRuntime.Threads = options.Value.Threads;
        else TorchRuntime.EnsureConfigured();
        Device = TorchRuntime.ParseDevice(options.Value.Device);
    }

    public TorchSharp.torch.Device Device { get; }
}

/// <summary>Checkpoints and releases idle runs, and every run at shutdown, so no applied step waits on a crash to be replayed.</summary>
internal sealed partial class SessionHousekeeping(LeasedRuns sessions, ILogger<SessionHousekeeping> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken).ConfigureAwait(false);
                try
                {
                    await sessions.ReleaseIdleAsync(all: false, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (StorageOutage.IsTransient(e, stoppingToken))
                {
                    // A failed background service stops the host: an outage only postpones the checkpoint (the journal has every step).
                    LogPostponed(logger, StorageOutage.Describe(e));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await sessions.ReleaseIdleAsync(all: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StorageOutage.IsTransient(e, cancellationToken))
        {
            LogPostponed(logger, StorageOutage.Describe(e));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "checkpoint of idle runs postponed: storage unavailable ({Reason}); the journal holds every applied step")]
    private static partial void LogPostponed(ILogger logger, string reason);
}
