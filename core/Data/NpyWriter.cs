using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>Writes NumPy .npy arrays (format 1.0, C order) that numpy.load reads.</summary>
public static class NpyWriter
{
    public static void Write(string path, NpyArray array)
    {
        using var stream = File.Create(path);
        Write(stream, array);
    }

    public static void Write(Stream stream, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        var shape = array.Rank == 1 ? $"({array.Shape[0]},)" : $"({string.Join(", ", array.Shape)})";
        var dict = $"{{'descr': '{NpyDTypes.Descr(array.DType)}', 'fortran_order': False, 'shape': {shape}, }}";
        // NumPy pads the header with spaces so the data starts on a 64-byte boundary.
        var unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write([(byte)(header.Length & 0xff), (byte)(header.Length >> 8)]);
        stream.Write(Encoding.Latin1.GetBytes(header));
        stream.Write(array.Bytes);
    }
}
