using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>Drain mode: the same server under <see cref="QueueDrainService"/>, which pulls the queue itself.</summary>
public static class DrainHost
{
    /// <summary>Longest wait between two looks at an empty queue.</summary>
    public static readonly TimeSpan MaxPollDelay = TimeSpan.FromMilliseconds(500);

    public static async Task RunAsync(bool exitWhenEmpty, string? instanceId, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.AddEscapingConsole();
        builder.Services.AddSplitServer(new ServerInstance(instanceId ?? ServerInstance.DefaultId));
        builder.Services.AddHostedService(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ServerOptions>>().Value;
            return new QueueDrainService(
                sp.GetRequiredService<StorageConnection>(),
                sp.GetRequiredService<IMessageProcessor>(),
                sp.GetRequiredService<PoisonQueue>(),
                new DrainOptions(options.VisibilityTimeout, options.MaxDequeueCount, exitWhenEmpty, MaxPollDelay) { OverlapCommits = options.OverlapCommits },
                sp.GetRequiredService<IHostApplicationLifetime>(),
                sp.GetRequiredService<ILogger<QueueDrainService>>());
        });
        using var host = builder.Build();
        host.Services.RequireValidSettings();
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
    }
}
