using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.ProcessFeatures;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

using SdkQueueMessage = Azure.Storage.Queues.Models.QueueMessage;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// The isolated worker's function class as the Functions host runs it, without the host (it cannot run here): the same
/// composition the worker registers, and real messages received from Azurite handed to the trigger's entry point.
/// A successful invocation deletes the message, a failed one makes it visible again, as the host does.
/// </summary>
internal sealed class WorkerRig : IAsyncDisposable
{
    private readonly ServiceProvider services;

    public WorkerRig(RunHarness run, string instanceId = "worker-a", TimeSpan? leaseWait = null)
    {
        Run = run;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [FunctionSettings.Storage] = run.Azurite.ConnectionString,
            [Key(FunctionSettings.KeyDirectory)] = run.KeyFolder,
            [Key(FunctionSettings.Device)] = "cpu",
            [Key(FunctionSettings.Threads)] = "1",
        }).Build();
        var collection = new ServiceCollection();
        collection.AddSingleton<IConfiguration>(configuration);
        collection.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        collection.AddSplitServer(new ServerInstance(instanceId));
        services = collection.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        services.RequireValidSettings();
        Function = new ProcessFeaturesFunction(services.GetRequiredService<IMessageProcessor>(), services.GetRequiredService<PoisonQueue>(),
            services.GetRequiredService<StorageConnection>(),
            services.GetRequiredService<IOptions<ServerOptions>>(), services.GetRequiredService<ILogger<ProcessFeaturesFunction>>())
        {
            LeaseWait = leaseWait ?? ProcessFeaturesFunction.DefaultLeaseWait,
        };
    }

    public RunHarness Run { get; }

    public ProcessFeaturesFunction Function { get; }

    public LeasedRuns Runs => services.GetRequiredService<LeasedRuns>();

    private static string Key(string setting) => setting.Replace("__", ":", StringComparison.Ordinal);

    /// <summary>
    /// Receives the next `features` message with the official queue client, in the trigger's encoding, and invokes the
    /// function with it; returns the invocation's failure (null when it succeeded and the message was deleted).
    /// </summary>
    public async Task<(Exception? Failure, SdkQueueMessage Message)> DeliverNextAsync(CancellationToken ct = default)
    {
        var queue = FeaturesQueue();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var received = (await queue.ReceiveMessageAsync(TimeSpan.FromMinutes(5), ct)).Value;
            if (received is not null)
            {
                try
                {
                    await Function.RunAsync(received, ct);
                }
#pragma warning disable CA1031 // The failure is the result under test.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    await queue.UpdateMessageAsync(received.MessageId, received.PopReceipt, visibilityTimeout: TimeSpan.Zero,
                        cancellationToken: CancellationToken.None);
                    return (e, received);
                }
                await queue.DeleteMessageAsync(received.MessageId, received.PopReceipt, CancellationToken.None);
                return (null, received);
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException("no message on 'features' within 30 s");
            await Task.Delay(50, ct);
        }
    }

    /// <summary>The `features` queue through Azure.Storage.Queues, base64 as host.json's messageEncoding says.</summary>
    public QueueClient FeaturesQueue()
    {
        return new QueueClient(Run.Azurite.ConnectionString, "features", StorageClientDefaults.Queue());
    }

    public async ValueTask DisposeAsync()
    {
        await services.GetRequiredService<LeasedRuns>().DisposeAsync();
        await services.DisposeAsync();
    }
}
