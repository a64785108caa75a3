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

    /// <summary>A valid 1x1 grey PNG whose header declares <paramref name="width"/> x <paramref name="height"/> (a decompression bomb's header).</summary>
    public static byte[] PngDeclaring(int width, int height)
    {
        var png = Png(1, 1, PngKind.Grey, 8, [0]);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32.HashToUInt32(png.AsSpan(12, 17)));
        return png;
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
    /// A baseline JPEG of four components with Adobe's APP14 marker saying CMYK (transform 0), as Photoshop and print workflows
    /// write them (stored inverted: 255 is no ink). Each 8x8 block is one flat colour (<paramref name="blocks"/>, left to right,
    /// C, M, Y, K each), so only DC coefficients are coded: a minimal encoder with 4-bit DC codes and a one-bit end-of-block.
    /// </summary>
    public static byte[] CmykJpeg(IReadOnlyList<(int C, int M, int Y, int K)> blocks)
    {
        var jpeg = new MemoryStream();
        void Segment(byte marker, byte[] body)
        {
            jpeg.Write([0xFF, marker, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2)]);
            jpeg.Write(body);
        }
        jpeg.Write([0xFF, 0xD8]);
        Segment(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);
        Segment(0xDB, [0, .. Enumerable.Repeat((byte)1, 64)]);
        var width = blocks.Count * 8;
        Segment(0xC0, [8, 0, 8, (byte)(width >> 8), (byte)width, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);
        // DC: categories 0-11 all 4 bits long (code = category); AC: only end-of-block, the 1-bit code 0.
        Segment(0xC4, [0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, .. Enumerable.Range(0, 12).Select(i => (byte)i)]);
        Segment(0xC4, [0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        Segment(0xDA, [4, 1, 0, 2, 0, 3, 0, 4, 0, 0, 63, 0]);
        var bits = new List<bool>();
        void Put(int value, int count)
        {
            for (var b = count - 1; b >= 0; b--) bits.Add(((value >> b) & 1) == 1);
        }
        var previous = new int[4];
        foreach (var block in blocks)
        {
            int[] values = [block.C, block.M, block.Y, block.K];
            for (var c = 0; c < 4; c++)
            {
                // A flat block's DC coefficient is 8 x (value - 128); coded as the difference from the component's previous block.
                var dc = 8 * (values[c] - 128);
                var diff = dc - previous[c];
                previous[c] = dc;
                var category = diff == 0 ? 0 : (int)Math.Floor(Math.Log2(Math.Abs(diff))) + 1;
                Put(category, 4);
                Put(diff >= 0 ? diff : diff + (1 << category) - 1, category);
                Put(0, 1);
            }
        }
        while (bits.Count % 8 != 0) bits.Add(true);
        for (var i = 0; i < bits.Count; i += 8)
        {
            var b = (byte)Enumerable.Range(0, 8).Sum(k => bits[i + k] ? 1 << (7 - k) : 0);
            jpeg.WriteByte(b);
            if (b == 0xFF) jpeg.WriteByte(0);
        }
        jpeg.Write([0xFF, 0xD9]);
        return jpeg.ToArray();
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
