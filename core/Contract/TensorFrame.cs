using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>One tensor to encode: its wire type, its shape, and its values (not copied).</summary>
public readonly record struct FrameTensor(ElementType WireType, long[] Shape, ReadOnlyMemory<float> Values);

/// <summary>One decoded tensor: the wire type it travelled as, its shape, and its values widened to fp32.</summary>
public sealed record DecodedTensor(ElementType WireType, long[] Shape, float[] Values);

/// <summary>
/// Where one tensor sits inside a frame, after the header has been validated; <paramref name="ParametersOffset"/> is where
/// an int8 tensor's scales and zero points start (-1 for the other types).
/// </summary>
public readonly record struct TensorLayout(ElementType WireType, long[] Shape, int ElementCount, int DataOffset, int ParametersOffset = -1)
{
    /// <summary>Bytes of data on the wire.</summary>
    public int ByteLength => ElementCount * WireType.SizeOf();
}

/// <summary>
/// Tensor frame codec (docs/architecture.md, "Tensor frames and wire types"): frames carry 1..<see cref="MaxTensors"/> tensors by position
/// (features, then labels). Layout, all little-endian:
/// <code>
/// frame  = "SFTF" | version u8 | tensor count u8 | reserved u16 (0) | tensor*
/// tensor = dtype u8 | rank u8 | reserved u16 (0) | element count i64 | shape i64 * rank | [int8 parameters] | data
/// int8 parameters (version 2 only) = scale f32 * slices | zero point i8 * slices    (slices: shape[0], 1 for a scalar)
/// </code>
/// dtype: fp32 (0), fp16 (1), bf16 (2), int8 (5, <see cref="QuantisedInt8"/>). A frame with an int8 tensor is version 2;
/// any other frame is still written as version 1, byte for byte what earlier releases wrote, so they keep reading it,
/// and this build reads both versions.
/// Data follows its header directly, so encoding writes straight from the caller's floats and decoding reads straight
/// into the destination: no intermediate copies.
/// </summary>
public static class TensorFrame
{
    /// <summary>"SFTF" as read little-endian.</summary>
    public const uint Magic = 0x46544653;

    /// <summary>The newest frame version this build writes and reads (2: int8 tensors with their parameters).</summary>
    public const byte CurrentVersion = 2;

    /// <summary>The version of frames without int8 tensors (fp32, fp16, bf16 only), still read and written.</summary>
    public const byte FirstVersion = 1;

    /// <summary>Highest tensor rank on the wire.</summary>
    public const int MaxRank = 8;

    /// <summary>Most tensors in one frame.</summary>
    public const int MaxTensors = 8;

    /// <summary>Default limit on the elements of one frame (all tensors): 256 MiB as fp32.</summary>
    public const int DefaultMaxElements = 64 * 1024 * 1024;

    private const int FrameHeaderLength = 8;
    private const int TensorHeaderLength = 12;
    private const int EncodeChunkElements = 16 * 1024;

    /// <summary>Exact encoded length of <paramref name="tensors"/>; validates types and shapes.</summary>
    public static int GetEncodedLength(ReadOnlySpan<FrameTensor> tensors)
    {
        if (tensors.Length is 0 or > MaxTensors)
            throw new ArgumentException($"A frame holds 1-{MaxTensors} tensors, got {tensors.Length}.", nameof(tensors));
        long length = FrameHeaderLength;
        for (var i = 0; i < tensors.Length; i++)
        {
            var t = tensors[i];
            RequireWireType(t.WireType);
            ArgumentNullException.ThrowIfNull(t.Shape);
            if (t.Shape.Length > MaxRank) throw new ArgumentException($"Tensor {i} has rank {t.Shape.Length}; the wire allows at most "
                + $"{MaxRank}.", nameof(tensors));
            var count = ShapeProduct(t.Shape);
            if (count != t.Values.Length)
                throw new ArgumentException($"Tensor {i} has shape {FormatShape(t.Shape)} ({count} elements) but {t.Values.Length} values.", nameof(tensors));
            length += TensorHeaderLength + 8L * t.Shape.Length + ParametersLength(t.WireType, t.Shape) + (long)count * t.WireType.SizeOf();
        }
        if (length > Array.MaxLength)
            throw new ProtocolException(ProtocolRejection.Oversized, $"The frame would be {length} bytes, more than one buffer holds: send the data in "
                + $"smaller chunks.");
        return (int)length;
    }

