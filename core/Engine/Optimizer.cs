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

/// <summary>A libtorch optimizer over one network's parameters.</summary>
public sealed unsafe class Optimizer : IDisposable
{
    private readonly OptimizerHandle handle;

    private Optimizer(OptimizerHandle handle, OptimizerSettings settings)
    {
        this.handle = handle;
        Settings = settings;
    }

    public OptimizerSettings Settings { get; }

    public static Optimizer Create(Network network, OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(settings);
        OptimizerHandle h;
        var status = settings.Kind switch
        {
            OptimizerKind.Sgd => NativeMethods.sf_optimizer_sgd(network.Handle, settings.LearningRate, settings.Momentum, settings.WeightDecay, settings.Nesterov ? 1 : 0, out h),
            OptimizerKind.Adam => NativeMethods.sf_optimizer_adam(network.Handle, settings.LearningRate, settings.Beta1, settings.Beta2, settings.Epsilon, settings.WeightDecay, out h),
            _ => throw new ArgumentException($"unknown optimizer {settings.Kind}"),
        };
        NativeStatus.Check(status);
        return new Optimizer(h, settings);
    }

    public void Step() => NativeStatus.Check(NativeMethods.sf_optimizer_step(handle));

    public void ZeroGrad() => NativeStatus.Check(NativeMethods.sf_optimizer_zero_grad(handle));

    /// <summary>Optimizer state (moments, step counts) as bytes.</summary>
    public byte[] SaveState()
    {
        NativeStatus.Check(NativeMethods.sf_optimizer_save_state(handle, out var buffer));
        return NativeBuffer.TakeBytes(buffer);
    }

    public void LoadState(ReadOnlySpan<byte> state)
    {
        fixed (byte* p = state)
            NativeStatus.Check(NativeMethods.sf_optimizer_load_state(handle, p, state.Length));
    }

    public void Dispose() => handle.Dispose();
}
