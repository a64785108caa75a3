using Microsoft.Extensions.Options;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Functions.Hosting;

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
