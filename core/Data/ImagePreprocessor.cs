namespace SplitFunctions.Core.Data;

/// <summary>What the model needs from an image array: its input size and how to normalise.</summary>
public sealed record ImagePreprocessingOptions(int Height, int Width)
{
    /// <summary>Axis order of the source array; Auto decides from its shape.</summary>
    public ImageLayout Layout { get; init; } = ImageLayout.Auto;

    /// <summary>Normalise with these statistics; null computes them from the data being prepared.</summary>
    public ChannelStatistics? Statistics { get; init; }

    /// <summary>False leaves pixels in [0, 1] (uint8 input) or as given (float input).</summary>
    public bool Normalize { get; init; } = true;
}

/// <summary>Turns raw image arrays into model input: NCHW float, resized (bilinear) to the model's H×W, scaled, normalised.</summary>
public sealed class ImagePreprocessor(ImagePreprocessingOptions options)
{
    public ImagePreprocessingOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The statistics used by the last <see cref="Prepare"/> (given or computed); reuse them for validation and test data.</summary>
    public ChannelStatistics? Statistics { get; private set; }

    /// <summary>Prepares images (uint8 scaled to [0, 1]; float taken as is) with labels of shape (N) or (N, k).</summary>
    public ImageDataset Prepare(NpyArray images, NpyArray labels, string source = "images")
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        var (n, c, h, w, layout) = Dimensions(images, source);
        if (labels.Rank is < 1 or > 2 || labels.Shape[0] != n)
            throw new DataFormatException(source, $"labels of shape ({string.Join(", ", labels.Shape)}) do not match {n} images; expected ({n}) or ({n}, k).");

        var pixels = images.ToFloats();
        if (images.DType == NpyDType.UInt8)
        {
            // Divide (not multiply by 1/255) so values equal torchvision's x / 255 bit for bit.
            for (var i = 0; i < pixels.Length; i++) pixels[i] /= 255f;
        }
        if (layout == ImageLayout.NHWC) pixels = ToChannelsFirst(pixels, n, h, w, c);

        var resized = BilinearResize.Resize(pixels, n * c, h, w, Options.Height, Options.Width);
        var dataset = new ImageDataset(resized, n, c, Options.Height, Options.Width, labels.ToFloats());
        if (Options.Normalize)
        {
            Statistics = Options.Statistics ?? Statistics ?? ChannelStatistics.Compute(dataset);
            Statistics.Apply(dataset);
        }
        return dataset;
    }

    private (int N, int C, int H, int W, ImageLayout Layout) Dimensions(NpyArray images, string source)
    {
        var s = images.Shape;
        var layout = Options.Layout;
        if (layout == ImageLayout.Auto)
        {
            layout = s.Count switch
            {
                3 => ImageLayout.NHW,
                // Channels-first wins ties (a 3x3 image with 3 channels): it is PyTorch's and the model's order.
                4 when s[1] is 1 or 3 => ImageLayout.NCHW,
                4 when s[3] is 1 or 3 => ImageLayout.NHWC,
                _ => throw new DataFormatException(source, $"cannot tell the image layout of shape ({string.Join(", ", s)}). Use (N, H, W) grey images, (N, "
                    + $"C, H, W) or (N, H, W, C) with C of 1 or 3, or set the layout explicitly."),
            };
        }
        var rank = layout == ImageLayout.NHW ? 3 : 4;
        if (s.Count != rank)
            throw new DataFormatException(source, $"layout {layout} needs a rank-{rank} array but the shape is ({string.Join(", ", s)}).");
        return layout switch
        {
            ImageLayout.NHW => (s[0], 1, s[1], s[2], layout),
            ImageLayout.NCHW => (s[0], s[1], s[2], s[3], layout),
            _ => (s[0], s[3], s[1], s[2], layout),
        };
    }

    private static float[] ToChannelsFirst(float[] nhwc, int n, int h, int w, int c)
    {
        var nchw = new float[nhwc.Length];
        var plane = h * w;
        for (var i = 0; i < n; i++)
            for (var p = 0; p < plane; p++)
                for (var k = 0; k < c; k++)
                    nchw[((i * c) + k) * plane + p] = nhwc[((i * plane) + p) * c + k];
        return nchw;
    }
}
