using static TorchSharp.torch;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid region) and PSNR of images with
/// pixels in [0, 1], batched in TorchSharp. Tensors are [n, channels, height, width].
/// </summary>
public static class ImageSimilarity
{
    private const int Window = 11;
    private const double C1 = 0.01 * 0.01;
    private const double C2 = 0.03 * 0.03;

    /// <summary>Mean SSIM of each pair (a[i], b[i]).</summary>
    public static Tensor Ssim(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var channels = a.shape[1];
        if (a.shape[2] < Window || a.shape[3] < Window) throw new ArgumentException($"SSIM needs images of at least {Window}x{Window}, got {a.shape[2]}x{a.shape[3]}");
        var g = Kernel(channels, a.dtype, a.device);
        Tensor Blur(Tensor t) => nn.functional.conv2d(t, g, groups: channels);
        var muA = Blur(a);
        var muB = Blur(b);
        var varA = Blur(a * a) - muA * muA;
        var varB = Blur(b * b) - muB * muB;
        var cov = Blur(a * b) - muA * muB;
        var map = (2 * muA * muB + C1) * (2 * cov + C2) / ((muA * muA + muB * muB + C1) * (varA + varB + C2));
        return map.mean([1, 2, 3]);
    }

    /// <summary>PSNR in dB of each pair, peak 1.</summary>
    public static Tensor Psnr(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var mse = (a - b).pow(2).mean([1, 2, 3]).clamp_min(1e-10);
        return -10 * mse.log10();
    }

    /// <summary>
    /// How often reconstruction i is nearest (highest SSIM) to its own original among all <paramref name="originals"/>;
    /// chance is 1 / n.
    /// </summary>
    public static double ReidentificationRate(Tensor reconstructions, Tensor originals)
    {
        ArgumentNullException.ThrowIfNull(reconstructions);
        ArgumentNullException.ThrowIfNull(originals);
        var n = originals.shape[0];
        var hits = 0;
        for (long i = 0; i < n; i++)
        {
            using var scope = NewDisposeScope();
            var r = reconstructions[i].unsqueeze(0).expand(n, -1, -1, -1);
            var scores = Ssim(r, originals);
            if (scores.argmax().item<long>() == i) hits++;
        }
        return (double)hits / n;
    }

    private static Tensor Kernel(long channels, ScalarType type, Device device)
    {
        var g = new float[Window];
        for (var i = 0; i < Window; i++) g[i] = (float)Math.Exp(-Math.Pow(i - Window / 2, 2) / (2 * 1.5 * 1.5));
        var sum = g.Sum();
        for (var i = 0; i < Window; i++) g[i] /= sum;
        var k2 = new float[Window * Window];
        for (var y = 0; y < Window; y++) for (var x = 0; x < Window; x++) k2[y * Window + x] = g[y] * g[x];
        return tensor(k2, [1, 1, Window, Window]).to(type).to(device).expand(channels, 1, Window, Window).contiguous();
    }
}
