using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.Intrinsics;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// The int8 wire type's arithmetic (<see cref="ElementType.QInt8"/>, frame version 2): affine quantisation with one scale
/// and one zero point per sample (per slice of the first dimension; one for a scalar), x ~ scale * (q - zeroPoint).
/// <para>
/// Why per sample and affine. Per sample: the cut's gradients differ between samples by orders of magnitude (a BCE
/// gradient is proportional to |p - y|), so one scale per tensor would round the gradients of well-fitted samples to
/// zero, and per-channel scales do not help with that; a sample's int8 values also then never depend on which other
/// samples share its batch (training, evaluation and temporal chunks quantise a sample alike). Affine: activations
/// after ReLU are non-negative, where a symmetric code would waste half of the 256 levels; the range always includes
/// 0, so exact zeros (most ReLU outputs) stay exact. The cost is 5 bytes per sample (fp32 scale, int8 zero point).
/// </para>
/// <para>
/// Parameters travel in the tensor header, after the shape: scale f32 * slices, then zero point i8 * slices. Every
/// element is within scale / 2 (and fp32 rounding) of the value sent. The codec works on spans so it writes straight into the frame, as the
/// other wire types do; a libtorch round trip would copy every tensor twice more.
/// </para>
/// </summary>
public static class QuantisedInt8
{
    /// <summary>Bytes of parameters per slice: an fp32 scale and an int8 zero point.</summary>
    public const int ParameterBytesPerSlice = 5;

    /// <summary>The smallest normal fp32 (2^-126), the smallest scale accepted.</summary>
    public const float MinScale = 1.17549435e-38f;

    /// <summary>The largest scale accepted: anything larger could decode beyond fp32's range.</summary>
    public const float MaxScale = float.MaxValue / 256;

    /// <summary>How many scales a tensor of <paramref name="shape"/> carries: its first dimension (1 for a scalar, 0 when it holds no elements).</summary>
    public static int Slices(ReadOnlySpan<long> shape)
    {
        if (shape.Length == 0) return 1;
        // An empty tensor carries no parameters, so a shape like [huge, 0] cannot ask for a huge table; otherwise
        // shape[0] is at most the element count, which the frame limits already bound.
        foreach (var d in shape)
        {
            if (d == 0) return 0;
        }
        return checked((int)shape[0]);
    }

    /// <summary>Bytes of parameters a tensor of <paramref name="shape"/> carries.</summary>
    public static int ParametersLength(ReadOnlySpan<long> shape) => ParameterBytesPerSlice * Slices(shape);

    /// <summary>
    /// Chooses each slice's scale and zero point from its range (widened to include 0) and writes them; values must be finite.
    /// A slice whose range is too wide for fp32 after scaling is refused (<see cref="ProtocolRejection.NonFinite"/>).
    /// </summary>
    public static byte[] ChooseParameters(int index, ReadOnlySpan<long> shape, ReadOnlySpan<float> values)
    {
        var slices = Slices(shape);
        var parameters = new byte[ParameterBytesPerSlice * slices];
        var sliceLength = slices == 0 ? 0 : values.Length / slices;
        for (var s = 0; s < slices; s++)
        {
            var slice = values.Slice(s * sliceLength, sliceLength);
            float low = 0, high = 0;
            foreach (var v in slice)
            {
                low = MathF.Min(low, v);
                high = MathF.Max(high, v);
            }
            // In double: the range of two finite floats may exceed float.MaxValue.
            var scale = ((double)high - low) / 255;
            if (scale > MaxScale)
            {
                throw new ProtocolException(ProtocolRejection.NonFinite, string.Create(CultureInfo.InvariantCulture,
                    $"Tensor {index} slice {s} spans [{low}, {high}], beyond the range int8 frames can scale: send fp32, or scale the values."));
            }
            // All zeros (or a range below fp32's normals): any normal scale represents it within scale / 2.
            var chosen = (float)Math.Max(scale, MinScale);
            var zeroPoint = Math.Clamp(Math.Round(-128 - low / (double)chosen, MidpointRounding.ToEven), sbyte.MinValue, sbyte.MaxValue);
            BinaryPrimitives.WriteSingleLittleEndian(parameters.AsSpan(4 * s), chosen);
            parameters[4 * slices + s] = (byte)(sbyte)zeroPoint;
        }
        return parameters;
    }