    /// <summary>Encodes into a new array of exactly the right length.</summary>
    public static byte[] Encode(params ReadOnlySpan<FrameTensor> tensors)
    {
        var frame = GC.AllocateUninitializedArray<byte>(GetEncodedLength(tensors));
        Encode(tensors, frame);
        return frame;
    }

    /// <summary>Encodes into <paramref name="destination"/> and returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<FrameTensor> tensors, Span<byte> destination)
    {
        var length = GetEncodedLength(tensors);
        if (destination.Length < length) throw new ArgumentException($"The destination holds {destination.Length} bytes; the frame needs "
            + $"{length}.", nameof(destination));
        WriteFrameHeader(destination, tensors);
        var offset = FrameHeaderLength;
        for (var i = 0; i < tensors.Length; i++)
        {
            var parameters = ChooseParameters(i, tensors[i]);
            offset += WriteTensorHeader(destination[offset..], tensors[i], parameters);
            var bytes = tensors[i].Values.Length * tensors[i].WireType.SizeOf();
            WriteValues(i, 0, tensors[i], parameters, tensors[i].Values.Span, destination.Slice(offset, bytes));
            offset += bytes;
        }
        return length;
    }

    /// <summary>Encodes into <paramref name="writer"/> in modest chunks, so writers with bounded segments work too.</summary>
    public static int Encode(ReadOnlySpan<FrameTensor> tensors, IBufferWriter<byte> writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var length = GetEncodedLength(tensors);
        WriteFrameHeader(writer.GetSpan(FrameHeaderLength), tensors);
        writer.Advance(FrameHeaderLength);
        for (var i = 0; i < tensors.Length; i++)
        {
            var t = tensors[i];
            var parameters = ChooseParameters(i, t);
            var headerLength = TensorHeaderLength + 8 * t.Shape.Length + parameters.Length;
            writer.Advance(WriteTensorHeader(writer.GetSpan(headerLength), t, parameters));
            var size = t.WireType.SizeOf();
            for (var start = 0; start < t.Values.Length; start += EncodeChunkElements)
            {
                var values = t.Values.Span.Slice(start, Math.Min(EncodeChunkElements, t.Values.Length - start));
                WriteValues(i, start, t, parameters, values, writer.GetSpan(values.Length * size)[..(values.Length * size)]);
                writer.Advance(values.Length * size);
            }
        }
        return length;
    }

