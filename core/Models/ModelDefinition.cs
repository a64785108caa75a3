using SplitFunctions.Core.Engine;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Models;

/// <summary>Classification (sigmoid output, one probability) or regression (one value).</summary>
public enum TaskKind
{
    Classification,
    Regression,
}

/// <summary>
/// One catalog entry: the network cut in two. <see cref="ClientLayers"/> run at the hospital,
/// <see cref="ServerLayers"/> in the cloud function; the client output shape is the cut.
/// </summary>
public sealed record ModelDefinition(
    string Name,
    string Description,
    TaskKind Task,
    long[] InputShape,
    IReadOnlyList<Layer> ClientLayers,
    IReadOnlyList<Layer> ServerLayers,
    LossKind Loss,
    int BatchSize,
    int Epochs,
    OptimizerSettings Optimizer)
{
    /// <summary>Builds the hospital's part.</summary>
    public Network BuildClient(Device? device = null) => Network.Create(ClientLayers, InputShape, device);

    /// <summary>Builds the server's part for the given per-sample cut shape (the client's output shape).</summary>
    public Network BuildServer(ReadOnlySpan<long> cutShape, Device? device = null) => Network.Create(ServerLayers, cutShape, device);

    /// <summary>Both parts as one network, as PyTorch would hold the whole model (keys 0..n over all layers).</summary>
    public Network BuildWhole(Device? device = null) => Network.Create([.. ClientLayers, .. ServerLayers], InputShape, device);

    /// <summary>Builds both parts; the server's input is the client's output.</summary>
    public (Network Client, Network Server) BuildSplit(Device? device = null)
    {
        var client = BuildClient(device);
        try
        {
            return (client, BuildServer(client.OutputShape, device));
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }
}
