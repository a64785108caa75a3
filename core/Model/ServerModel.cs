using SplitFunctions.Core.Data;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.Core.Model;

/// <summary>
/// The server layers of one run and their optimizer: the compute of a split-learning step, with no I/O. The function's
/// steps run it on frames, and the in-process baselines (<see cref="Baselines.SplitModel"/>) run the same step on the
/// client part's activations. The function never builds a client layer: the hospitals' initial client weights derive
/// from a consortium secret it does not hold.
/// </summary>
public sealed class ServerModel : IDisposable
{
    private readonly Network network;
    private readonly Optimizer optimizer;
    private readonly LossKind loss;
    private readonly int batchSize;
    private readonly int labelWidth;

    /// <summary>The server part of a run: its initial weights from the run's seed, for the manifest's cut (or U-shaped body).</summary>
    public ServerModel(RunManifest manifest, torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        loss = manifest.Loss;
        batchSize = manifest.BatchSize;
        labelWidth = manifest.ModelDefinition.LabelWidth;
        // Seed, then the server layers for the manifest's cut (as SplitModel.Create builds its server part).
        network = TorchRuntime.Seeded(manifest.Seed, () =>
        {
            if (manifest.Mode != TrainingMode.UShaped) return manifest.ModelDefinition.BuildServer(manifest.CutShape, device);
            // Same order as the hospitals (UShapedSplit.Build): head, body, tail; the server keeps the body.
            var (head, body, tail) = UShapedSplit.Build(manifest.ModelDefinition, device);
            head.Dispose();
            tail.Dispose();
            return body;
        });
        optimizer = Optimizer.Create(network, manifest.Optimizer);
        Device = device;
    }

    /// <summary>
    /// The server part of <paramref name="definition"/> after a cut of <paramref name="cutShape"/>, its weights from <paramref name="seed"/>.
    /// </summary>
    public ServerModel(ModelDefinition definition, ReadOnlySpan<long> cutShape, ulong seed, OptimizerSettings optimizer, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(optimizer);
        loss = definition.Loss;
        batchSize = definition.BatchSize;
        labelWidth = definition.LabelWidth;
        var cut = cutShape.ToArray();
        network = TorchRuntime.Seeded(seed, () => definition.BuildServer(cut, device));
        this.optimizer = Optimizer.Create(network, optimizer);
        Device = network.Device;
    }

    public torch.Device Device { get; }

    /// <summary>The server layers themselves (their state for checkpoints and averaging; the baselines' evaluation).</summary>
    public Network Network => network;

    public long[] CutShape => network.InputShape;

    /// <summary>Label values per sample (K for multi-label, else 1).</summary>
    public int LabelWidth => labelWidth;

    /// <summary>Per-sample shape of what the server part outputs (a prediction, or in U-shaped mode the body's output).</summary>
    public long[] OutputShape => network.OutputShape;

    public byte[] SaveWeights() => network.SaveState();

    public byte[] SaveOptimizer() => optimizer.SaveState();

    /// <summary>Whether the weights and the optimizer's state are all finite (the server checks it after every step).</summary>
    public bool IsFinite() => optimizer.AllFinite();

    public void Load(byte[] weights, byte[] optimizerState)
    {
        network.LoadState(weights);
        optimizer.LoadState(optimizerState);
    }

