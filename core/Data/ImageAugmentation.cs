using System.Buffers.Binary;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Core.Data;

/// <summary>
/// Random transformations of a training image at the hospital (the agent's <c>data.augmentation</c>): a horizontal flip, a
/// small rotation and a small shift (pad-and-crop), as torchvision's RandomHorizontalFlip, RandomRotation and
/// RandomCrop(padding) do. A sample's draw is a keyed function of the hospital's order secret, the run, the epoch and
/// the sample's row: reproduced exactly after a restart, never computable by the server (which would otherwise know
/// which view of a patient it sees). Null settings mean no augmentation.
/// </summary>
public sealed record AugmentationSettings
{
    /// <summary>Whether training images are augmented; an <c>augmentation</c> object without it turns augmentation on.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Mirror left-right with probability 1/2. Turn off where laterality matters (the image is not labelled left/right).</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Largest rotation either way, in degrees (0: none).</summary>
    public double MaxRotationDegrees { get; init; } = 10;

    /// <summary>Largest shift either way as a fraction of the side (0.1: 2 pixels at 28, 6 at 64, 22 at 224; 0: none).</summary>
    public double MaxShift { get; init; } = 0.1;

    /// <summary>
    /// Reads the command-line form shared by `splitfn-agent init --augmentation` and `splitfn-local experiments --augmentation`:
    /// "on" (the defaults), or a comma-separated list of "flip" / "no-flip", "rotation=DEGREES", "shift=FRACTION" (each unnamed
    /// setting keeps its default). Returns null with <paramref name="problem"/> set when the text is not that.
    /// </summary>
    public static AugmentationSettings? Parse(string text, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        problem = null;
        var settings = new AugmentationSettings();
        if (text.Trim().Equals("on", StringComparison.OrdinalIgnoreCase)) return settings;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var (key, value) = part.Split('=', 2, StringSplitOptions.TrimEntries) is [var k, var v]
                ? (k.ToLowerInvariant(), v)
                : (part.ToLowerInvariant(), null);
            var number = 0.0;
            var numeric = value is not null && double.TryParse(value, System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out number);
            switch (key)
            {
                case "flip" when value is null: settings = settings with { HorizontalFlip = true }; break;
                case "no-flip" when value is null: settings = settings with { HorizontalFlip = false }; break;
                case "rotation" when numeric: settings = settings with { MaxRotationDegrees = number }; break;
                case "shift" when numeric: settings = settings with { MaxShift = number }; break;
                default:
                    problem = $"augmentation '{part}' is not flip, no-flip, rotation=DEGREES or shift=FRACTION (e.g. --augmentation on, or "
                        + "--augmentation no-flip,rotation=5,shift=0.05)";
                    return null;
            }
        }
        problem = settings.Problem();
        return problem is null ? settings : null;
    }

    /// <summary>The settings in one line, as logs and the agent's state record them (the inverse of <see cref="Parse"/>).</summary>
    public string Describe() => FormattableString.Invariant(
        $"{(HorizontalFlip ? "flip" : "no-flip")},rotation={MaxRotationDegrees},shift={MaxShift}");

    /// <summary>A problem with the settings in one line, or null.</summary>
    public string? Problem() =>
        !double.IsFinite(MaxRotationDegrees) || MaxRotationDegrees is < 0 or > 45
            ? $"data.augmentation.maxRotationDegrees must be 0 to 45, is {MaxRotationDegrees}"
            : !double.IsFinite(MaxShift) || MaxShift is < 0 or > 0.25
                ? $"data.augmentation.maxShift must be 0 to 0.25 (a fraction of the image side), is {MaxShift}"
                : null;
}

/// <summary>Applies <see cref="AugmentationSettings"/> to batches of [channels, height, width] images, keyed by an <see cref="OrderSecret"/>.</summary>
public sealed class ImageAugmentation
{
    private readonly AugmentationSettings settings;
    private readonly OrderSecret secret;
    private readonly string runId;
    private readonly int channels, height, width;

