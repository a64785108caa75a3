namespace SplitFunctions.Core.Data;

/// <summary>Images as float NCHW with one or more float labels per image (class index or target value).</summary>
public sealed class ImageDataset
{
    public ImageDataset(float[] images, int count, int channels, int height, int width, float[] labels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (images.LongLength != (long)count * channels * height * width)
            throw new ArgumentException($"{images.Length} values do not fill {count}x{channels}x{height}x{width} images", nameof(images));
        if (count > 0 && (labels.Length == 0 || labels.Length % count != 0))
            throw new ArgumentException($"{labels.Length} labels do not divide evenly among {count} images", nameof(labels));
        Images = images;
        Labels = labels;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        LabelsPerImage = count == 0 ? 1 : labels.Length / count;
    }

    /// <summary>Pixel values, NCHW, C order.</summary>
    public float[] Images { get; }

    /// <summary>Labels, <see cref="LabelsPerImage"/> per image, row-major.</summary>
    public float[] Labels { get; }

    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int LabelsPerImage { get; }

    public int ImageSize => Channels * Height * Width;

    /// <summary>Shape of one image as the model catalog states input shapes: [C, H, W].</summary>
    public int[] ImageShape => [Channels, Height, Width];

    public ReadOnlySpan<float> Image(int index) => Images.AsSpan(index * ImageSize, ImageSize);

    /// <summary>A new dataset with the given images, in the given order.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var size = ImageSize;
        var images = new float[(long)indices.Count * size];
        var labels = new float[indices.Count * LabelsPerImage];
        for (var i = 0; i < indices.Count; i++)
        {
            var j = indices[i];
            if ((uint)j >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {j} is outside 0..{Count - 1}");
            Array.Copy(Images, (long)j * size, images, (long)i * size, size);
            Array.Copy(Labels, j * LabelsPerImage, labels, i * LabelsPerImage, LabelsPerImage);
        }
        return new ImageDataset(images, indices.Count, Channels, Height, Width, labels);
    }

    /// <summary>This dataset followed by another of the same image shape.</summary>
    public ImageDataset Concat(ImageDataset other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Channels != Channels || other.Height != Height || other.Width != Width || other.LabelsPerImage != LabelsPerImage)
            throw new ArgumentException($"cannot join images [{Channels}, {Height}, {Width}] with [{other.Channels}, {other.Height}, "
                + $"{other.Width}]", nameof(other));
        return new ImageDataset([.. Images, .. other.Images], Count + other.Count, Channels, Height, Width, [.. Labels, .. other.Labels]);
    }
}
