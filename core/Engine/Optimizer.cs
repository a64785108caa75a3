using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Engine;

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

    private Optimizer(OptimizerHelper optimizer, OptimizerSettings settings)
    {
        this.optimizer = optimizer;
        Settings = settings;
    }

    public OptimizerSettings Settings { get; }

    public static Optimizer Create(Network network, OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(settings);
        var parameters = network.Module.parameters();
        OptimizerHelper optimizer = settings.Kind switch
        {
            OptimizerKind.Sgd => optim.SGD(parameters, settings.LearningRate, settings.Momentum, dampening: 0, settings.WeightDecay, settings.Nesterov),
            OptimizerKind.Adam => optim.Adam(parameters, settings.LearningRate, settings.Beta1, settings.Beta2, settings.Epsilon, settings.WeightDecay),
            _ => throw new ArgumentException($"unknown optimizer {settings.Kind}"),
        };
        return new Optimizer(optimizer, settings);
    }

    public void Step()
    {
        using var scope = NewDisposeScope();
        LibTorchErrors.Guard("optimizer step", () => optimizer.step());
    }

    public void ZeroGrad() => optimizer.zero_grad();

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
        try
        {
            using var stream = new MemoryStream(state.ToArray(), writable: false);
            optimizer.load_py(stream, leaveOpen: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CorruptStateException($"optimizer state ({state.Length} bytes) is not a readable PyTorch optimizer state dict for this network: {e.Message.Split('\n')[0]}", e);
        }
    }

    public void Dispose() => optimizer.Dispose();
}
