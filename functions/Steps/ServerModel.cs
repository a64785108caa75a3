using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using TorchSharp;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// The server layers of one run and their optimizer: the compute of a split-learning step, with no I/O.
/// Initial weights come from the run's seed exactly as the in-process baselines build their server part. The function
/// never builds a client layer: the hospitals' initial client weights derive from a consortium secret it does not hold.
/// </summary>
public sealed class ServerModel : IDisposable
{
    private readonly Network network;
    private readonly Optimizer optimizer;
    private readonly RunManifest manifest;

    public ServerModel(RunManifest manifest, torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        this.manifest = manifest;
        // As SplitModel.Create builds its server part: seed, then the server layers for the manifest's cut.
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

    public torch.Device Device { get; }

    public long[] CutShape => network.InputShape;

    /// <summary>Per-sample shape of what the server part outputs (a prediction, or in U-shaped mode the body's output).</summary>
    public long[] OutputShape => network.OutputShape;

    public byte[] SaveWeights() => network.SaveState();

    public byte[] SaveOptimizer() => optimizer.SaveState();

    public void Load(byte[] weights, byte[] optimizerState)
    {
        network.LoadState(weights);
        optimizer.LoadState(optimizerState);
    }

    /// <summary>Vanilla step: forward, loss, backward, optimizer step; returns the loss and dL/dA for the hospital.</summary>
    public (double Loss, float[] ActivationGradient) TrainStep(float[] activations, float[] labels, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device).requires_grad_();
        var y = TensorData.FromFloats(labels, [batch, 1], Device);
        optimizer.ZeroGrad();
        var prediction = network.Forward(a, train: true);
        var loss = Loss.Compute(manifest.Loss, prediction, y, backward: true);
        optimizer.Step();
        return (loss, a.grad!.ToFloats());
    }

    /// <summary>U-shaped first leg: the body's outputs for the head's activations (training mode; nothing changes).</summary>
    public float[] ForwardOutputs(float[] activations, int batch)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var a = TensorData.FromFloats(activations, [batch, .. CutShape], Device);
        return network.Forward(a, train: true).ToFloats();
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
        var y = TensorData.FromFloats(labels, [batch, 1], Device);
        optimizer.ZeroGrad();
        var prediction = network.Forward(a, train: true);
        var loss = Loss.Compute(manifest.Loss, prediction, y, backward: true);
        optimizer.Step();
        return loss;
    }

    /// <summary>
    /// One temporal epoch over windows of features in their sample order (<see cref="TemporalFeatureStream"/>): batches
    /// are cut from the stream of samples, so a batch may span two windows and only the epoch's last batch is short.
    /// </summary>
    public async Task<(double MeanLoss, int Samples)> TrainEpochAsync(IAsyncEnumerable<(TrainingSet Window, int[] Order)> windows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(windows);
        var batchSize = manifest.BatchSize;
        var sampleSize = checked((int)CutShape.Aggregate(1L, (a, b) => a * b));
        var features = new float[batchSize * sampleSize];
        var labels = new float[batchSize];
        var filled = 0;
        double sum = 0;
        var seen = 0;
        void Train(int count)
        {
            var loss = TrainStepNoReply(features.AsSpan(0, count * sampleSize), labels.AsSpan(0, count), count);
            sum += loss * count;
            seen += count;
        }
        await foreach (var (window, order) in windows.WithCancellation(ct).ConfigureAwait(false))
        {
            if (window.SampleSize != sampleSize) throw new InvalidDataException($"a feature chunk holds samples of {window.SampleSize} values; the server layers take {sampleSize}");
            foreach (var i in order)
            {
                window.Features.AsSpan(i * sampleSize, sampleSize).CopyTo(features.AsSpan(filled * sampleSize, sampleSize));
                labels[filled++] = window.Targets[i];
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
        return network.Forward(a, train: false).ToFloats();
    }

    public void Dispose()
    {
        optimizer.Dispose();
        network.Dispose();
    }
}
