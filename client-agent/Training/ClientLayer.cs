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
/// The hospital's part of the network and (vanilla mode) its optimizer. Initial weights are the consortium's: libtorch
/// seeded from the consortium secret (which the function never receives), the same at every hospital of the run
/// (docs/privacy.md). Without a secret they come from the manifest seed, which the server knows.
/// </summary>
public sealed class ClientLayer : IDisposable
{
    private readonly double noPeekAlpha;
    private readonly double clipNorm;
    private torch.Tensor? lastInput;

    private ClientLayer(Network network, Optimizer? optimizer, PrivacySettings privacy, SimulatedAttacker? attacker = null)
    {
        Network = network;
        Optimizer = optimizer;
        noPeekAlpha = privacy.NoPeekAlpha;
        clipNorm = privacy.ClipNorm;
        Attacker = attacker;
    }

    /// <summary>
    /// Attacker-aware training's decoder (privacy.attackerAwareWeight, vanilla): trained at the hospital on what it releases; never
    /// saved or sent (a resumed run starts a fresh one). Null when off.
    /// </summary>
    public SimulatedAttacker? Attacker { get; }

    public Network Network { get; }

    /// <summary>Null in temporal mode, where the client layer is a fixed privacy layer.</summary>
    public Optimizer? Optimizer { get; }

    /// <summary>The NoPeek penalty alpha * DCor(x, A) of the last trained batch (0 when NoPeek is off).</summary>
    public double LastNoPeekPenalty { get; private set; }

    /// <summary>Seed of the initial client weights: from the consortium secret when the run has one, else the manifest's.</summary>
    public static ulong InitialSeed(RunManifest manifest, ConsortiumSecret? secret)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return secret?.ClientInitSeed(manifest.RunId) ?? manifest.Seed;
    }

    public static ClientLayer Create(RunManifest manifest, bool trainable, ConsortiumSecret? secret)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var network = TorchRuntime.Seeded(InitialSeed(manifest, secret), () => manifest.ModelDefinition.BuildClient());
        SimulatedAttacker? attacker = null;
        try
        {
            if (trainable && manifest.Privacy.AttackerAwareWeight > 0)
            {
                if (network.OutputShape.Length != 3) throw new RunManifestException("privacy.attackerAwareWeight needs an image model cut after a "
                    + "convolution (the simulated decoder rebuilds images from feature maps); set it to 0 for this model");
                // The decoder's seed need not be secret: nothing it produces leaves the hospital.
                var p = manifest.Privacy;
                attacker = new SimulatedAttacker(network.OutputShape[0], network.InputShape, p.AttackerAwareWeight,
                    p.ClipNorm > 0 ? p.NoiseSigma * p.ClipNorm : p.NoiseSigma, InitialSeed(manifest, secret));
            }
            return new ClientLayer(network, trainable ? Optimizer.Create(network, manifest.ClientOptimizer) : null, manifest.Privacy, attacker);
        }
        catch
        {
            attacker?.Dispose();
            network.Dispose();
            throw;
        }
    }

    /// <summary>A trainable layer around <paramref name="network"/>, as the U-shaped head is: the run's client optimizer and NoPeek.</summary>
    internal static ClientLayer Trainable(Network network, RunManifest manifest) =>
        new(network, Optimizer.Create(network, manifest.ClientOptimizer), manifest.Privacy);

    /// <summary>Loads saved weights and optimizer state (null: still the initial ones).</summary>
    public void Restore(byte[]? weights, byte[]? optimizerState)
    {
        if (weights is not null) Network.LoadState(weights);
        if (optimizerState is not null) Optimizer?.LoadState(optimizerState);
    }

    /// <summary>
    /// Runs the layer on the samples at <paramref name="indices"/>; in training mode the result keeps the graph for
    /// <see cref="ApplyGradient"/>. With privacy.clipNorm each sample's activations are clipped to that norm here, inside the graph, so
    /// the backward pass goes through the clipping the server's gradient saw. The caller owns the result: run each step inside a dispose scope.
    /// </summary>
    public torch.Tensor Forward(TrainingSet data, ReadOnlySpan<int> indices, bool train, out float[] targets)
    {
        ArgumentNullException.ThrowIfNull(data);
        var features = new float[indices.Length * data.SampleSize];
        targets = new float[indices.Length * data.TargetWidth];
        data.Gather(indices, features, targets);
        // The scope frees the input and every intermediate of the forward pass; only the result leaves it.
        using var scope = torch.NewDisposeScope();
        var x = TensorData.FromFloats(features, data.BatchShape(indices.Length));
        var output = Network.Forward(x, train);
        var result = (clipNorm > 0 ? ActivationClipping.Clip(output, clipNorm) : output).MoveToOuterDisposeScope();
        // NoPeek and the attacker-aware decoder need the batch's input again in ApplyGradient.
        lastInput?.Dispose();
        lastInput = train && (noPeekAlpha > 0 || Attacker is not null) ? x.detach().MoveToOuterDisposeScope() : null;
        return result;
    }

    /// <summary>
    /// Client backward with dL/dA from the function, then one optimizer step. With NoPeek the gradient of
    /// alpha * DCor(x, A) joins dL/dA: one backward of sum(A * dL/dA) + alpha * DCor(x, A); with attacker-aware training
    /// minus weight x the simulated decoder's MSE as well.
    /// </summary>
    public void ApplyGradient(torch.Tensor activations, float[] gradient)
    {
        ArgumentNullException.ThrowIfNull(activations);
        var optimizer = Optimizer ?? throw new InvalidOperationException("a fixed client layer is never updated");
        using var scope = torch.NewDisposeScope();
        var g = TensorData.FromFloats(gradient, activations.shape);
        optimizer.ZeroGrad();
        var input = lastInput is { } x && x.shape[0] == activations.shape[0] ? x : null;
        torch.Tensor? objective = null;
        if (noPeekAlpha > 0 && input is not null && input.shape[0] > 1)
        {
            var (withNoPeek, penalty) = DistanceCorrelation.NoPeekObjective(input, activations, g, noPeekAlpha);
            LastNoPeekPenalty = penalty.item<float>();
            objective = withNoPeek;
        }
        // Attacker-aware: the simulated decoder takes its step, then the client maximises its error (ResSFL); sum(A * dL/dA) has the
        // server's dL/dA as its gradient in A.
        if (Attacker is { } attacker && input is not null) objective = (objective ?? (activations * g).sum()) + attacker.Penalty(activations, input);
        if (objective is not null) objective.backward();
        else activations.backward([g]);
        optimizer.Step();
    }

    /// <summary>
    /// The release of a batch's activations: clipped per sample to privacy.clipNorm (again, in double precision) and Gaussian noise
    /// (privacy.noiseSigma, times the clip norm when there is one) from a cryptographically secure generator, fresh per value.
    /// </summary>
    public static void AddNoise(float[] values, int rows, PrivacySettings privacy)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        ActivationNoise.Release(values, rows, privacy.NoiseSigma, privacy.ClipNorm);
    }

    public void Dispose()
    {
        lastInput?.Dispose();
        Attacker?.Dispose();
        Optimizer?.Dispose();
        Network.Dispose();
    }
}
