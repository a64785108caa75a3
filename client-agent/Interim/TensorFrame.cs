// INTERIM: stands in for core/Protocol (branch `protocol`) until it lands; delete this folder then.
using System.Buffers.Binary;

namespace SplitFunctions.Core.Protocol;

/// <summary>One tensor to encode: float values, shape (batch first) and the element type on the wire.</summary>
public sealed record FrameTensor(ReadOnlyMemory<float> Values, long[] Shape, ElementType Type);

/// <summary>One decoded tensor.</summary>
public sealed record DecodedTensor(float[] Values, long[] Shape);

/// <summary>Tensor frame: "SFTF", version, count, then per tensor dtype, rank, shape and little-endian data.</summary>
public static class TensorFrame
{
    private const uint Magic = 0x46544653; // "SFTF"

    public static byte[] Encode(IReadOnlyList<FrameTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write(Magic);
        writer.Write((byte)1);
        writer.Write((byte)tensors.Count);
        foreach (var t in tensors)
        {
            var count = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (count != t.Values.Length) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"{t.Values.Length} values do not fill shape [{string.Join(",", t.Shape)}]");
            writer.Write((byte)t.Type);
            writer.Write((byte)t.Shape.Length);
            foreach (var d in t.Shape) writer.Write(d);
            foreach (var v in t.Values.Span)
            {
                switch (t.Type)
                {
                    case ElementType.Float32: writer.Write(v); break;
                    case ElementType.Float16: writer.Write((Half)v); break;
                    case ElementType.BFloat16: writer.Write((ushort)(BitConverter.SingleToUInt32Bits(v) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(v) >> 16) & 1) >> 16)); break;
                    default: throw new ProtocolException(ProtocolRejection.Malformed, $"element type {t.Type} cannot travel in a frame");
                }
            }
        }
        writer.Flush();
        return stream.ToArray();
    }

    public static IReadOnlyList<DecodedTensor> Decode(ReadOnlySpan<byte> frame)
    {
        try
        {
            if (frame.Length < 6 || BinaryPrimitives.ReadUInt32LittleEndian(frame) != Magic) throw new ProtocolException(ProtocolRejection.Malformed, "not a tensor frame");
            if (frame[4] != 1) throw new ProtocolException(ProtocolRejection.UnsupportedVersion, $"tensor frame version {frame[4]} is not supported");
            var count = frame[5];
            var offset = 6;
            var result = new List<DecodedTensor>(count);
            for (var i = 0; i < count; i++)
            {
                var type = (ElementType)frame[offset];
                var rank = frame[offset + 1];
                offset += 2;
                var shape = new long[rank];
                for (var d = 0; d < rank; d++, offset += 8) shape[d] = BinaryPrimitives.ReadInt64LittleEndian(frame[offset..]);
                var n = checked((int)shape.Aggregate(1L, (a, b) => a * b));
                var values = new float[n];
                for (var k = 0; k < n; k++)
                {
                    values[k] = type switch
                    {
                        ElementType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(frame[(offset + 4 * k)..]),
                        ElementType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(frame[(offset + 2 * k)..]),
                        ElementType.BFloat16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(frame[(offset + 2 * k)..]) << 16),
                        _ => throw new ProtocolException(ProtocolRejection.Malformed, $"element type {type} cannot travel in a frame"),
                    };
                    if (!float.IsFinite(values[k])) throw new ProtocolException(ProtocolRejection.NonFinite, $"tensor {i} holds a non-finite value at {k}");
                }
                offset += n * type.SizeOf();
                result.Add(new DecodedTensor(values, shape));
            }
            return result;
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, "tensor frame is truncated", e);
        }
    }
}
