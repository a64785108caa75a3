using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// Copies between managed float buffers and TorchSharp tensors, checking lengths in C# first: a frame whose
/// values do not fill its shape is a <see cref="TensorShapeException"/> before libtorch sees it.
/// </summary>
public static class TensorData
{
    /// <summary>A new float32 tensor shaped <paramref name="shape"/> holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, Device? device = null)
    {
        TorchRuntime.EnsureConfigured();
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new TensorShapeException($"shape [{Format(shape)}] has a negative dimension");
            count *= d;
        }
        if (count != values.Length)
            throw new TensorShapeException($"buffer of {values.Length * 4L} bytes cannot fill shape [{Format(shape)}], which needs {count * 4} bytes");
        var tensor = empty(shape.ToArray(), ScalarType.Float32);
        MemoryMarshal.AsBytes(values).CopyTo(tensor.bytes);
        if (device is null || device.type == DeviceType.CPU) return tensor;
        using (tensor) return tensor.to(device);
    }

    /// <summary>The values as float32, in row-major order.</summary>
    public static float[] ToFloats(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var values = new float[tensor.numel()];
        tensor.CopyTo(values);
        return values;
    }

    /// <summary>Copies the values as float32 into <paramref name="destination"/>, whose length must equal the element count.</summary>
    public static void CopyTo(this Tensor tensor, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.numel() != destination.Length)
            throw new TensorShapeException($"tensor of shape [{Format(tensor.shape)}] needs {tensor.numel() * 4} bytes; the destination has "
                + $"{destination.Length * 4L}");
        using var scope = NewDisposeScope();
        var cpu = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
        MemoryMarshal.Cast<byte, float>(cpu.bytes).CopyTo(destination);
    }

    /// <summary>How many NaN or Inf values the tensor holds.</summary>
    public static long CountNonFinite(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var scope = NewDisposeScope();
        return tensor.numel() - isfinite(tensor.detach()).sum().item<long>();
    }

    internal static string Format(ReadOnlySpan<long> shape)
    {
        var parts = new string[shape.Length];
        for (var i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return string.Join(", ", parts);
    }
}