    public ImageAugmentation(AugmentationSettings settings, OrderSecret secret, string runId, IReadOnlyList<long> sampleShape)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (sampleShape.Count != 3) throw new ArgumentException($"augmentation takes images [channels,height,width], not [{string.Join(",", sampleShape)}]");
        if (settings.Problem() is { } problem) throw new ArgumentException(problem, nameof(settings));
        this.settings = settings;
        this.secret = secret;
        this.runId = runId;
        (channels, height, width) = ((int)sampleShape[0], (int)sampleShape[1], (int)sampleShape[2]);
    }

    /// <summary>The augmentation of <paramref name="epoch"/>'s training batches.</summary>
    public EpochAugmentation ForEpoch(long epoch) => new(this, epoch);

    /// <summary>One sample's draw: flipped, rotated by <c>Degrees</c>, shifted by whole pixels.</summary>
    public readonly record struct Draw(bool Flip, double Degrees, int ShiftX, int ShiftY);

    /// <summary>The draw for the sample at <paramref name="row"/> of the training set in <paramref name="epoch"/>.</summary>
    public Draw DrawFor(long epoch, int row)
    {
        var bytes = secret.Derive(runId, "augment", epoch, row);
        static double Unit(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt32LittleEndian(b) / 4294967296.0;
        var maxX = (int)Math.Floor(settings.MaxShift * width);
        var maxY = (int)Math.Floor(settings.MaxShift * height);
        return new Draw(
            settings.HorizontalFlip && Unit(bytes.AsSpan(0, 4)) < 0.5,
            (2 * Unit(bytes.AsSpan(4, 4)) - 1) * settings.MaxRotationDegrees,
            (int)Math.Floor(Unit(bytes.AsSpan(8, 4)) * (2 * maxX + 1)) - maxX,
            (int)Math.Floor(Unit(bytes.AsSpan(12, 4)) * (2 * maxY + 1)) - maxY);
    }

    /// <summary>
    /// Transforms the batch in <paramref name="features"/> (the samples at <paramref name="rows"/>, in order) in place.
    /// Training batches only: validation, evaluation and audit inputs are never augmented.
    /// </summary>
    public void Apply(Span<float> features, ReadOnlySpan<int> rows, long epoch)
    {
        var size = channels * height * width;
        if (features.Length != rows.Length * size)
            throw new ArgumentException($"{features.Length} values are not {rows.Length} images of {channels}x{height}x{width}");
        var source = new float[size];
        for (var i = 0; i < rows.Length; i++)
        {
            var image = features.Slice(i * size, size);
            image.CopyTo(source);
            Transform(source, image, DrawFor(epoch, rows[i]));
        }
    }

    // Inverse mapping with bilinear interpolation: each output pixel is read from where the flip, rotation about the centre
    // and shift put it; pixels from outside the image are 0, the training mean once images are normalised (torchvision's
    // zero fill on normalised tensors).
    private void Transform(float[] source, Span<float> target, Draw draw)
    {
        var radians = draw.Degrees * Math.PI / 180;
        var (cos, sin) = (Math.Cos(radians), Math.Sin(radians));
        var (cx, cy) = ((width - 1) / 2.0, (height - 1) / 2.0);
        var plane = height * width;
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                // Undo the shift, then the rotation (rotate back by -angle about the centre), then the flip.
                double u = x - draw.ShiftX - cx, v = y - draw.ShiftY - cy;
                var sx = cos * u + sin * v + cx;
                var sy = -sin * u + cos * v + cy;
                if (draw.Flip) sx = width - 1 - sx;
                for (var c = 0; c < channels; c++)
                {
                    target[c * plane + y * width + x] = Sample(source.AsSpan(c * plane, plane), sx, sy);
                }
            }
        }
    }

    private float Sample(ReadOnlySpan<float> plane, double x, double y)
    {
        var x0 = (int)Math.Floor(x);
        var y0 = (int)Math.Floor(y);
        double fx = x - x0, fy = y - y0;
        // Whole pixel positions (no rotation) copy the value, so flips and shifts alone are lossless.
        if (Math.Abs(x - Math.Round(x)) < 1e-9 && Math.Abs(y - Math.Round(y)) < 1e-9) return Pixel(plane, (int)Math.Round(x), (int)Math.Round(y));
        return (float)((1 - fy) * ((1 - fx) * Pixel(plane, x0, y0) + fx * Pixel(plane, x0 + 1, y0))
            + fy * ((1 - fx) * Pixel(plane, x0, y0 + 1) + fx * Pixel(plane, x0 + 1, y0 + 1)));
    }

    private float Pixel(ReadOnlySpan<float> plane, int x, int y) => x < 0 || y < 0 || x >= width || y >= height ? 0f : plane[y * width + x];
}

/// <summary>An <see cref="ImageAugmentation"/> for the training batches of one epoch.</summary>
public readonly record struct EpochAugmentation(ImageAugmentation Augmentation, long Epoch)
{
    public void Apply(Span<float> features, ReadOnlySpan<int> rows) => Augmentation.Apply(features, rows, Epoch);
}
