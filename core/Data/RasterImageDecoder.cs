using System.Buffers.Binary;
using System.Reflection;
using StbImageSharp;

namespace SplitFunctions.Core.Data;

/// <summary>
/// PNG and JPEG through StbImageSharp (managed; REFERENCES.md "Images and DICOM"): grey, grey+alpha, RGB, RGBA and
/// palette PNG at 1-16 bits, baseline and progressive JPEG. 16-bit PNGs keep their 16 bits (stb's 16-bit path), so a
/// medical export's full range reaches the network. Truncated files are refused before decoding: stb pads a cut JPEG
/// with grey instead of failing; so is a size beyond <see cref="ImageFiles.MaxPixels"/>, read from the header before stb
/// allocates (a 100-byte PNG can declare 50000x50000). A JPEG's EXIF orientation is applied, as a viewer shows it.
/// </summary>
public static class RasterImageDecoder
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    // stb allocates with its own runtime; free with the same one (an internal type, so found once by reflection).
    private static readonly MethodInfo StbFree = typeof(ImageResult).Assembly.GetType("StbImageSharp.Hebron.Runtime.CRuntime")!
        .GetMethod("free", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!;

    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.StartsWith(PngSignature);

    /// <summary>The width x height a PNG or JPEG header declares (the file's head suffices); 0 for anything else or a header not found.</summary>
    public static long DeclaredPixels(ReadOnlySpan<byte> head)
    {
        if (IsPng(head) && head.Length >= 24) return (long)BinaryPrimitives.ReadUInt32BigEndian(head[16..]) * BinaryPrimitives.ReadUInt32BigEndian(head[20..]);
        if (!IsJpeg(head)) return 0;
        try
        {
            var (width, height, _) = JpegHeader(head);
            return (long)width * height;
        }
        catch (UnusableImageException)
        {
            return 0;
        }
    }

    public static bool IsJpeg(ReadOnlySpan<byte> bytes) => bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;

    /// <summary>Decodes a PNG or JPEG; anything else, or a damaged file, is an <see cref="UnusableImageException"/> with the reason.</summary>
    public static DecodedImage Decode(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (IsPng(bytes)) return DecodePng(bytes);
        if (IsJpeg(bytes)) return DecodeJpeg(bytes);
        throw new UnusableImageException("not a PNG or JPEG file (unknown signature)");
    }

    private static DecodedImage DecodePng(byte[] bytes)
    {
        // IHDR is the first chunk: length, "IHDR", width, height, bit depth, colour type.
        if (bytes.Length < 33 || !bytes.AsSpan(12, 4).SequenceEqual("IHDR"u8)) throw new UnusableImageException("damaged PNG (no IHDR header)");
        ImageFiles.RequireSize(BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(20)), "PNG");
        var bitDepth = bytes[24];
        var colourType = bytes[25];
        if (!HasPngEnd(bytes)) throw new UnusableImageException("truncated PNG (no IEND chunk at the end)");
        var mode = colourType switch
        {
            0 => "grey",
            2 => "RGB",
            3 => "palette",
            4 => "grey+alpha",
            6 => "RGBA",
            _ => throw new UnusableImageException($"damaged PNG (colour type {colourType})"),
        };
        var label = $"PNG {bitDepth}-bit {mode}";
        return bitDepth == 16 ? DecodePng16(bytes, label) : Decode8(bytes, label);
    }

    private static DecodedImage DecodeJpeg(byte[] bytes)
    {
        // A whole JPEG ends with the end-of-image marker (some writers add padding after it).
        var tail = bytes.AsSpan(Math.Max(0, bytes.Length - 64));
        if (tail.IndexOf([(byte)0xFF, (byte)0xD9]) < 0) throw new UnusableImageException("truncated JPEG (no end-of-image marker)");
        var (width, height, orientation) = JpegHeader(bytes);
        ImageFiles.RequireSize(width, height, "JPEG");
        var image = Decode8(bytes, "JPEG");
        image = image with { Mode = image.Channels == 1 ? "JPEG 8-bit grey" : "JPEG 8-bit RGB" };
        return orientation is >= 2 and <= 8 ? Orient(image, orientation) : image;
    }

    // The frame header's size (SOF0-15 but DHT, JPG, DAC) and the EXIF orientation (APP1 "Exif", IFD0 tag 0x0112), read before stb decodes.
    private static (uint Width, uint Height, int Orientation) JpegHeader(ReadOnlySpan<byte> bytes)
    {
        var orientation = 1;
        for (var i = 2; i + 4 <= bytes.Length;)
        {
            if (bytes[i] != 0xFF) break;
            var marker = bytes[i + 1];
            if (marker == 0xFF)
            {
                i++;
                continue;
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(bytes[(i + 2)..]);
            if (length < 2 || i + 2 + length > bytes.Length) break;
            var segment = bytes.Slice(i + 4, length - 2);
            if (marker == 0xE1 && segment.StartsWith("Exif\0\0"u8)) orientation = ExifOrientation(segment[6..]);
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC) && segment.Length >= 5)
                return (BinaryPrimitives.ReadUInt16BigEndian(segment[3..]), BinaryPrimitives.ReadUInt16BigEndian(segment[1..]), orientation);
            if (marker == 0xDA) break;
            i += 2 + length;
        }
        throw new UnusableImageException("damaged JPEG (no frame header before the image data)");
    }

    private static int ExifOrientation(ReadOnlySpan<byte> span)
    {
        if (span.Length < 8) return 1;
        var tiff = span.ToArray();
        var little = tiff[0] == (byte)'I';
        int U16(int at) => at + 2 > tiff.Length ? 0
            : little ? BinaryPrimitives.ReadUInt16LittleEndian(tiff.AsSpan(at)) : BinaryPrimitives.ReadUInt16BigEndian(tiff.AsSpan(at));
        var ifd = (long)(little ? BinaryPrimitives.ReadUInt32LittleEndian(tiff.AsSpan(4)) : BinaryPrimitives.ReadUInt32BigEndian(tiff.AsSpan(4)));
        if (ifd < 8 || ifd + 2 > tiff.Length) return 1;
        var count = U16((int)ifd);
        for (var k = 0; k < count; k++)
        {
            var entry = (int)ifd + 2 + (12 * k);
            if (entry + 12 > tiff.Length) break;
            if (U16(entry) == 0x0112 && U16(entry + 2) == 3) return U16(entry + 8);
        }
        return 1;
    }

    /// <summary>
    /// Turns a decoded image the way EXIF orientation 2-8 says a viewer shows it (PIL's ImageOps.exif_transpose): 2 mirror, 3 half turn, 4 flip,
    /// 5 transpose, 6 quarter turn clockwise, 7 transverse, 8 quarter turn anticlockwise.
    /// </summary>
    private static DecodedImage Orient(DecodedImage image, int orientation)
    {
        var (w, h, c) = (image.Width, image.Height, image.Channels);
        var swap = orientation >= 5;
        var (outW, outH) = swap ? (h, w) : (w, h);
        var pixels = new float[image.Pixels.Length];
        for (var y = 0; y < outH; y++)
        {
            for (var x = 0; x < outW; x++)
            {
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                image.Pixels.AsSpan(((sy * w) + sx) * c, c).CopyTo(pixels.AsSpan(((y * outW) + x) * c, c));
            }
        }
        return new DecodedImage(outW, outH, c, pixels, $"{image.Mode}, EXIF orientation {orientation}");
    }

    private static bool HasPngEnd(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 12 && bytes[^8..^4].SequenceEqual("IEND"u8) && BinaryPrimitives.ReadInt32BigEndian(bytes[^12..^8]) == 0;

    private static DecodedImage Decode8(byte[] bytes, string mode)
    {
        ImageResult result;
        try
        {
            result = ImageResult.FromMemory(bytes, ColorComponents.Default);
        }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or ArgumentException or NullReferenceException
            or OverflowException or InvalidDataException)
        {
            throw new UnusableImageException($"damaged {mode.Split(' ')[0]} ({e.Message})", e);
        }
        var channels = (int)result.Comp;
        var pixels = new float[result.Data.Length];
        // Divide (not multiply by 1/255) so values equal torchvision's x / 255 bit for bit.
        for (var i = 0; i < pixels.Length; i++) pixels[i] = result.Data[i] / 255f;
        return new DecodedImage(result.Width, result.Height, channels, pixels, mode);
    }

    private static unsafe DecodedImage DecodePng16(byte[] bytes, string mode)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        int width, height, channels;
        ushort* data;
        try
        {
            var context = new StbImage.stbi__context(stream);
            data = StbImage.stbi__load_and_postprocess_16bit(context, &width, &height, &channels, 0);
        }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or ArgumentException or NullReferenceException
            or OverflowException or InvalidDataException)
        {
            throw new UnusableImageException($"damaged PNG ({e.Message})", e);
        }
        if (data == null) throw new UnusableImageException("damaged 16-bit PNG");
        try
        {
            var count = checked(width * height * channels);
            var pixels = new float[count];
            for (var i = 0; i < count; i++) pixels[i] = data[i] / 65535f;
            return new DecodedImage(width, height, channels, pixels, mode);
        }
        finally
        {
            StbFree.Invoke(null, [Pointer.Box(data, typeof(void*))]);
        }
    }
}
