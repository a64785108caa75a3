namespace SplitFunctions.Core.Data;

/// <summary>Bilinear resizing with PyTorch's F.interpolate(mode="bilinear", align_corners=False, antialias=False) semantics.</summary>
public static class BilinearResize
{
    /// <summary>Resizes <paramref name="planes"/> stacked H×W planes to outH×outW.</summary>
    public static float[] Resize(ReadOnlySpan<float> source, int planes, int height, int width, int outHeight, int outWidth)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        if (source.Length != (long)planes * height * width)
            throw new ArgumentException($"{source.Length} values are not {planes} planes of {height}x{width}", nameof(source));
        var result = new float[(long)planes * outHeight * outWidth];
        if (height == outHeight && width == outWidth)
        {
            source.CopyTo(result);
            return result;
        }

        // The interpolation weights depend only on the output coordinate: compute them once per axis.
        var (y0, y1, wy) = Axis(height, outHeight);
        var (x0, x1, wx) = Axis(width, outWidth);
        for (var p = 0; p < planes; p++)
        {
            var plane = source.Slice(p * height * width, height * width);
            var dst = result.AsSpan(p * outHeight * outWidth, outHeight * outWidth);
            for (var oy = 0; oy < outHeight; oy++)
            {
                var top = plane.Slice(y0[oy] * width, width);
                var bottom = plane.Slice(y1[oy] * width, width);
                var ly = wy[oy];
                for (var ox = 0; ox < outWidth; ox++)
                {
                    var lx = wx[ox];
                    var t = (1 - lx) * top[x0[ox]] + lx * top[x1[ox]];
                    var b = (1 - lx) * bottom[x0[ox]] + lx * bottom[x1[ox]];
                    dst[oy * outWidth + ox] = (1 - ly) * t + ly * b;
                }
            }
        }
        return result;
    }

    // PyTorch's area_pixel_compute_source_index for align_corners=False: src = (dst + 0.5) * in/out - 0.5, clamped at 0.
    private static (int[] Low, int[] High, float[] Weight) Axis(int input, int output)
    {
        var scale = (float)input / output;
        var low = new int[output];
        var high = new int[output];
        var weight = new float[output];
        for (var o = 0; o < output; o++)
        {
            var src = Math.Max(0f, scale * (o + 0.5f) - 0.5f);
            var i0 = Math.Min((int)src, input - 1);
            low[o] = i0;
            high[o] = i0 < input - 1 ? i0 + 1 : i0;
            weight[o] = src - i0;
        }
        return (low, high, weight);
    }
}
