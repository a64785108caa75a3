using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Core.Audit;

/// <summary>A grayscale PNG of image rows (originals above each attack's reconstructions), written without a library.</summary>
public static class AuditPicture
{
    /// <summary>
    /// Writes <paramref name="rows"/> (each a list of single-channel images of height x width, pixels in [0, 1]) as
    /// one PNG, scaled up by <paramref name="scale"/> with a 2-pixel gap.
    /// </summary>
    public static byte[] Png(IReadOnlyList<IReadOnlyList<float[]>> rows, int height, int width, int scale = 3)
    {
        ArgumentNullException.ThrowIfNull(rows);
        const int gap = 2;
        var columns = rows.Max(r => r.Count);
        var w = columns * (width * scale + gap) + gap;
        var h = rows.Count * (height * scale + gap) + gap;
        var raw = new byte[h * (w + 1)];
        for (var i = 0; i < raw.Length; i++) raw[i] = 255;
        for (var y = 0; y < h; y++) raw[y * (w + 1)] = 0; // filter type "none" on every scanline
        for (var r = 0; r < rows.Count; r++)
        {
            for (var c = 0; c < rows[r].Count; c++)
            {
                var image = rows[r][c];
                for (var py = 0; py < height * scale; py++)
                {
                    for (var px = 0; px < width * scale; px++)
                    {
                        var v = image[py / scale * width + px / scale];
                        var y = gap + r * (height * scale + gap) + py;
                        var x = gap + c * (width * scale + gap) + px;
                        raw[y * (w + 1) + 1 + x] = (byte)Math.Clamp(MathF.Round(v * 255), 0, 255);
                    }
                }
            }
        }
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, w);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), h);
        header[8] = 8; // bit depth; colour type 0 (grayscale), compression, filter and interlace 0
        Chunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            Chunk(png, "IDAT", compressed.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream stream, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        stream.Write(length);
        var typed = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, typed);
        data.CopyTo(typed, 4);
        stream.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(length, Crc32(typed));
        stream.Write(length);
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
