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
    private readonly Func<Network>? replicaFactory;
    // Pipelined training: copies of the layer that hold the weights of a forward in flight (free ones, and every one made).
    private readonly Stack<Network> freeReplicas = new();
    private readonly List<Network> replicas = [];

    private ClientLayer(Network network, Optimizer? optimizer, PrivacySettings privacy, Func<Network>? replicaFactory = null,
        SimulatedAttacker? attacker = null)
    {
        Network = network;
        Optimizer = optimizer;
        noPeekAlpha = privacy.NoPeekAlpha;
        clipNorm = privacy.ClipNorm;
        this.replicaFactory = replicaFactory;
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
            return new ClientLayer(network, trainable ? Optimizer.Create(network, manifest.ClientOptimizer) : null, manifest.Privacy,
                () => manifest.ModelDefinition.BuildClient(), attacker);
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
    /// <paramref name="augmentation"/> (data.augmentation) transforms a training batch's images first; it is refused outside training, so
    /// validation, evaluation and audit inputs are never augmented.
    /// </summary>
    public torch.Tensor Forward(TrainingSet data, ReadOnlySpan<int> indices, bool train, out float[] targets, EpochAugmentation? augmentation = null)
    {
        if (augmentation is not null && !train) throw new InvalidOperationException("augmentation applies to training batches only");
        // NoPeek and the attacker-aware decoder need the batch's input again in ApplyGradient.
        var (result, input) = Run(Network, data, indices, train, augmentation, keepInput: train && (noPeekAlpha > 0 || Attacker is not null), out targets);
        lastInput?.Dispose();
        lastInput = input;
        return result;
    }

    // One forward pass of `network` on the samples at `indices` (augmented first when given), clipped per sample with
    // privacy.clipNorm inside the graph; the input is returned detached when asked for. Both results outlive the call.
    private (torch.Tensor Result, torch.Tensor? Input) Run(Network network, TrainingSet data, ReadOnlySpan<int> indices, bool train,
        EpochAugmentation? augmentation, bool keepInput, out float[] targets)
    {
        ArgumentNullException.ThrowIfNull(data);
        var features = new float[indices.Length * data.SampleSize];
        targets = new float[indices.Length * data.TargetWidth];
        data.Gather(indices, features, targets);
        augmentation?.Apply(features, indices);
        // The scope frees the input and every intermediate of the forward pass; only the results leave it.
        using var scope = torch.NewDisposeScope();
        var x = TensorData.FromFloats(features, data.BatchShape(indices.Length));
        var output = network.Forward(x, train);
        var result = (clipNorm > 0 ? ActivationClipping.Clip(output, clipNorm) : output).MoveToOuterDisposeScope();
        return (result, keepInput ? x.detach().MoveToOuterDisposeScope() : null);
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
    /// Pipelined training (weight stashing, as PipeDream's): the forward pass of a batch on a copy of the layer that keeps
    /// the weights it ran with, so its backward (<see cref="ApplyStashedGradient"/>) is exact for this forward however many
    /// steps the live layer takes meanwhile. The copy starts from the live weights, or from <paramref name="weights"/> (a
    /// restart recomputing a batch in flight with the weights its forward used). Batch-norm running statistics go on in the
    /// live layer in forward order, as in synchronous training; a recompute leaves them alone (they counted that batch already).
    /// <paramref name="augmentation"/> as in <see cref="Forward"/> (keyed by epoch and row, so a recompute repeats it).
    /// </summary>
    public StashedForward ForwardStashed(TrainingSet data, ReadOnlySpan<int> indices, out float[] targets, byte[]? weights = null,
        EpochAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var replica = TakeReplica();
        try
        {
            if (weights is null) CopyState(Network, replica, buffersOnly: false);
            else replica.LoadState(weights);
            var (result, input) = Run(replica, data, indices, train: true, augmentation, keepInput: noPeekAlpha > 0, out targets);
            if (weights is null) CopyState(replica, Network, buffersOnly: true);
            return new StashedForward(replica, result, input);
        }
        catch
        {
            freeReplicas.Push(replica);
            throw;
        }
    }

    /// <summary>
    /// The backward pass of a stashed forward with dL/dA from the function (and NoPeek's term, as <see cref="ApplyGradient"/>),
    /// through the weights that forward used; then one optimizer step of the live weights with that gradient. The stash is spent.
    /// </summary>
    public void ApplyStashedGradient(StashedForward stashed, float[] gradient)
    {
        ArgumentNullException.ThrowIfNull(stashed);
        var optimizer = Optimizer ?? throw new InvalidOperationException("a fixed client layer is never updated");
        try
        {
            using var scope = torch.NewDisposeScope();
            var activations = stashed.Activations;
            var g = TensorData.FromFloats(gradient, activations.shape);
            stashed.Replica.Module.zero_grad();
            if (noPeekAlpha > 0 && stashed.Input is { } x && x.shape[0] == activations.shape[0] && x.shape[0] > 1)
            {
                var (objective, penalty) = DistanceCorrelation.NoPeekObjective(x, activations, g, noPeekAlpha);
                LastNoPeekPenalty = penalty.item<float>();
                objective.backward();
            }
            else
            {
                activations.backward([g]);
            }
            optimizer.ZeroGrad();
            // d/dp sum(p * g) is g exactly: the gradient at the stashed weights becomes the live weights' gradient. One backward per
            // parameter, not one of the terms' sum: `a + b` makes its alpha of 1 a temporary Scalar that a garbage collection can
            // finalize while libtorch reads it (TorchSharp 0.107; "Expected false to be true" in a long pipelined run, see OptimizerTests).
            foreach (var (live, stash) in Network.Module.parameters().Zip(stashed.Replica.Module.parameters()))
            {
                if (stash.grad is not { } stashGradient) continue;
                (live * stashGradient.detach()).sum().backward();
            }
            optimizer.Step();
        }
        finally
        {
            Release(stashed);
        }
    }

    /// <summary>Gives a stash's copy of the layer back for the next forward (a stash never applied: the agent stopped).</summary>
    public void Release(StashedForward stashed)
    {
        ArgumentNullException.ThrowIfNull(stashed);
        if (stashed.Spent) return;
        stashed.Spent = true;
        stashed.Activations.Dispose();
        stashed.Input?.Dispose();
        freeReplicas.Push(stashed.Replica);
    }

    private Network TakeReplica()
    {
        if (freeReplicas.TryPop(out var free)) return free;
        var replica = (replicaFactory ?? throw new InvalidOperationException("this client layer cannot be pipelined"))();
        replicas.Add(replica);
        return replica;
    }

    private static void CopyState(Network from, Network to, bool buffersOnly)
    {
        using var noGrad = torch.no_grad();
        if (buffersOnly)
        {
            foreach (var ((_, source), (_, target)) in from.Module.named_buffers().Zip(to.Module.named_buffers())) target.copy_(source);
            return;
        }
        var targets = to.Module.state_dict();
        foreach (var (name, source) in from.Module.state_dict()) targets[name].copy_(source);
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
        foreach (var replica in replicas) replica.Dispose();
        lastInput?.Dispose();
        Attacker?.Dispose();
        Optimizer?.Dispose();
        Network.Dispose();
    }
}

/// <summary>
/// A forward pass kept for its backward (pipelined training): the copy of the layer with the weights it used, its output
/// and (NoPeek) its input.
/// </summary>
public sealed class StashedForward
{
    internal StashedForward(Network replica, torch.Tensor activations, torch.Tensor? input)
    {
        Replica = replica;
        Activations = activations;
        Input = input;
    }

    internal Network Replica { get; }

    /// <summary>The activations with their autograd graph through <see cref="Replica"/>'s weights.</summary>
    public torch.Tensor Activations { get; }

    internal torch.Tensor? Input { get; }

    internal bool Spent { get; set; }
}