    /// <summary>
    /// The reason the parameters of tensor <paramref name="index"/> are unusable, or null: every scale must be a finite, normal,
    /// positive fp32 of at most <see cref="MaxScale"/> (zero points are any int8).
    /// </summary>
    public static (ProtocolRejection Rejection, string Reason)? Check(int index, ReadOnlySpan<byte> parameters, int slices)
    {
        for (var s = 0; s < slices; s++)
        {
            var scale = BinaryPrimitives.ReadSingleLittleEndian(parameters[(4 * s)..]);
            if (!float.IsFinite(scale))
            {
                return (ProtocolRejection.NonFinite,
                    $"Tensor {index} (int8) has scale {(float.IsNaN(scale) ? "NaN" : scale > 0 ? "+Infinity" : "-Infinity")} for slice {s}: a scale must be a "
                        + $"finite number; the sender is not a SplitFunctions release that writes int8 frames correctly.");
            }
            if (scale < MinScale || scale > MaxScale)
            {
                return (ProtocolRejection.Malformed, string.Create(CultureInfo.InvariantCulture,
                    $"Tensor {index} (int8) has scale {scale:R} for slice {s}: a scale must be a positive fp32 in [{MinScale:R}, {MaxScale:R}] (normal, and "
                        + $"small enough to decode within fp32's range); the sender is not a SplitFunctions release that writes int8 frames correctly."));
            }
        }
        return null;
    }

    /// <summary>
    /// Quantises <paramref name="values"/>, the elements from <paramref name="start"/> of a tensor whose slices hold
    /// <paramref name="sliceLength"/> elements each, into <paramref name="destination"/> (one byte each).
    /// </summary>
    public static void Quantise(ReadOnlySpan<float> values, int start, int sliceLength, ReadOnlySpan<byte> parameters, Span<byte> destination)
    {
        var slices = parameters.Length / ParameterBytesPerSlice;
        var k = 0;
        while (k < values.Length)
        {
            var slice = sliceLength == 0 ? 0 : (start + k) / sliceLength;
            var end = Math.Min(values.Length, (slice + 1) * sliceLength - start);
            // In fp32 by the reciprocal, not in double by division (which was most of an int8 frame's encoding time):
            // an element decodes within scale / 2 plus a few fp32 ulps of its value, and 0 stays exactly the zero point.
            var inverse = 1f / BinaryPrimitives.ReadSingleLittleEndian(parameters[(4 * slice)..]);
            float zeroPoint = (sbyte)parameters[4 * slices + slice];
            QuantiseRun(values[k..end], inverse, zeroPoint, destination[k..end]);
            k = end;
        }
    }

    private static void QuantiseRun(ReadOnlySpan<float> values, float inverse, float zeroPoint, Span<byte> destination)
    {
        var k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var scaleBy = Vector256.Create(inverse);
            var shiftBy = Vector256.Create(zeroPoint);
            // 32 values per round: four vectors of int32 codes narrowed twice to one vector of int8 codes.
            for (; k + 32 <= values.Length; k += 32)
            {
                var low = Vector256.Narrow(Codes(values[k..], scaleBy, shiftBy), Codes(values[(k + 8)..], scaleBy, shiftBy));
                var high = Vector256.Narrow(Codes(values[(k + 16)..], scaleBy, shiftBy), Codes(values[(k + 24)..], scaleBy, shiftBy));
                Vector256.Narrow(low, high).AsByte().CopyTo(destination[k..]);
            }
        }
        for (; k < values.Length; k++)
        {
            destination[k] = (byte)(sbyte)Math.Clamp(MathF.Round(values[k] * inverse + zeroPoint, MidpointRounding.ToEven), sbyte.MinValue, sbyte.MaxValue);
        }
    }

    /// <summary>The codes of 8 values, as the scalar loop computes them (round half to even, clamped to int8).</summary>
    private static Vector256<int> Codes(ReadOnlySpan<float> values, Vector256<float> scaleBy, Vector256<float> shiftBy)
    {
        var codes = Vector256.Round(Vector256.Create(values) * scaleBy + shiftBy);
        return Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(codes, Vector256.Create((float)sbyte.MinValue)), Vector256.Create((float)sbyte.MaxValue)));
    }

    /// <summary>Widens <paramref name="data"/> (one int8 per element) to fp32 with its slices' validated parameters.</summary>
    public static void Dequantise(ReadOnlySpan<byte> data, ReadOnlySpan<byte> parameters, int sliceLength, Span<float> destination)
    {
        var slices = parameters.Length / ParameterBytesPerSlice;
        for (var s = 0; s < slices; s++)
        {
            var scale = BinaryPrimitives.ReadSingleLittleEndian(parameters[(4 * s)..]);
            var zeroPoint = (sbyte)parameters[4 * slices + s];
            var from = s * sliceLength;
            for (var k = from; k < from + sliceLength; k++) destination[k] = ((sbyte)data[k] - zeroPoint) * scale;
        }
    }
}
