using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Training;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Wires the training service the same way for the custom handler and drain mode.</summary>
public static class ServerComposition
{
    public static IServiceCollection AddSplitFunctionsServer(this IServiceCollection services, IConfiguration configuration, string instanceId)
    {
        var settings = ServerSettings.From(configuration);
        if (settings.Threads > 0) TorchRuntime.Threads = settings.Threads;
        else TorchRuntime.EnsureConfigured();
        var device = TorchRuntime.ParseDevice(settings.Device);
        var storage = StorageConnection.FromConfiguration(configuration);

        services.AddSingleton(settings);
        services.AddSingleton(storage);
        services.AddSingleton<IKeyProvider>(_ => settings.KeyVaultUri is { } vault
            ? new KeyVaultKeyProvider(new SecretClient(vault, new DefaultAzureCredential()))
            : new LocalKeyStore(settings.KeyDirectory!));
        services.AddSingleton(sp => new FrameIo(storage, sp.GetRequiredService<IKeyProvider>()));
        services.AddSingleton(_ => new RunStore(storage.GetBlobContainerClient(StorageNames.RunsContainer), settings.CheckpointRetention));
        services.AddSingleton(sp => new RunSessions(sp.GetRequiredService<RunStore>(), sp.GetRequiredService<FrameIo>(), device, instanceId,
            sp.GetRequiredService<ILogger<RunSessions>>()));
        services.AddSingleton(sp => new TrainingService(sp.GetRequiredService<RunSessions>(), sp.GetRequiredService<FrameIo>(),
            storage.GetQueueClient(StorageNames.FeaturesPoisonQueue), sp.GetRequiredService<ILogger<TrainingService>>()));
        services.AddSingleton<IMessageProcessor>(sp => sp.GetRequiredService<TrainingService>());
        services.AddHostedService<SessionHousekeeping>();
        return services;
    }
}

/// <summary>Checkpoints and releases idle runs, and every run at shutdown, so no applied step waits on a crash to be replayed.</summary>
internal sealed class SessionHousekeeping(RunSessions sessions) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken).ConfigureAwait(false);
                await sessions.ReleaseIdleAsync(all: false, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await sessions.ReleaseIdleAsync(all: true, cancellationToken).ConfigureAwait(false);
    }
}
