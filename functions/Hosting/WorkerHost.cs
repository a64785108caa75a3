using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The Azure Functions isolated worker: the Functions host delivers `features` messages to <see cref="ProcessFeatures.ProcessFeaturesFunction"/>.
/// </summary>
public static class WorkerHost
{
    public static async Task RunAsync(string[] hostArguments, CancellationToken cancellationToken)
    {
        var builder = FunctionsApplication.CreateBuilder(hostArguments);
        builder.Services.AddSplitServer(new ServerInstance(ServerInstance.DefaultId));
        using var host = builder.Build();
        host.Services.RequireValidSettings();
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
    }
}
