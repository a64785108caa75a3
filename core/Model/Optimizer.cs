using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>Which update rule an optimizer applies.</summary>
public enum OptimizerKind
{
    Sgd,
    Adam,
}

/// <summary>Optimizer hyper-parameters, as a run manifest states them.</summary>
public sealed record OptimizerSettings(
    OptimizerKind Kind,
    double LearningRate,
    double Momentum = 0,
    double WeightDecay = 0,
    bool Nesterov = false,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Epsilon = 1e-8)
{
    public static OptimizerSettings Adam(double learningRate) => new(OptimizerKind.Adam, learningRate);

    public static OptimizerSettings Sgd(double learningRate, double momentum = 0) => new(OptimizerKind.Sgd, learningRate, momentum);
}

/// <summary>A torch.optim optimizer over one network's parameters; its state saves as PyTorch's optimizer state dict.</summary>
public sealed class Optimizer : IDisposable
{
    private readonly OptimizerHelper optimizer;

    // The optimizer's parameters in the order of its state list (one parameter group).
    private readonly Parameter[] parameters;

    private Optimizer(OptimizerHelper optimizer, Parameter[] parameters, OptimizerSettings settings)
    {
        this.optimizer = optimizer;
        this.parameters = parameters;
        Settings = settings;
    }

    public OptimizerSettings Settings { get; }

    public static Optimizer Create(Network network, OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(settings);
        var parameters = network.Module.parameters().ToArray();
        OptimizerHelper optimizer = settings.Kind switch
        {
            OptimizerKind.Sgd => optim.SGD(parameters, settings.LearningRate, settings.Momentum, dampening: 0, settings.WeightDecay, settings.Nesterov),
            OptimizerKind.Adam => optim.Adam(parameters, settings.LearningRate, settings.Beta1, settings.Beta2, settings.Epsilon, settings.WeightDecay),
            _ => throw new ArgumentException($"unknown optimizer {settings.Kind}"),
        };
        return new Optimizer(optimizer, parameters, settings);
    }

    /// <summary>
    /// One update of every parameter from its gradient: torch.optim's Adam or SGD arithmetic, op for op, on the state
    /// TorchSharp's optimizer keeps (so saving and loading are unchanged). Not <c>optimizer.step()</c>: TorchSharp 0.107
    /// passes Scalars it makes from doubles to libtorch without keeping them alive, so a garbage collection during the
    /// call can finalize one in use (seen as "Unknown scalar type" in a long training; reproduced by OptimizerTests).
    /// Here every Scalar lives until its calls return.
    /// </summary>
    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        LibTorchErrors.Guard("optimizer step", () =>
        {
            var state = optimizer.state_dict().State;
            for (var i = 0; i < parameters.Length; i++)
            {
                if (parameters[i].grad is not { } gradient) continue;
                if (Settings.Kind == OptimizerKind.Adam) AdamStep(parameters[i], gradient, (Adam.State)state[i]);
                else SgdStep(parameters[i], gradient, (SGD.State)state[i]);
            }
            return true;
        });
    }

    private void AdamStep(Parameter parameter, Tensor gradient, Adam.State state)
    {
        var s = Settings;
        state.step += 1;
        var biasCorrection1 = 1 - Math.Pow(s.Beta1, state.step);
        var biasCorrection2 = 1 - Math.Pow(s.Beta2, state.step);
        using var weightDecay = s.WeightDecay.ToScalar();
        using var beta1 = s.Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - s.Beta1).ToScalar();
        using var beta2 = s.Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - s.Beta2).ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
        using var epsilon = s.Epsilon.ToScalar();
        using var one = 1.ToScalar(); // add_(Scalar) would make its alpha of 1 as a temporary
        using var stepSize = (-(s.LearningRate / biasCorrection1)).ToScalar();
        if (s.WeightDecay != 0) gradient = gradient.add(parameter, weightDecay);
        state.exp_avg.mul_(beta1).add_(gradient, oneMinusBeta1);
        state.exp_avg_sq.mul_(beta2).addcmul_(gradient, gradient.conj(), oneMinusBeta2);
        var denominator = state.exp_avg_sq.sqrt().div(sqrtBiasCorrection2).add_(epsilon, one);
        parameter.addcdiv_(state.exp_avg, denominator, stepSize);
    }

    private void SgdStep(Parameter parameter, Tensor gradient, SGD.State state)
    {
        var s = Settings;
        using var weightDecay = s.WeightDecay.ToScalar();
        using var momentum = s.Momentum.ToScalar();
        using var oneMinusDampening = 1.0.ToScalar(); // torch.optim.SGD's dampening; Create gives 0
        using var negativeRate = (-s.LearningRate).ToScalar();
        if (s.WeightDecay != 0) gradient = gradient.add(parameter, weightDecay);
        if (s.Momentum != 0)
        {
            if (state.momentum_buffer is null)
            {
                state.momentum_buffer = gradient.clone().detach().DetachFromDisposeScope();
            }
            else
            {
                state.momentum_buffer.mul_(momentum).add_(gradient, oneMinusDampening);
            }
            gradient = s.Nesterov ? gradient.add(state.momentum_buffer, momentum) : state.momentum_buffer;
        }
        parameter.add_(gradient, negativeRate);
    }

    public void ZeroGrad() => optimizer.zero_grad();

    /// <summary>
    /// Whether every parameter and every moment this optimizer keeps is finite: checked after a step, since a step can turn
    /// finite inputs into infinite moments (Adam's squared gradient) that freeze or poison every later step.
    /// </summary>
    public bool AllFinite()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var state = optimizer.state_dict().State;
        for (var i = 0; i < parameters.Length; i++)
        {
            if (!Finite(parameters[i])) return false;
            var moments = state[i] switch
            {
                Adam.State adam => Finite(adam.exp_avg) && Finite(adam.exp_avg_sq),
                SGD.State { momentum_buffer: { } buffer } => Finite(buffer),
                _ => true,
            };
            if (!moments) return false;
        }
        return true;
    }

    private static bool Finite(Tensor tensor) => tensor.isfinite().all().item<bool>();

    /// <summary>Optimizer state (moments, step counts) as PyTorch's optimizer state dict (torch.load reads it).</summary>
    public byte[] SaveState()
    {
        using var stream = new MemoryStream();
        optimizer.save_py(stream, leaveOpen: true);
        return stream.ToArray();
    }

    /// <summary>Restores state saved by <see cref="SaveState"/>; unreadable bytes are a <see cref="CorruptStateException"/>.</summary>
    public void LoadState(ReadOnlySpan<byte> state)
    {
        if (state.IsEmpty) throw new CorruptStateException("optimizer state is empty: not a readable PyTorch optimizer state dict");
        // Moments are parameter-shaped (Adam: two, three with AMSGrad; a step count each): bounded by the parameters before anything is allocated.
        var largest = Math.Max(1, parameters.Select(p => p.numel()).DefaultIfEmpty(1).Max());
        var bytes = parameters.Sum(p => p.numel() * 4);
        StateFileBounds.Check(state, new StateBudget(largest, 8 * bytes + (1 << 20)), "optimizer state");
        try
        {
            using var stream = new MemoryStream(state.ToArray(), writable: false);
            optimizer.load_py(stream, leaveOpen: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CorruptStateException($"optimizer state ({state.Length} bytes) is not a readable PyTorch optimizer state dict for this network: "
                + $"{e.Message.Split('\n')[0]}", e);
        }
    }

    public void Dispose() => optimizer.Dispose();
}
