namespace SplitFunctions.Core.Data;

/// <summary>The NumPy element types the loaders accept (little-endian).</summary>
public enum NpyDType
{
    UInt8,
    Int32,
    Int64,
    Float32,
    Float64,
}

internal static class NpyDTypes
{
    public static int SizeOf(NpyDType dtype) => dtype switch
    {
        NpyDType.UInt8 => 1,
        NpyDType.Int32 or NpyDType.Float32 => 4,
        _ => 8,
    };

    /// <summary>The NumPy `descr` string of a type, as written in .npy headers.</summary>
    public static string Descr(NpyDType dtype) => dtype switch
    {
        NpyDType.UInt8 => "|u1",
        NpyDType.Int32 => "<i4",
        NpyDType.Int64 => "<i8",
        NpyDType.Float32 => "<f4",
        _ => "<f8",
    };

    /// <summary>Parses a `descr`; '=' and '|' mean native order, which is little-endian on every machine we run on.</summary>
    public static NpyDType? Parse(string descr) => descr switch
    {
        "|u1" or "<u1" or "=u1" or "u1" => NpyDType.UInt8,
        "<i4" or "=i4" => NpyDType.Int32,
        "<i8" or "=i8" => NpyDType.Int64,
        "<f4" or "=f4" => NpyDType.Float32,
        "<f8" or "=f8" => NpyDType.Float64,
        _ => null,
    };
}
