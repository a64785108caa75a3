namespace SplitFunctions.Core.Data;

/// <summary>
/// Reads one image file whatever its format (PNG, JPEG, DICOM: told by content, not by extension) and prepares it for a
/// network: the same channel conversion for every file, then resized to the network's input.
/// </summary>
public static class ImageFiles
{
    /// <summary>
    /// Most pixels an image (one frame) may have: 50 megapixels, three times a large radiograph (about 4,300 x 3,500), so a real
    /// scan is never refused while a header declaring 50000x50000 (a decompression bomb: 100 bytes that would take gigabytes) is.
    /// Checked from the header, before the decoder allocates.
    /// </summary>
    public const long MaxPixels = 50_000_000;

    /// <summary>Largest PNG or JPEG file read into memory (DICOM is read by GDCM and bounded by <see cref="MaxPixels"/> per frame).</summary>
    public const long MaxRasterBytes = 512L * 1024 * 1024;

    /// <summary>Refuses a size beyond <see cref="MaxPixels"/> (or an empty one), with both numbers in the reason.</summary>
    public static void RequireSize(long width, long height, string format)
    {
        if (width <= 0 || height <= 0) throw new UnusableImageException($"damaged {format} (its header declares a {width}x{height} image)");
        if (width * height > MaxPixels)
        {
            throw new UnusableImageException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{format} declares {width}x{height} pixels, over the {MaxPixels / 1_000_000} megapixels the agent decodes (a damaged file or a "
                + $"decompression bomb; downscale real images first)"));
        }
    }

    /// <summary>
    /// Reads, decodes and prepares a file for a network input while holding its share of <see cref="DecodeBudget"/>, so parallel
    /// decoding never holds more than two of the largest images' pixel buffers at once (small images pass freely). Returns the
    /// decoded image's size and mode (its pixels released) and the prepared planes.
    /// </summary>
    public static (DecodedImage Image, float[] Planes) ReadPrepared(string path, DicomWindow? window, int channels, int height, int width)
    {
        RequireContent(path);
        using var share = DecodeBudget.Take(DeclaredPixels(path));
        var image = Read(path, window);
        return (image with { Pixels = [] }, Prepare(image, channels, height, width));
    }

    // An empty file, or a named pipe or device that reports no size (opening a pipe would wait for a writer forever), is refused unopened.
    private static void RequireContent(string path)
    {
        if (new FileInfo(path) is { Exists: true, Length: 0 }) throw new UnusableImageException("empty file");
    }

    // The pixels a PNG or JPEG header declares (capped at MaxPixels: beyond it the decoder refuses it anyway); 0 when unknown (DICOM,
    // which GDCM decodes one file at a time, or a file whose header is unreadable).
    private static long DeclaredPixels(string path)
    {
        try
        {
            var head = new byte[64 * 1024];
            int got;
            using (var stream = File.OpenRead(path)) got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return Math.Min(MaxPixels, RasterImageDecoder.DeclaredPixels(head.AsSpan(0, got)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Decodes a file; an unusable one is an <see cref="UnusableImageException"/> with the reason.</summary>
    public static DecodedImage Decode(string path, byte[] bytes, DicomWindow? window = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0) throw new UnusableImageException("empty file");
        if (DicomImageDecoder.IsDicom(bytes)) return DicomWorker.Decode(path, window);
        return RasterImageDecoder.Decode(bytes);
    }

    /// <summary>Reads and decodes a file.</summary>
    public static DecodedImage Read(string path, DicomWindow? window = null)
    {
        byte[] bytes;
        try
        {
            RequireContent(path);
            using var stream = File.OpenRead(path);
            // DICOM is read by GDCM from the path: look at its head only; a raster file must fit the size it could plausibly have.
            var head = new byte[132];
            var got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (got == head.Length && DicomImageDecoder.IsDicom(head)) return DicomWorker.Decode(path, window);
            if (stream.Length > MaxRasterBytes)
            {
                throw new UnusableImageException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"{stream.Length / (1024 * 1024)} MiB, larger than the {MaxRasterBytes / (1024 * 1024)} MiB a PNG or JPEG may be"));
            }
            bytes = new byte[stream.Length];
            head.AsSpan(0, got).CopyTo(bytes);
            stream.ReadExactly(bytes.AsSpan(got));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UnusableImageException($"cannot be read ({e.Message})", e);
        }
        return Decode(path, bytes, window);
    }

    /// <summary>
    /// The image as <paramref name="channels"/> planes of <paramref name="height"/> x <paramref name="width"/>, values in
    /// [0, 1]. Large reductions first average whole blocks of pixels (a box filter) so a 1,600-pixel slice shrunk to 64
    /// does not alias; the last step is the bilinear resize the NumPy path uses.
    /// </summary>
    public static float[] Prepare(DecodedImage image, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(image);
        var planes = image.ToPlanes(channels);
        var (h, w) = (image.Height, image.Width);
        var fy = Math.Max(1, h / height);
        var fx = Math.Max(1, w / width);
        if (fy >= 2 || fx >= 2)
        {
            planes = BoxReduce(planes, channels, h, w, fy, fx);
            (h, w) = (h / fy, w / fx);
        }
        return BilinearResize.Resize(planes, channels, h, w, height, width);
    }

    private static float[] BoxReduce(float[] planes, int channels, int height, int width, int fy, int fx)
    {
        var (outH, outW) = (height / fy, width / fx);
        var result = new float[channels * outH * outW];
        var scale = 1f / (fy * fx);
        for (var c = 0; c < channels; c++)
        {
            var source = planes.AsSpan(c * height * width, height * width);
            for (var y = 0; y < outH; y++)
            {
                for (var x = 0; x < outW; x++)
                {
                    var sum = 0f;
                    for (var dy = 0; dy < fy; dy++)
                    {
                        var row = source.Slice(((y * fy) + dy) * width + (x * fx), fx);
                        foreach (var v in row) sum += v;
                    }
                    result[(c * outH * outW) + (y * outW) + x] = sum * scale;
                }
            }
        }
        return result;
    }
}
