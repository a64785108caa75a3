namespace SplitFunctions.Core.Contract;

/// <summary>Element type of a tensor, on the wire and across the engine boundary (codes are the wire format's).</summary>
public enum ElementType : byte
{
    Float32 = 0,
    Float16 = 1,
    BFloat16 = 2,
    Int64 = 3,
    UInt8 = 4,

    /// <summary>Wire only: int8 with a scale and zero point per sample (affine quantisation, frame version 2).</summary>
    QInt8 = 5,
}

/// <summary>Sizes of the element types.</summary>
public static class ElementTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this ElementType type) => type switch
    {
        ElementType.Float32 => 4,
        ElementType.Float16 => 2,
        ElementType.BFloat16 => 2,
        ElementType.Int64 => 8,
        ElementType.UInt8 => 1,
        ElementType.QInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown element type"),
    };
}
