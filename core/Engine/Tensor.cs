using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Engine;

/// <summary>A libtorch tensor owned by managed code; data crosses the boundary as (pointer, length, shape).</summary>
public sealed unsafe class Tensor : IDisposable
{
    internal TensorHandle Handle { get; }

    internal Tensor(TensorHandle handle) => Handle = handle;

    /// <summary>Copies float32 values shaped <paramref name="shape"/> into a new tensor.</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, Device device = Device.Cpu)
        => FromBytes(MemoryMarshal.AsBytes(values), ElementType.Float32, shape, device);

    /// <summary>Copies raw little-endian elements of <paramref name="type"/> into a new tensor; the length must match the shape.</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> data, ElementType type, ReadOnlySpan<long> shape, Device device = Device.Cpu)
    {
        TorchRuntime.EnsureConfigured();
        fixed (byte* p = data)
        fixed (long* s = shape)
        {
            NativeStatus.Check(NativeMethods.sf_tensor_from_data(p, data.Length, (int)type, s, shape.Length, (int)device, out var handle));
            return new Tensor(handle);
        }
    }

    /// <summary>The tensor's shape.</summary>
    public long[] Shape
    {
        get
        {
            NativeStatus.Check(NativeMethods.sf_tensor_rank(Handle, out var rank));
            var shape = new long[rank];
            fixed (long* s = shape) NativeStatus.Check(NativeMethods.sf_tensor_shape(Handle, s, rank));
            return shape;
        }
    }

    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Copies the values as float32 into <paramref name="destination"/>, whose length must equal the element count.</summary>
    public void CopyTo(Span<float> destination) => CopyTo(MemoryMarshal.AsBytes(destination), ElementType.Float32);

    /// <summary>Copies the values converted to <paramref name="type"/>; the destination length must match exactly.</summary>
    public void CopyTo(Span<byte> destination, ElementType type)
    {
        fixed (byte* p = destination)
            NativeStatus.Check(NativeMethods.sf_tensor_copy_to(Handle, (int)type, p, destination.Length));
    }

    /// <summary>The values as a new float32 array.</summary>
    public float[] ToArray()
    {
        var values = new float[checked((int)ElementCount)];
        CopyTo(values);
        return values;
    }

    /// <summary>The gradient accumulated on this tensor (it must have been a forward input with input gradients on).</summary>
    public Tensor Grad()
    {
        NativeStatus.Check(NativeMethods.sf_tensor_grad(Handle, out var grad));
        return new Tensor(grad);
    }

    /// <summary>Backpropagates from this output with the supplied output gradient (dL/dOutput).</summary>
    public void Backward(Tensor outputGradient) => NativeStatus.Check(NativeMethods.sf_tensor_backward(Handle, outputGradient.Handle));

    /// <summary>Backpropagates from this scalar.</summary>
    public void Backward() => NativeStatus.Check(NativeMethods.sf_tensor_backward_scalar(Handle, nint.Zero));

    /// <summary>How many NaN or Inf values the tensor holds.</summary>
    public long CountNonFinite()
    {
        NativeStatus.Check(NativeMethods.sf_tensor_count_non_finite(Handle, out var count));
        return count;
    }

    public void Dispose() => Handle.Dispose();
}
