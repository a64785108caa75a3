using System.Buffers.Binary;
using System.Reflection;
using StbImageSharp;

namespace SplitFunctions.Core.Data;

/// <summary>
/// PNG and JPEG through StbImageSharp (managed; REFERENCES.md "Images and DICOM"): grey, grey+alpha, RGB, RGBA and
/// palette PNG at 1-16 bits, baseline and progressive JPEG. 16-bit PNGs keep their 16 bits (stb's 16-bit path), so a
/// medical export's full range reaches the network. Truncated files are refused before decoding: stb pads a cut JPEG
/// with grey instead of failing.
/// </summary>
public static class RasterImageDecoder
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    // stb allocates with its own runtime; free with the same one (an internal type, so found once by reflection).
    private static readonly MethodInfo StbFree = typeof(ImageResult).Assembly.GetType("StbImageSharp.Hebron.Runtime.CRuntime")!
        .GetMethod("free", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!;

    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.StartsWith(PngSignature);

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
        var image = Decode8(bytes, "JPEG");
        return image with { Mode = image.Channels == 1 ? "JPEG 8-bit grey" : "JPEG 8-bit RGB" };
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
