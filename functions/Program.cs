using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SplitFunctions.Core.Configuration;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;

// The server of SplitFunctions. Two ways in, one training service:
//   serve  the Azure Functions custom handler (default when the host sets FUNCTIONS_CUSTOMHANDLER_PORT)
//   drain  pulls the `features` queue itself (local runs on Azurite, Container Apps jobs)
var mode = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : (Environment.GetEnvironmentVariable(FunctionSettings.CustomHandlerPort) is null ? "help" : "serve");
var exitWhenEmpty = args.Contains("--exit-when-empty");
var instanceId = Option("--instance-id") ?? Environment.GetEnvironmentVariable("CONTAINER_APP_REPLICA_NAME") ?? Environment.MachineName;

switch (mode)
{
    case "serve":
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        var port = Environment.GetEnvironmentVariable(FunctionSettings.CustomHandlerPort) ?? "7071";
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddSplitFunctionsServer(builder.Configuration, instanceId);
        var app = builder.Build();
        CustomHandler.Map(app);
        await app.RunAsync().ConfigureAwait(false);
        return 0;
    }
    case "drain":
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddSplitFunctionsServer(builder.Configuration, instanceId);
        builder.Services.AddSingleton(sp =>
        {
            var settings = sp.GetRequiredService<ServerSettings>();
            return new DrainOptions(settings.VisibilityTimeout, settings.MaxDequeueCount, exitWhenEmpty, TimeSpan.FromMilliseconds(500));
        });
        builder.Services.AddSingleton(sp => sp.GetRequiredService<StorageConnection>().GetQueueClient(StorageNames.FeaturesQueue));
        builder.Services.AddHostedService<QueueDrainService>();
        using var host = builder.Build();
        await host.RunAsync().ConfigureAwait(false);
        return 0;
    }
    default:
        Console.WriteLine("""
            SplitFunctions server: trains the server layers of split-learning runs.

            Usage:
              SplitFunctions.Functions serve                 Azure Functions custom handler on FUNCTIONS_CUSTOMHANDLER_PORT
              SplitFunctions.Functions drain [options]       pull the 'features' queue directly

            Drain options:
              --exit-when-empty       stop when the queue is empty (Container Apps jobs)
              --instance-id <id>      stable id for run leases (default: replica or machine name)

            Settings (environment or appsettings): AzureWebJobsStorage, SplitFunctions__KeyDirectory or
            SplitFunctions__KeyVaultUri, SplitFunctions__Device (auto|cpu|cuda), SplitFunctions__Threads,
            SplitFunctions__CheckpointRetention, SplitFunctions__MaxDequeueCount, SplitFunctions__VisibilityTimeoutSeconds.
            """);
        return mode == "help" ? 0 : 2;
}

string? Option(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
