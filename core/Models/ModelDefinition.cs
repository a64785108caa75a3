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
    /// <summary>Whether the input is one row of numbers (a table) rather than an image.</summary>
    public bool IsTabular => InputShape.Length == 1;

    /// <summary>
    /// The same network for <paramref name="inputShape"/>: a tabular network's first linear layer takes that many
    /// features (a hospital's own column mapping); an image network keeps its input (images are resized to it).
    /// </summary>
    public ModelDefinition WithInputShape(IReadOnlyList<long> inputShape)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.SequenceEqual(InputShape)) return this;
        if (!IsTabular || inputShape.Count != 1 || inputShape[0] is < 1 or > MaxTabularWidth || ClientLayers.Count == 0 || ClientLayers[0] is not Linear first)
        {
            throw new ArgumentException($"model '{Name}' takes input [{string.Join(",", InputShape)}]; only a tabular model's width can change (to 1..{MaxTabularWidth}), not to [{string.Join(",", inputShape)}]", nameof(inputShape));
        }
        return this with { InputShape = [inputShape[0]], ClientLayers = [first with { In = (int)inputShape[0] }, .. ClientLayers.Skip(1)] };
    }

    /// <summary>Widest tabular input accepted (features after categorical encoding).</summary>
    public const int MaxTabularWidth = 4096;

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
