using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using TorchSharp;

namespace SplitFunctions.Core.Baselines;

/// <summary>
/// Both halves of a catalog model in one process, with their optimizers: the centralised and single-hospital
/// baselines, and each participant of federated averaging. A step is exactly what split learning computes, without
/// the wire in between: the client part's forward, the function's server step (<see cref="ServerModel"/>) on its
/// activations, the client part's backward from the dL/dA that step returns.
/// </summary>
public sealed class SplitModel : IDisposable
{
    private readonly Optimizer clientOptimizer;
    private readonly ServerModel server;

    private SplitModel(ModelDefinition definition, Network client, ServerModel server, OptimizerSettings optimizer)
    {
        Definition = definition;
        Client = client;
        this.server = server;
        clientOptimizer = Optimizer.Create(client, optimizer);
    }

    public ModelDefinition Definition { get; }

    public Network Client { get; }

    public Network Server => server.Network;

    /// <summary>
    /// Builds the model with a run's initial weights: the client part from <paramref name="clientSeed"/> (a hospital's
    /// consortium-derived seed; <paramref name="seed"/> when null), the server part from <paramref name="seed"/> as the
    /// function builds it.
    /// </summary>
    public static SplitModel Create(ModelDefinition definition, ulong seed, OptimizerSettings? optimizer = null, torch.Device? device = null,
        ulong? clientSeed = null)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var client = TorchRuntime.Seeded(clientSeed ?? seed, () => definition.BuildClient(device));
        try
        {
            var server = new ServerModel(definition, client.OutputShape, seed, optimizer ?? definition.Optimizer, device);
            return new SplitModel(definition, client, server, optimizer ?? definition.Optimizer);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>One optimizer step on a batch; returns the batch loss.</summary>
    public double TrainStep(ReadOnlySpan<float> features, ReadOnlySpan<float> targets, int batch)
    {
        using var scope = torch.NewDisposeScope();
        var x = TensorData.FromFloats(features, [batch, .. Definition.InputShape], Client.Device);
        var y = TensorData.FromFloats(targets, [batch, server.LabelWidth], Client.Device);
        clientOptimizer.ZeroGrad();
        var activations = Client.Forward(x, train: true);
        var activationGradient = server.TrainStep(activations, y, out var loss);
        activations.backward([activationGradient]);
        clientOptimizer.Step();
        return loss;
    }

    /// <summary>
    /// One epoch over <paramref name="data"/> in the seeded order of (seed, epoch); returns the loss summed over samples. With
    /// <paramref name="augmentation"/> (image data) each gathered batch is augmented as the agent augments its training batches.
    /// </summary>
    public double TrainEpoch(TrainingSet data, int batchSize, ulong seed, int epoch, EpochAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var features = new float[batchSize * data.SampleSize];
        var width = data.TargetWidth;
        var targets = new float[batchSize * width];
        double sum = 0;
        foreach (var batch in BatchOrder.Batches(BatchOrder.Shuffle(data.Count, seed, epoch), batchSize))
        {
            data.Gather(batch, features, targets);
            augmentation?.Apply(features.AsSpan(0, batch.Count * data.SampleSize), batch);
            sum += TrainStep(features.AsSpan(0, batch.Count * data.SampleSize), targets.AsSpan(0, batch.Count * width), batch.Count) * batch.Count;
        }
        return sum;
    }

    /// <summary>Eval-mode outputs (probabilities, values, or K logits), a vector per sample, in batches.</summary>
    public float[] Predict(TrainingSet data, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(data);
        var width = (int)server.OutputShape[0];
        var output = new float[data.Count * width];
        for (var start = 0; start < data.Count; start += batchSize)
        {
            var n = Math.Min(batchSize, data.Count - start);
            using var scope = torch.NewDisposeScope();
            var x = TensorData.FromFloats(data.Features.AsSpan(start * data.SampleSize, n * data.SampleSize), data.BatchShape(n), Client.Device);
            var p = server.Predict(Client.Forward(x, train: false));
            p.CopyTo(output.AsSpan(start * width, n * width));
        }
        return output;
    }

    public void Dispose()
    {
        clientOptimizer.Dispose();
        server.Dispose();
        Client.Dispose();
    }
}
