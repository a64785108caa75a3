using SplitFunctions.Core.Data;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Training;
using TorchSharp;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The hospital's part of the network and (vanilla mode) its optimizer. Initial weights are the run's shared ones: seed
/// libtorch with the manifest's seed, then build the client first, exactly as the function and every other hospital do.
/// </summary>
public sealed class ClientLayer : IDisposable
{
    private ClientLayer(Network network, Optimizer? optimizer)
    {
        Network = network;
        Optimizer = optimizer;
    }

    public Network Network { get; }

    /// <summary>Null in temporal mode, where the client layer is a fixed privacy layer.</summary>
    public Optimizer? Optimizer { get; }

    public static ClientLayer Create(RunManifest manifest, bool trainable)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        TorchRuntime.Seed(manifest.Seed);
        var network = manifest.ModelDefinition.BuildClient();
        try
        {
            return new ClientLayer(network, trainable ? Optimizer.Create(network, manifest.ClientOptimizer) : null);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Loads saved weights and optimizer state (vanilla resume).</summary>
    public void Restore(byte[] weights, byte[]? optimizerState)
    {
        Network.LoadState(weights);
        if (optimizerState is not null) Optimizer?.LoadState(optimizerState);
    }

    /// <summary>
    /// Runs the layer on the samples at <paramref name="indices"/>; in training mode the result keeps the graph for
    /// <see cref="ApplyGradient"/>. The caller owns the result: run each step inside a dispose scope.
    /// </summary>
    public torch.Tensor Forward(TrainingSet data, ReadOnlySpan<int> indices, bool train, out float[] targets)
    {
        ArgumentNullException.ThrowIfNull(data);
        var features = new float[indices.Length * data.SampleSize];
        targets = new float[indices.Length];
        data.Gather(indices, features, targets);
        // The scope frees the input and every intermediate of the forward pass; only the result leaves it.
        using var scope = torch.NewDisposeScope();
        var x = TensorData.FromFloats(features, data.BatchShape(indices.Length));
        return Network.Forward(x, train).MoveToOuterDisposeScope();
    }

    /// <summary>Client backward with dL/dA from the function, then one optimizer step.</summary>
    public void ApplyGradient(torch.Tensor activations, float[] gradient)
    {
        ArgumentNullException.ThrowIfNull(activations);
        var optimizer = Optimizer ?? throw new InvalidOperationException("a fixed client layer is never updated");
        using var scope = torch.NewDisposeScope();
        var g = TensorData.FromFloats(gradient, activations.shape);
        optimizer.ZeroGrad();
        activations.backward([g]);
        optimizer.Step();
    }

    /// <summary>Gaussian noise on the activations (privacy.noiseSigma), seeded per sequence so a re-computed frame is the same frame.</summary>
    public static void AddNoise(float[] values, double sigma, ulong runSeed, ulong hospitalSalt, long sequence)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (sigma <= 0) return;
        var random = new SeededRandom(unchecked((long)(runSeed ^ hospitalSalt ^ ((ulong)sequence * 0x9E3779B97F4A7C15UL))));
        for (var i = 0; i < values.Length; i++) values[i] += (float)(sigma * random.NextGaussian());
    }

    public void Dispose()
    {
        Optimizer?.Dispose();
        Network.Dispose();
    }
}
