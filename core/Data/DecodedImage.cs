namespace SplitFunctions.Core.Data;

/// <summary>
/// One decoded image: pixels interleaved (row-major, <see cref="Channels"/> values per pixel) scaled to [0, 1] from the
/// file's own bit depth (65535 for 16-bit PNG, the window for DICOM), and how the file stored them (for the data report).
/// </summary>
public sealed record DecodedImage(int Width, int Height, int Channels, float[] Pixels, string Mode)
{
    /// <summary>
    /// The image as <paramref name="channels"/> planes (1: grey, 3: RGB), converted the same way for every file so the network never sees the file's
    /// colour mode: colour to grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, as PIL's convert("L")), grey to RGB by copying, alpha dropped
    /// (as PIL's and torchvision's convert("RGB")).
    /// </summary>
    public float[] ToPlanes(int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "images convert to 1 (grey) or 3 (RGB) channels");
        var plane = Width * Height;
        var result = new float[channels * plane];
        var colour = Channels >= 3;
        for (var p = 0; p < plane; p++)
        {
            var i = p * Channels;
            if (channels == 1)
            {
                result[p] = colour ? (0.299f * Pixels[i]) + (0.587f * Pixels[i + 1]) + (0.114f * Pixels[i + 2]) : Pixels[i];
            }
            else
            {
                result[p] = Pixels[i];
                result[plane + p] = colour ? Pixels[i + 1] : Pixels[i];
                result[(2 * plane) + p] = colour ? Pixels[i + 2] : Pixels[i];
            }
        }
        return result;
    }
}

/// <summary>A file the image source cannot use: skipped, counted in the data report with <see cref="Reason"/>.</summary>
public sealed class UnusableImageException(string reason, Exception? inner = null) : Exception(reason, inner)
{
    public string Reason => Message;
}
