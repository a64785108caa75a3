using System.Text;

namespace SplitFunctions.Core.Engine;

/// <summary>An nn.Sequential built from a layer spec; its state dict is PyTorch's.</summary>
public sealed unsafe class Network : IDisposable
{
    private readonly NetworkHandle handle;

    private Network(NetworkHandle handle, long[] inputShape, long[] outputShape, Device device)
    {
        this.handle = handle;
        InputShape = inputShape;
        OutputShape = outputShape;
        Device = device;
    }

    internal NetworkHandle Handle => handle;

    /// <summary>Per-sample input shape (no batch dimension).</summary>
    public long[] InputShape { get; }

    /// <summary>Per-sample output shape, found by the engine's dry run.</summary>
    public long[] OutputShape { get; }

    public Device Device { get; }

    /// <summary>
    /// Builds the network from spec text ("conv2d in=1 out=32 kernel=3 padding=1; relu; ...").
    /// Layers draw their initial weights from libtorch's generator: seed it first for reproducible runs.
    /// </summary>
    public static Network Create(string spec, ReadOnlySpan<long> inputShape, Device device = Device.Cpu)
    {
        ArgumentNullException.ThrowIfNull(spec);
        TorchRuntime.EnsureConfigured();
        NetworkHandle h;
        fixed (long* s = inputShape)
            NativeStatus.Check(NativeMethods.sf_network_create(spec, s, inputShape.Length, (int)device, out h));
        var output = new long[8];
        int rank;
        fixed (long* o = output)
            NativeStatus.Check(NativeMethods.sf_network_output_shape(h, o, output.Length, out rank));
        return new Network(h, inputShape.ToArray(), output[..rank], device);
    }

    /// <summary>Runs the layers. In training mode the result keeps the autograd graph for Backward.</summary>
    public Tensor Forward(Tensor input, bool train, bool needInputGrad = false)
    {
        NativeStatus.Check(NativeMethods.sf_network_forward(handle, input.Handle, train ? 1 : 0, needInputGrad ? 1 : 0, out var output));
        return new Tensor(output);
    }

    public void ZeroGrad() => NativeStatus.Check(NativeMethods.sf_network_zero_grad(handle));

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount
    {
        get { NativeStatus.Check(NativeMethods.sf_network_parameter_count(handle, out var count)); return count; }
    }

    /// <summary>State-dict keys ("0.weight", "1.running_mean", ...) in PyTorch's order.</summary>
    public IReadOnlyList<string> StateNames
    {
        get
        {
            NativeStatus.Check(NativeMethods.sf_network_state_names(handle, out var buffer));
            return Encoding.UTF8.GetString(NativeBuffer.TakeBytes(buffer)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    /// <summary>A copy of one state entry.</summary>
    public Tensor GetState(string name)
    {
        NativeStatus.Check(NativeMethods.sf_network_get_state(handle, name, out var value));
        return new Tensor(value);
    }

    /// <summary>Overwrites one state entry; the shape must match.</summary>
    public void SetState(string name, Tensor value) => NativeStatus.Check(NativeMethods.sf_network_set_state(handle, name, value.Handle));

    /// <summary>The state dict as bytes PyTorch reads with torch.load.</summary>
    public byte[] SaveState()
    {
        NativeStatus.Check(NativeMethods.sf_network_save_state(handle, out var buffer));
        return NativeBuffer.TakeBytes(buffer);
    }

    /// <summary>Loads a state dict (ours or torch.save of dict(model.state_dict())), strictly: same keys and shapes.</summary>
    public void LoadState(ReadOnlySpan<byte> state)
    {
        fixed (byte* p = state)
            NativeStatus.Check(NativeMethods.sf_network_load_state(handle, p, state.Length));
    }

    public void Dispose() => handle.Dispose();
}