    /// <summary>Vanilla step: forward, loss, backward, optimizer step; returns the loss and dL/dA for the hospital.</summary>
    public (double Loss, float[] ActivationGradient) TrainStep(float[] activations, float[] labels, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device);
        var y = TensorData.FromFloats(labels, [batch, labelWidth], Device);
        var gradient = TrainStep(a, y, out var batchLoss);
        return (batchLoss, gradient.ToFloats());
    }

    /// <summary>
    /// The vanilla step on tensors: forward from <paramref name="activations"/> (taken as a leaf: detached from any
    /// graph they belong to), loss against <paramref name="labels"/> ([batch, label width]), backward, optimizer step. Returns
    /// dL/dA, owned by the caller's dispose scope.
    /// </summary>
    public torch.Tensor TrainStep(torch.Tensor activations, torch.Tensor labels, out double batchLoss)
    {
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(labels);
        var a = activations.detach().requires_grad_();
        optimizer.ZeroGrad();
        var prediction = network.Forward(a, train: true);
        batchLoss = Loss.Compute(loss, prediction, labels, backward: true);
        optimizer.Step();
        return a.grad!;
    }

    /// <summary>
    /// U-shaped first leg: the body's outputs for the head's activations (training mode; nothing changes: batch norm's
    /// running statistics move once per batch, in the second leg).
    /// </summary>
    public float[] ForwardOutputs(float[] activations, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device);
        return network.ForwardTrainingWithoutUpdate(a).ToFloats();
    }

    /// <summary>
    /// U-shaped second leg: the body forward again on the first leg's activations (at the current weights, so a replay
    /// recomputes exactly), backward from the hospital's dL/d(output), optimizer step; returns dL/dA.
    /// </summary>
    public float[] BackwardFromOutputs(float[] activations, float[] outputGradient, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device).requires_grad_();
        var g = TensorData.FromFloats(outputGradient, [batch, .. OutputShape], Device);
        optimizer.ZeroGrad();
        var output = network.Forward(a, train: true);
        output.backward([g]);
        optimizer.Step();
        return a.grad!.ToFloats();
    }

    /// <summary>Temporal step on features already at the server: no gradient goes back.</summary>
    public double TrainStepNoReply(ReadOnlySpan<float> activations, ReadOnlySpan<float> labels, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device);
        var y = TensorData.FromFloats(labels, [batch, labelWidth], Device);
        optimizer.ZeroGrad();
        var prediction = network.Forward(a, train: true);
        var batchLoss = Loss.Compute(loss, prediction, y, backward: true);
        optimizer.Step();
        return batchLoss;
    }

    /// <summary>
    /// One temporal epoch over windows of features in their sample order (the function's TemporalFeatureStream): batches
    /// are cut from the stream of samples, so a batch may span two windows and only the epoch's last batch is short.
    /// </summary>
    public async Task<(double MeanLoss, int Samples)> TrainEpochAsync(IAsyncEnumerable<(TrainingSet Window, int[] Order)> windows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(windows);
        var sampleSize = checked((int)CutShape.Aggregate(1L, (a, b) => a * b));
        var features = new float[batchSize * sampleSize];
        var labels = new float[batchSize * labelWidth];
        var filled = 0;
        double sum = 0;
        var seen = 0;
        void Train(int count)
        {
            var batchLoss = TrainStepNoReply(features.AsSpan(0, count * sampleSize), labels.AsSpan(0, count * labelWidth), count);
            sum += batchLoss * count;
            seen += count;
        }
        await foreach (var (window, order) in windows.WithCancellation(ct).ConfigureAwait(false))
        {
            if (window.SampleSize != sampleSize) throw new InvalidDataException($"a feature chunk holds samples of {window.SampleSize} values; the server "
                + $"layers take {sampleSize}");
            for (var k = 0; k < order.Length; k++)
            {
                // Gather, not Features: a streamed window is read in place from its chunks, never copied whole.
                window.Gather(order.AsSpan(k, 1), features.AsSpan(filled * sampleSize, sampleSize), labels.AsSpan(filled * labelWidth, labelWidth));
                filled++;
                if (filled == batchSize)
                {
                    Train(filled);
                    filled = 0;
                }
            }
        }
        if (filled > 0) Train(filled);
        return (seen == 0 ? double.NaN : sum / seen, seen);
    }

    /// <summary>Eval-mode outputs for a batch of activations.</summary>
    public float[] Predict(float[] activations, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device);
        return Predict(a).ToFloats();
    }

    /// <summary>Eval-mode outputs for a batch of activations, as a tensor.</summary>
    public torch.Tensor Predict(torch.Tensor activations) => network.Forward(activations, train: false);

    public void Dispose()
    {
        optimizer.Dispose();
        network.Dispose();
    }
}
