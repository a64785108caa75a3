using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The hospital's two ends of a U-shaped network: the head (before the cut) and the tail with the loss (after the
/// server's body), each with its optimizer. Built as the server builds its body (<see cref="UShapedSplit.Build"/>).
/// </summary>
public sealed class UShapedLayers : IDisposable
{
    private readonly RunManifest manifest;

    private UShapedLayers(RunManifest manifest, Network head, Network tail)
    {
        this.manifest = manifest;
        HeadLayer = ClientLayer.Trainable(head, manifest);
        Tail = tail;
        TailOptimizer = Optimizer.Create(tail, manifest.ClientOptimizer);
    }

    /// <summary>The head: a client layer like vanilla's (forward, dL/dA with NoPeek, optimizer step), before the cut.</summary>
    public ClientLayer HeadLayer { get; }
    public Network Head => HeadLayer.Network;
    public Optimizer HeadOptimizer => HeadLayer.Optimizer!;
    public Network Tail { get; }
    public Optimizer TailOptimizer { get; }

    /// <summary>
    /// Head and tail from the consortium secret's seed when the hospitals hold one (the server, which knows only the
    /// manifest seed, cannot rebuild their initial weights); the body built on the way is the server's business and dropped.
    /// </summary>
    public static UShapedLayers Create(RunManifest manifest, ConsortiumSecret? secret)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var (head, body, tail) = TorchRuntime.Seeded(ClientLayer.InitialSeed(manifest, secret), () => UShapedSplit.Build(manifest.ModelDefinition));
        body.Dispose();
        return new UShapedLayers(manifest, head, tail);
    }

    /// <summary>Loads saved weights and optimizer states (null: still the initial ones).</summary>
    public void Restore(byte[]? head, byte[]? headOptimizer, byte[]? tail, byte[]? tailOptimizer)
    {
        HeadLayer.Restore(head, headOptimizer);
        if (tail is not null) Tail.LoadState(tail);
        if (tailOptimizer is not null) TailOptimizer.LoadState(tailOptimizer);
    }

    /// <summary>
    /// Head forward on the samples at <paramref name="indices"/>; in training mode the result keeps the graph for <see cref="HeadBackward"/>.
    /// </summary>
    public torch.Tensor HeadForward(TrainingSet data, ReadOnlySpan<int> indices, bool train, out float[] targets, EpochAugmentation? augmentation = null) =>
        HeadLayer.Forward(data, indices, train, out targets, augmentation);

    /// <summary>
    /// Tail forward on the server's outputs, the loss against the local labels, backward, tail step; returns the loss and dL/d(server output).
    /// </summary>
    public (double Loss, float[] OutputGradient) TailStep(float[] outputs, long[] shape, float[] targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = torch.NewDisposeScope();
        var o = TensorData.FromFloats(outputs, shape).requires_grad_();
        var y = TensorData.FromFloats(targets, [shape[0], targets.Length / shape[0]]);
        TailOptimizer.ZeroGrad();
        var prediction = Tail.Forward(o, train: true);
        var loss = Loss.Compute(manifest.Loss, prediction, y, backward: true);
        TailOptimizer.Step();
        return (loss, o.grad!.ToFloats());
    }

    /// <summary>Predictions from the server's outputs (evaluation: computed here, never sent).</summary>
    public float[] Predict(float[] outputs, long[] shape)
    {
        using var scope = torch.NewDisposeScope();
        return Tail.Forward(TensorData.FromFloats(outputs, shape), train: false).ToFloats();
    }

    /// <summary>Head backward with dL/dA from the function (plus NoPeek's alpha * DCor(x, A) when the run asks), then one head optimizer step.</summary>
    public void HeadBackward(torch.Tensor activations, float[] gradient) => HeadLayer.ApplyGradient(activations, gradient);

    public void Dispose()
    {
        HeadLayer.Dispose();
        TailOptimizer.Dispose();
        Tail.Dispose();
    }
}
