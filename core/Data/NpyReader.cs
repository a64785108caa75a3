using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SplitFunctions.Core.Data;

/// <summary>Reads NumPy .npy arrays (format versions 1-3, C order, little-endian).</summary>
public static partial class NpyReader
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads a .npy file.</summary>
    public static NpyArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found. Check the --data path; the folder must be readable by the agent's account.");
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads one array from a stream; <paramref name="source"/> names it in error messages.</summary>
    public static NpyArray Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var prefix = new byte[8];
        if (!TryFill(stream, prefix) || !prefix.AsSpan(0, 6).SequenceEqual(Magic))
            throw new DataFormatException(source, "not a NumPy .npy array (missing the \\x93NUMPY magic). Save the data with numpy.save or numpy.savez.");

        var major = prefix[6];
        int headerLength;
        if (major == 1)
        {
            var len = new byte[2];
            if (!TryFill(stream, len)) throw Truncated(source, "header length");
            headerLength = len[0] | (len[1] << 8);
        }
        else if (major is 2 or 3)
        {
            var len = new byte[4];
            if (!TryFill(stream, len)) throw Truncated(source, "header length");
            headerLength = BitConverter.ToInt32(len);
            if (headerLength < 0 || headerLength > 1 << 20)
                throw new DataFormatException(source, $"implausible .npy header length {headerLength}; the file is damaged. Re-export it with numpy.save.");
        }
        else
        {
            throw new DataFormatException(source, $".npy format version {major} is not supported (1-3 are). Re-save with a current NumPy.");
        }

        var headerBytes = new byte[headerLength];
        if (!TryFill(stream, headerBytes)) throw Truncated(source, "header");
        // Version 3 headers are UTF-8; earlier ones are Latin-1, a subset for the keys we read.
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);
        var (dtype, fortranOrder, shape) = ParseHeader(header, source);
        if (fortranOrder)
            throw new DataFormatException(source, "the array is stored in Fortran order; only C order is supported. Re-save it with numpy.save(path, "
                + "numpy.ascontiguousarray(array)).");

        // Bounded before it is multiplied: a header may declare any shape, e.g. (1073741824, 1073741824) of float64, whose
        // byte count overflowed a long and reached the allocation as a negative size (an OverflowException and a stack trace).
        var elementSize = NpyDTypes.SizeOf(dtype);
        long count = 1;
        foreach (var d in shape)
        {
            if (d != 0 && count > Array.MaxLength / elementSize / d)
                throw new DataFormatException(source, $"the header declares shape ({string.Join(", ", shape)}), more than one buffer can hold "
                    + $"({Array.MaxLength} bytes). Split the array into smaller files.");
            count *= d;
        }
        var byteCount = count * elementSize;
        // A file (or archive member) shorter than its header promises is refused before the buffer is allocated.
        if (stream.CanSeek && stream.Length - stream.Position < byteCount)
            throw new DataFormatException(source, $"truncated: the header promises {count} elements ({byteCount} bytes) of shape "
                + $"({string.Join(", ", shape)}) but only {stream.Length - stream.Position} bytes follow. Copy the file again; it was cut off.");
        var data = new byte[byteCount];
        if (!TryFill(stream, data))
            throw new DataFormatException(source, $"truncated: the header promises {count} elements ({byteCount} bytes) of shape ({string.Join(", ", shape)}) "
                + $"but the data ends early. Copy the file again; it was cut off.");
        return new NpyArray(dtype, shape, data);
    }

    private static (NpyDType DType, bool FortranOrder, int[] Shape) ParseHeader(string header, string source)
    {
        var descr = DescrPattern().Match(header);
        var fortran = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success)
            throw new DataFormatException(source, $"unreadable .npy header '{header.Trim()}'. Re-save the array with numpy.save.");

        var descrText = descr.Groups[1].Value;
        var dtype = NpyDTypes.Parse(descrText)
            ?? throw new DataFormatException(source, $"unsupported dtype '{descrText}'. Supported: uint8, int32, int64, float32, float64 (little-endian). "
                + $"Convert with array.astype(numpy.float32) or numpy.uint8.");

        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var parsed = new int[dims.Length];
        for (var i = 0; i < dims.Length; i++)
        {
            var dim = dims[i].TrimEnd('L');
            if (!int.TryParse(dim, NumberStyles.None, CultureInfo.InvariantCulture, out parsed[i]))
                throw new DataFormatException(source, $"unreadable dimension '{dims[i]}' in the .npy shape. Re-save the array with numpy.save.");
        }
        return (dtype, fortran.Groups[1].Value == "True", parsed);
    }

    private static DataFormatException Truncated(string source, string part) =>
        new(source, $"truncated in the .npy {part}. Copy the file again; it was cut off.");

    private static bool TryFill(Stream stream, Span<byte> buffer)
    {
        try
        {
            stream.ReadExactly(buffer);
            return true;
        }
        catch (EndOfStreamException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
