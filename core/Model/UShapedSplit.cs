using SplitFunctions.Core.Model;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// The U-shaped cut of a catalog entry: the server part's last linear layer and everything after it (the sigmoid of a
/// classifier) become the tail, which runs at the hospital with the loss; the server keeps the middle (the body).
/// </summary>
public static class UShapedSplit
{
    /// <summary>Index in <see cref="ModelDefinition.ServerLayers"/> where the tail starts: the last linear layer.</summary>
    public static int TailStart(ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(model);
        for (var i = model.ServerLayers.Count - 1; i > 0; i--)
        {
            if (model.ServerLayers[i] is Linear) return i;
        }
        throw new InvalidNetworkSpecException($"model '{model.Name}' has no linear layer after its first server layer to keep at the hospital as a U-shaped "
            + $"tail");
    }

    /// <summary>The server's layers in U-shaped mode.</summary>
    public static IReadOnlyList<Layer> Body(ModelDefinition model) => [.. model.ServerLayers.Take(TailStart(model))];

    /// <summary>The hospital's tail layers in U-shaped mode.</summary>
    public static IReadOnlyList<Layer> Tail(ModelDefinition model) => [.. model.ServerLayers.Skip(TailStart(model))];

    /// <summary>
    /// Head, body and tail, built in that order (seed libtorch first), so the server and every hospital start from the
    /// same weights; each side disposes the parts it does not run.
    /// </summary>
    public static (Network Head, Network Body, Network Tail) Build(ModelDefinition model, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var head = model.BuildClient(device);
        Network? body = null;
        try
        {
            body = Network.Create(Body(model), head.OutputShape, device);
            return (head, body, Network.Create(Tail(model), body.OutputShape, device));
        }
        catch
        {
            body?.Dispose();
            head.Dispose();
            throw;
        }
    }
}