    /// <summary>Validates the whole header (magic, version, types, ranks, shapes, limits, exact length) without touching the data.</summary>
    public static TensorLayout[] ReadLayout(ReadOnlySpan<byte> frame, int maxElements = DefaultMaxElements)
    {
        if (frame.Length < FrameHeaderLength)
            throw Reject(ProtocolRejection.Truncated, $"The frame is {frame.Length} bytes, shorter than its {FrameHeaderLength}-byte header: the upload or "
                + $"download was cut short.");
        if (BinaryPrimitives.ReadUInt32LittleEndian(frame) != Magic)
            throw Reject(ProtocolRejection.Malformed, "These bytes are not a SplitFunctions tensor frame (no 'SFTF' magic): the blob holds something else, or "
                + "it was not decrypted.");
        var version = frame[4];
        if (version is not (FirstVersion or CurrentVersion))
            throw Reject(ProtocolRejection.UnknownVersion, $"Tensor frame version {version} is not supported; this build reads versions "
                + $"{FirstVersion}-{CurrentVersion}. Run the same SplitFunctions release at the hospital and in the cloud.");
        int count = frame[5];
        if (count is 0 or > MaxTensors || BinaryPrimitives.ReadUInt16LittleEndian(frame[6..]) != 0)
            throw Reject(ProtocolRejection.Malformed, $"The frame header is invalid (tensor count {count}, allowed 1-{MaxTensors}; reserved bytes must be "
                + $"zero).");

        var layouts = new TensorLayout[count];
        var offset = FrameHeaderLength;
        long total = 0;
        for (var i = 0; i < count; i++)
        {
            if (frame.Length - offset < TensorHeaderLength)
                throw Reject(ProtocolRejection.Truncated, $"The frame ends inside the header of tensor {i}: the upload or download was cut short.");
            var type = (ElementType)frame[offset];
            if (!IsWireType(type))
                throw Reject(ProtocolRejection.Malformed, $"Tensor {i} has element type code {frame[offset]}; the wire carries only fp32 (0), fp16 (1), bf16 "
                    + $"(2) and int8 (5).");
            if (type == ElementType.QInt8 && version == FirstVersion)
                throw Reject(ProtocolRejection.Malformed, $"Tensor {i} is int8 in a version {FirstVersion} frame; int8 tensors carry their scales in version "
                    + $"{CurrentVersion} frames only.");
            int rank = frame[offset + 1];
            if (rank > MaxRank)
                throw Reject(ProtocolRejection.Malformed, $"Tensor {i} has rank {rank}; the wire allows at most {MaxRank}.");
            if (BinaryPrimitives.ReadUInt16LittleEndian(frame[(offset + 2)..]) != 0)
                throw Reject(ProtocolRejection.Malformed, $"Tensor {i} has non-zero reserved header bytes.");
            var declared = BinaryPrimitives.ReadInt64LittleEndian(frame[(offset + 4)..]);
            offset += TensorHeaderLength;
            if (frame.Length - offset < 8 * rank)
                throw Reject(ProtocolRejection.Truncated, $"The frame ends inside the shape of tensor {i}: the upload or download was cut short.");
            var shape = new long[rank];
            long product = 1;
            for (var d = 0; d < rank; d++)
            {
                shape[d] = BinaryPrimitives.ReadInt64LittleEndian(frame[(offset + 8 * d)..]);
                if (shape[d] < 0)
                    throw Reject(ProtocolRejection.ShapeMismatch, $"Tensor {i} has a negative dimension in shape {FormatShape(shape.AsSpan(0, d + 1))}.");
                // Saturate instead of overflowing: anything past the limit is rejected below anyway.
                product = shape[d] != 0 && product > long.MaxValue / shape[d] ? long.MaxValue : product * shape[d];
            }
            offset += 8 * rank;
            if (product != declared)
                throw Reject(ProtocolRejection.ShapeMismatch, $"Tensor {i} declares {declared} elements but its shape {FormatShape(shape)} holds {product}.");
            // Compared before adding: a saturated product (long.MaxValue) added to a positive total would wrap negative and
            // pass the limit, then cast to a negative element count.
            if (product > maxElements - total)
                throw Reject(ProtocolRejection.Oversized, $"The frame holds more than {maxElements} elements (tensor {i} has shape {FormatShape(shape)}): "
                    + $"send the data in smaller chunks or raise the limit on both sides.");
            total += product;
            var parametersOffset = -1;
            if (type == ElementType.QInt8)
            {
                // shape[0] <= total <= maxElements here, so the parameter length cannot overflow.
                var slices = QuantisedInt8.Slices(shape);
                var parametersLength = QuantisedInt8.ParameterBytesPerSlice * slices;
                if (frame.Length - offset < parametersLength)
                    throw Reject(ProtocolRejection.Truncated, $"Tensor {i} ({FormatShape(shape)}, int8) needs {parametersLength} bytes of scales and zero "
                        + $"points but only {frame.Length - offset} remain: the upload or download was cut short.");
                if (QuantisedInt8.Check(i, frame.Slice(offset, parametersLength), slices) is { } fault)
                    throw Reject(fault.Rejection, fault.Reason);
                parametersOffset = offset;
                offset += parametersLength;
            }
            var bytes = (int)product * type.SizeOf();
            if (frame.Length - offset < bytes)
                throw Reject(ProtocolRejection.Truncated, $"Tensor {i} ({FormatShape(shape)}, {Name(type)}) needs {bytes} bytes of data but only "
                    + $"{frame.Length - offset} remain: the upload or download was cut short.");
            layouts[i] = new TensorLayout(type, shape, (int)product, offset, parametersOffset);
            offset += bytes;
        }
        if (offset != frame.Length)
            throw Reject(ProtocolRejection.ShapeMismatch, $"{frame.Length - offset} bytes follow the last tensor: the shapes in the header do not account for "
                + $"all the data.");
        return layouts;
    }

