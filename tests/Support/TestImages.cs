using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using StbImageWriteSharp;

namespace SplitFunctions.Tests;

/// <summary>
/// Writes real image files for tests: PNG in every colour type at 8 or 16 bits (a minimal encoder: IHDR, PLTE, one
/// zlib IDAT, IEND; filter 0), JPEG through StbImageWriteSharp, and folders of generated class images.
/// </summary>
internal static class TestImages
{
    public enum PngKind { Grey = 0, Rgb = 2, Palette = 3, GreyAlpha = 4, Rgba = 6 }

    /// <summary>
    /// A PNG of <paramref name="samples"/> (row-major, channel values per pixel as the kind needs: 1, 3, 1 palette index, 2, 4), each sample
    /// 0..255 or 0..65535 by <paramref name="bitDepth"/>. A palette PNG maps index i to grey (i, i, i).
    /// </summary>
    public static byte[] Png(int width, int height, PngKind kind, int bitDepth, IReadOnlyList<int> samples)
    {
        var channels = kind switch { PngKind.Grey or PngKind.Palette => 1, PngKind.GreyAlpha => 2, PngKind.Rgb => 3, _ => 4 };
        var bytesPerSample = bitDepth / 8;
        var raw = new MemoryStream();
        for (var y = 0; y < height; y++)
        {
            raw.WriteByte(0);
            for (var i = 0; i < width * channels; i++)
            {
                var v = samples[(y * width * channels) + i];
                if (bytesPerSample == 2) raw.WriteByte((byte)(v >> 8));
                raw.WriteByte((byte)v);
            }
        }
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = (byte)bitDepth;
        header[9] = (byte)kind;
        Chunk(png, "IHDR", header);
        if (kind == PngKind.Palette) Chunk(png, "PLTE", [.. Enumerable.Range(0, 256).SelectMany(i => new[] { (byte)i, (byte)i, (byte)i })]);
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw.ToArray());
        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>An 8-bit grey or RGB JPEG (quality 95) of <paramref name="samples"/> (0..255, 1 or 3 per pixel).</summary>
    public static byte[] Jpeg(int width, int height, int channels, IReadOnlyList<int> samples)
    {
        var data = samples.Select(v => (byte)v).ToArray();
        using var stream = new MemoryStream();
        new ImageWriter().WriteJpg(data, width, height, channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, stream, 95);
        return stream.ToArray();
    }

    /// <summary>
    /// A class-separable picture: class k draws a bright square in quadrant k (of four) on a noisy background, so a small
    /// CNN learns it in a few epochs.
    /// </summary>
    public static int[] ClassPicture(int size, int cls, int seed, int channels = 1, int max = 255)
    {
        var random = new Random(seed);
        var pixels = new int[size * size * channels];
        var (qy, qx) = ((cls / 2) % 2, cls % 2);
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var inside = y / (size / 2) == qy && x / (size / 2) == qx && y % (size / 2) > size / 8 && x % (size / 2) > size / 8;
                var v = (inside ? 0.8 : 0.2) + ((random.NextDouble() - 0.5) * 0.2);
                for (var c = 0; c < channels; c++) pixels[((y * size) + x) * channels + c] = c == 3 ? max : (int)Math.Clamp(v * max, 0, max);
            }
        }
        return pixels;
    }

    /// <summary>
    /// A folder of class subfolders (class0, class1, ...) with <paramref name="perClass"/> images each, alternating PNG and
    /// JPEG, grey and RGB, 8 and 16 bits, at sizes from <paramref name="size"/> to 1.5 times it.
    /// </summary>
    public static string ClassFolder(string root, int classes, int perClass, int size = 32, int seed = 1)
    {
        for (var k = 0; k < classes; k++)
        {
            var folder = Path.Combine(root, $"class{k}");
            Directory.CreateDirectory(folder);
            for (var i = 0; i < perClass; i++)
            {
                var s = size + (i % 3 * size / 4);
                var n = seed + (k * 100000) + i;
                var file = (i % 4) switch
                {
                    0 => ("png", Png(s, s, PngKind.Grey, 8, ClassPicture(s, k, n))),
                    1 => ("jpg", Jpeg(s, s, 3, ClassPicture(s, k, n, channels: 3))),
                    2 => ("png", Png(s, s, PngKind.Grey, 16, ClassPicture(s, k, n, max: 65535))),
                    _ => ("png", Png(s, s, PngKind.Rgba, 8, ClassPicture(s, k, n, channels: 4))),
                };
                File.WriteAllBytes(Path.Combine(folder, $"img{i:D4}.{file.Item1}"), file.Item2);
            }
        }
        return root;
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        png.Write(length);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.HashToUInt32(typed));
        png.Write(crc);
    }
}
