using SplitFunctions.Core.Model;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>What the network predicts per sample, and so its output, its loss and its metrics.</summary>
public enum TaskKind
{
    /// <summary>Binary: one sigmoid probability, binary cross-entropy.</summary>
    Classification,
    /// <summary>One value, mean squared error.</summary>
    Regression,
    /// <summary>One of K classes: K logits, softmax cross-entropy; labels are class indices.</summary>
    MultiClass,
    /// <summary>K independent 0/1 labels: K logits, sigmoid binary cross-entropy per label.</summary>
    MultiLabel,
}

/// <summary>
/// A network description that cannot train: a bad layer, shapes that do not flow, a cut that is no boundary, a loss that does not fit the task.
/// </summary>
public sealed class ModelDefinitionException(string message) : Exception(message);

/// <summary>
/// A network cut in two, as a catalog preset or a model file (<see cref="ModelFile"/>) describes it. <see cref="ClientLayers"/>
/// run at the hospital, <see cref="ServerLayers"/> in the cloud function; the client output shape is the cut.
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
    /// <summary>Layers after a second cut, back at the hospital (U-shaped split); empty for the two-part split every preset uses.</summary>
    public IReadOnlyList<Layer> TailLayers { get; init; } = [];

    /// <summary>The layers as a model file or run manifest lists them, the cut marked.</summary>
    public SplitLayers Layers => new(ClientLayers, ServerLayers, TailLayers);

    /// <summary>Per-sample shape the hospital sends (the client part's output), by the layers' shape arithmetic.</summary>
    public long[] CutShape => Validate().Cut;

    /// <summary>
    /// Checks the network before anything is built or started: each layer's options, the shapes flowing from
    /// <paramref name="dataShape"/> (default <see cref="InputShape"/>) through every layer, the cut (the hospital keeps at least
    /// one layer with weights, the cloud at least one layer), one output per sample and the loss for the task. The first
    /// problem is a <see cref="ModelDefinitionException"/> naming the layer and the input shape.
    /// </summary>
    public (long[] Cut, long[] Output) Validate(IReadOnlyList<long>? dataShape = null)
    {
        var input = dataShape?.ToArray() ?? InputShape;
        var origin = dataShape is null ? $"input [{string.Join(",", input)}]" : $"the data gives input [{string.Join(",", input)}]";
        if (input.Length is not (1 or 3) || input.Any(d => d < 1))
            throw new ModelDefinitionException($"inputShape [{string.Join(",", input)}] must be [features] (a table) or [channels,height,width] (images), "
                + $"every size at least 1");
        if (ClientLayers.Count == 0) throw new ModelDefinitionException("the cut is before the first layer: the hospital must keep at least one layer, or its "
            + "raw data would leave it");
        if (!ClientLayers.Any(l => l is Conv2d or Linear or BasicBlock))
            throw new ModelDefinitionException($"the hospital's layers before the cut ({string.Join(", ", ClientLayers.Select(l => l.Spec))}) mix no inputs "
                + $"(no conv2d, basic_block or linear): its data would leave the hospital unchanged; move the cut after a layer with weights");
        if (ServerLayers.Count == 0) throw new ModelDefinitionException("the cut is after the last layer: the cloud must hold at least one layer");
        var shape = input;
        long[] cut = [];
        var all = ClientLayers.Select(l => (Layer: l, Part: "hospital")).Concat(ServerLayers.Select(l => (Layer: l, Part: "cloud")))
            .Concat(TailLayers.Select(l => (Layer: l, Part: "tail")));
        var i = 0;
        foreach (var (layer, part) in all)
        {
            if (!layer.TryOutputShape(shape, out var next, out var why))
                throw new ModelDefinitionException($"layer {i} '{layer.Spec}' ({part}) does not fit: {why}; {origin}, [{string.Join(",", shape)}] reaches "
                    + $"this layer");
            shape = next;
            if (++i == ClientLayers.Count) cut = shape;
        }
        var last = (TailLayers.Count > 0 ? TailLayers : ServerLayers)[^1];
        if (Task is TaskKind.MultiClass or TaskKind.MultiLabel)
        {
            var least = Task == TaskKind.MultiClass ? 2 : 1;
            if (shape is not [var k] || k < least)
                throw new ModelDefinitionException($"the network ends in shape [{string.Join(",", shape)}] per sample; a {Task} task needs one logit per "
                    + $"{(Task == TaskKind.MultiClass ? "class (at least 2)" : "label")}: end with linear out=K");
            if (last is Sigmoid || last.Spec.StartsWith("softmax", StringComparison.OrdinalIgnoreCase))
            {
                var activation = Task == TaskKind.MultiClass ? "softmax" : "sigmoid";
                throw new ModelDefinitionException($"a {Task} task takes logits (its loss applies the {activation}): remove the last layer '{last.Spec}'");
            }
        }
        else if (shape is not [1])
        {
            throw new ModelDefinitionException($"the network ends in shape [{string.Join(",", shape)}] per sample; a {Task} task needs one output ([1]): end "
                + $"with linear out=1{(Task == TaskKind.Classification ? " and sigmoid" : "")}");
        }
        switch (Task)
        {
            case TaskKind.MultiClass when Loss != LossKind.CrossEntropy:
                throw new ModelDefinitionException($"loss {Loss} does not fit a MultiClass task: use CrossEntropy (softmax on the logits)");
            case TaskKind.MultiLabel when Loss != LossKind.BinaryCrossEntropyWithLogits:
                throw new ModelDefinitionException($"loss {Loss} does not fit a MultiLabel task: use BinaryCrossEntropyWithLogits (a sigmoid per label)");
            case TaskKind.Classification when Loss != LossKind.BinaryCrossEntropy:
                throw new ModelDefinitionException($"loss {Loss} does not fit a Classification task: use BinaryCrossEntropy (on a sigmoid output)");
            case TaskKind.Classification when last is not Sigmoid:
                throw new ModelDefinitionException($"a Classification task with BinaryCrossEntropy needs probabilities: the last layer is '{last.Spec}', end "
                    + $"with sigmoid");
            case TaskKind.Regression when Loss != LossKind.MeanSquaredError:
                throw new ModelDefinitionException($"loss {Loss} does not fit a Regression task: use MeanSquaredError");
        }
        if (BatchSize is < 1 or > 65536) throw new ModelDefinitionException($"batchSize {BatchSize} is out of range 1..65536");
        if (Epochs is < 1 or > 100000) throw new ModelDefinitionException($"epochs {Epochs} is out of range 1..100000");
        if (Optimizer is null || !double.IsFinite(Optimizer.LearningRate) || Optimizer.LearningRate <= 0 || Optimizer.LearningRate > 10)
            throw new ModelDefinitionException($"optimizer.learningRate {Optimizer?.LearningRate} must be in (0, 10]");
        return (cut, shape);
    }

    /// <summary>Outputs per sample: 1, or K classes or labels.</summary>
    public int OutputWidth => (int)Validate().Output[0];

    /// <summary>Label values per sample on the wire and in a training set: K for multi-label, else 1 (a class index, 0/1 or a value).</summary>
    public int LabelWidth => Task == TaskKind.MultiLabel ? OutputWidth : 1;

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
            throw new ArgumentException($"model '{Name}' takes input [{string.Join(",", InputShape)}]; only a tabular model's width can change (to "
                + $"1..{MaxTabularWidth}), not to [{string.Join(",", inputShape)}]", nameof(inputShape));
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
    public Network BuildWhole(Device? device = null) => Network.Create([.. ClientLayers, .. ServerLayers, .. TailLayers], InputShape, device);

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