    /// <summary>Validates and decodes every tensor into new fp32 arrays.</summary>
    public static DecodedTensor[] Decode(ReadOnlySpan<byte> frame, int maxElements = DefaultMaxElements)
    {
        var layouts = ReadLayout(frame, maxElements);
        var tensors = new DecodedTensor[layouts.Length];
        for (var i = 0; i < layouts.Length; i++)
        {
            var values = GC.AllocateUninitializedArray<float>(layouts[i].ElementCount);
            DecodeTensor(frame, layouts[i], i, values);
            tensors[i] = new DecodedTensor(layouts[i].WireType, layouts[i].Shape, values);
        }
        return tensors;
    }

    /// <summary>Decodes the tensor at <paramref name="index"/> of a validated layout into <paramref name="destination"/>, rejecting NaN and infinity.</summary>
    public static void DecodeTensor(ReadOnlySpan<byte> frame, TensorLayout layout, int index, Span<float> destination)
    {
        if (destination.Length != layout.ElementCount)
            throw new ArgumentException($"The destination holds {destination.Length} values; tensor {index} has {layout.ElementCount}.", nameof(destination));
        var data = frame.Slice(layout.DataOffset, layout.ByteLength);
        switch (layout.WireType)
        {
            case ElementType.Float32 when BitConverter.IsLittleEndian:
                data.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case ElementType.Float32:
                for (var k = 0; k < destination.Length; k++) destination[k] = BinaryPrimitives.ReadSingleLittleEndian(data[(4 * k)..]);
                break;
            case ElementType.Float16:
                for (var k = 0; k < destination.Length; k++) destination[k] = (float)BinaryPrimitives.ReadHalfLittleEndian(data[(2 * k)..]);
                break;
            case ElementType.QInt8:
                var slices = QuantisedInt8.Slices(layout.Shape);
                QuantisedInt8.Dequantise(data, frame.Slice(layout.ParametersOffset, QuantisedInt8.ParameterBytesPerSlice * slices), slices == 0 ? 0
                    : layout.ElementCount / slices, destination);
                break;
            default:
                for (var k = 0; k < destination.Length; k++)
                    destination[k] = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(data[(2 * k)..]) << 16);
                break;
        }
        // Inf and NaN survive widening, so one check of the fp32 values covers every wire type.
        var bad = IndexOfNonFinite(destination);
        if (bad >= 0)
        {
            throw Reject(ProtocolRejection.NonFinite,
                $"Tensor {index} ({FormatShape(layout.Shape)}) holds {Describe(destination[bad])} at element {bad} (index {FormatIndex(layout.Shape, bad)}): " +
                "the model at the sender diverged or its input has missing values; fix the data or lower the learning rate.");
        }
    }

    /// <summary>Rounds fp32 to bf16 (the top 16 bits) to nearest, ties to even; NaN stays a quiet NaN.</summary>
    public static ushort ToBFloat16Bits(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Widens bf16 bits to fp32 exactly.</summary>
    public static float FromBFloat16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>First index holding NaN or ±infinity, or -1; compares exponent bits a vector at a time.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        const uint exponent = 0x7F800000;
        var i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var mask = new System.Numerics.Vector<uint>(exponent);
            for (; i <= bits.Length - System.Numerics.Vector<uint>.Count; i += System.Numerics.Vector<uint>.Count)
            {
                if (System.Numerics.Vector.EqualsAny(new System.Numerics.Vector<uint>(bits[i..]) & mask, mask)) break;
            }
        }
        for (; i < bits.Length; i++)
        {
            if ((bits[i] & exponent) == exponent) return i;
        }
        return -1;
    }

    private static void WriteFrameHeader(Span<byte> destination, ReadOnlySpan<FrameTensor> tensors)
    {
        var quantised = false;
        foreach (var t in tensors) quantised |= t.WireType == ElementType.QInt8;
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        destination[4] = quantised ? CurrentVersion : FirstVersion;
        destination[5] = (byte)tensors.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
    }

    private static int WriteTensorHeader(Span<byte> destination, FrameTensor tensor, ReadOnlySpan<byte> parameters)
    {
        destination[0] = (byte)tensor.WireType;
        destination[1] = (byte)tensor.Shape.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(destination[4..], tensor.Values.Length);
        for (var d = 0; d < tensor.Shape.Length; d++) BinaryPrimitives.WriteInt64LittleEndian(destination[(TensorHeaderLength + 8 * d)..], tensor.Shape[d]);
        parameters.CopyTo(destination[(TensorHeaderLength + 8 * tensor.Shape.Length)..]);
        return TensorHeaderLength + 8 * tensor.Shape.Length + parameters.Length;
    }

    // An int8 tensor's scales and zero points (from all its values, so before any data is written); empty for other types.
    private static byte[] ChooseParameters(int index, FrameTensor tensor)
    {
        if (tensor.WireType != ElementType.QInt8) return [];
        var bad = IndexOfNonFinite(tensor.Values.Span);
        if (bad >= 0) throw NonFiniteInput(index, bad, tensor.Values.Span[bad], tensor.WireType);
        return QuantisedInt8.ChooseParameters(index, tensor.Shape, tensor.Values.Span);
    }

    private static int ParametersLength(ElementType type, long[] shape) => type == ElementType.QInt8 ? QuantisedInt8.ParametersLength(shape) : 0;

    // Refuses to put NaN/Inf on the wire, including finite fp32 values that overflow fp16/bf16.
    private static void WriteValues(int index, int start, FrameTensor tensor, ReadOnlySpan<byte> parameters, ReadOnlySpan<float> values, Span<byte> destination)
    {
        var type = tensor.WireType;
        var bad = IndexOfNonFinite(values);
        if (bad >= 0) throw NonFiniteInput(index, start + bad, values[bad], type);
        switch (type)
        {
            case ElementType.Float32 when BitConverter.IsLittleEndian:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case ElementType.Float32:
                for (var k = 0; k < values.Length; k++) BinaryPrimitives.WriteSingleLittleEndian(destination[(4 * k)..], values[k]);
                break;
            case ElementType.Float16:
                for (var k = 0; k < values.Length; k++)
                {
                    var half = (Half)values[k];
                    if (Half.IsInfinity(half)) throw NonFiniteInput(index, start + k, values[k], type);
                    BinaryPrimitives.WriteHalfLittleEndian(destination[(2 * k)..], half);
                }
                break;
            case ElementType.QInt8:
                var slices = QuantisedInt8.Slices(tensor.Shape);
                QuantisedInt8.Quantise(values, start, slices == 0 ? 0 : tensor.Values.Length / slices, parameters, destination);
                break;
            default:
                for (var k = 0; k < values.Length; k++)
                {
                    var bits = ToBFloat16Bits(values[k]);
                    if ((bits & 0x7F80) == 0x7F80) throw NonFiniteInput(index, start + k, values[k], type);
                    BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * k)..], bits);
                }
                break;
        }
    }

    private static ProtocolException NonFiniteInput(int index, int position, float value, ElementType type) =>
        new(ProtocolRejection.NonFinite, float.IsFinite(value)
            ? $"Tensor {index} element {position} is {value.ToString(CultureInfo.InvariantCulture)}, beyond the range of {Name(type)}: send fp32 or bf16, or "
                + $"scale the values."
            : $"Tensor {index} holds {Describe(value)} at element {position}: the model diverged or the input has missing values; nothing non-finite goes on "
                + $"the wire.");

    private static void RequireWireType(ElementType type)
    {
        if (!IsWireType(type))
            throw new ArgumentException($"Element type {type} is not a wire type: use Float32, Float16, BFloat16 or QInt8.", nameof(type));
    }

    /// <summary>Whether tensors of <paramref name="type"/> can travel in a frame (fp32, fp16, bf16, int8).</summary>
    public static bool IsWireType(ElementType type) => type is ElementType.Float32 or ElementType.Float16 or ElementType.BFloat16 or ElementType.QInt8;

    private static int ShapeProduct(long[] shape)
    {
        long product = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Shape {FormatShape(shape)} has a negative dimension.", nameof(shape));
            if (d != 0 && product > Array.MaxLength / d)
                throw new ProtocolException(ProtocolRejection.Oversized, $"Shape {FormatShape(shape)} is too large for one frame: send the data in smaller "
                    + $"chunks.");
            product *= d;
        }
        return (int)product;
    }

    private static ProtocolException Reject(ProtocolRejection rejection, string message) => new(rejection, message);

    private static string Name(ElementType type) => type switch
    {
        ElementType.Float16 => "fp16",
        ElementType.BFloat16 => "bf16",
        ElementType.QInt8 => "int8",
        _ => "fp32",
    };

    private static string Describe(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";

    private static string FormatShape(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    private static string FormatIndex(long[] shape, long flat)
    {
        var index = new long[shape.Length];
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return FormatShape(index);
    }
}
