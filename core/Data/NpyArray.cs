using System.Buffers.Binary;

namespace SplitFunctions.Core.Data;

/// <summary>One n-dimensional NumPy array in C order: its type, shape and little-endian bytes.</summary>
public sealed class NpyArray
{
    private readonly byte[] _data;

    public NpyArray(NpyDType dtype, int[] shape, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long count = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
            count *= d;
        }
        if (count * NpyDTypes.SizeOf(dtype) != data.LongLength)
            throw new ArgumentException($"{data.LongLength} bytes do not hold {count} elements of {dtype}", nameof(data));
        DType = dtype;
        Shape = (int[])shape.Clone();
        Count = count;
        _data = data;
    }

    public NpyDType DType { get; }

    public IReadOnlyList<int> Shape { get; }

    /// <summary>Number of elements (product of the shape).</summary>
    public long Count { get; }

    public int Rank => Shape.Count;

    /// <summary>The raw little-endian element bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _data;

    public static NpyArray FromBytes(byte[] values, params int[] shape) => new(NpyDType.UInt8, shape, (byte[])values.Clone());

    public static NpyArray FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        var data = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        return new NpyArray(NpyDType.Float32, shape, data);
    }

    public static NpyArray FromInt64s(ReadOnlySpan<long> values, params int[] shape)
    {
        var data = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(i * 8), values[i]);
        return new NpyArray(NpyDType.Int64, shape, data);
    }

    /// <summary>The elements as float32 (integers converted exactly where they fit, float64 rounded).</summary>
    public float[] ToFloats()
    {
        var result = new float[Count];
        var src = _data.AsSpan();
        switch (DType)
        {
            case NpyDType.UInt8:
                for (var i = 0; i < result.Length; i++) result[i] = src[i];
                break;
            case NpyDType.Int32:
                for (var i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]);
                break;
            case NpyDType.Int64:
                for (var i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]);
                break;
            case NpyDType.Float32:
                for (var i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(i * 4)..]);
                break;
            case NpyDType.Float64:
                for (var i = 0; i < result.Length; i++) result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]);
                break;
        }
        return result;
    }

    /// <summary>The elements as integers (class labels); floating values must be whole numbers.</summary>
    public long[] ToInt64s()
    {
        var result = new long[Count];
        var src = _data.AsSpan();
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = DType switch
            {
                NpyDType.UInt8 => src[i],
                NpyDType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]),
                NpyDType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]),
                NpyDType.Float32 => WholeNumber(BinaryPrimitives.ReadSingleLittleEndian(src[(i * 4)..]), i),
                _ => WholeNumber(BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]), i),
            };
        }
        return result;
    }

    private static long WholeNumber(double value, int index) =>
        double.IsFinite(value) && Math.Floor(value) == value
            ? (long)value
            : throw new InvalidOperationException($"element {index} is {value}, not a whole number, so it cannot be a class label");

    public override string ToString() => $"{DType}[{string.Join(", ", Shape)}]";
}
