using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Privacy;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Audit;

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
        if (a.shape[2] < Window || a.shape[3] < Window) throw new ArgumentException($"SSIM needs images of at least {Window}x{Window}, got "
            + $"{a.shape[2]}x{a.shape[3]}");
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
        var hits = 0L;
        for (long start = 0; start < reconstructions.shape[0]; start += PairRows)
        {
            using var scope = NewDisposeScope();
            var m = Math.Min(PairRows, reconstructions.shape[0] - start);
            var nearest = SsimMatrix(reconstructions.narrow(0, start, m), originals).argmax(1);
            hits += nearest.eq(arange(start, start + m, int64)).sum().item<long>();
        }
        return (double)hits / n;
    }

    private const long PairRows = 32;

    /// <summary>MSE of each pair.</summary>
    public static Tensor Mse(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return (a - b).pow(2).mean([1, 2, 3]);
    }

    /// <summary>
    /// How often reconstruction i is nearest in pixel space (L2) to its own original among all <paramref name="originals"/>;
    /// chance is 1 / n. Often well above the SSIM figure: a blurry reconstruction keeps a patient's overall intensity layout.
    /// </summary>
    public static double ReidentificationRateL2(Tensor reconstructions, Tensor originals)
    {
        ArgumentNullException.ThrowIfNull(reconstructions);
        ArgumentNullException.ThrowIfNull(originals);
        using var scope = NewDisposeScope();
        var n = originals.shape[0];
        var r = reconstructions.reshape(reconstructions.shape[0], -1).to(float64);
        var o = originals.reshape(n, -1).to(float64);
        // ||r - o||^2 up to the per-row ||r||^2, which does not change the nearest original.
        var distance = o.pow(2).sum(1).unsqueeze(0) - 2 * r.matmul(o.T);
        var hits = distance.argmin(1).eq(arange(reconstructions.shape[0], dtype: int64)).sum().item<long>();
        return (double)hits / n;
    }

    /// <summary>
    /// SSIM of every pair (a[i], b[j]): [a.n, b.n], equal to <see cref="Ssim"/> of each pair. Only the cross term
    /// blur(a_i * b_j) is per pair; it is one batched matrix product over the 11x11 patches (per output pixel, the
    /// Gaussian-weighted dot product of the two patches), so scoring all n^2 pairs costs GEMMs, not n^2 convolutions.
    /// </summary>
    public static Tensor SsimMatrix(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        using var scope = NewDisposeScope();
        var channels = a.shape[1];
        var g = Kernel(1, a.dtype, a.device).reshape(Window * Window);
        // Patches [n * channels, window^2, pixels]: per channel a separate image; the map is averaged over both.
        Tensor Patches(Tensor t) => nn.functional.unfold(t.reshape(t.shape[0] * channels, 1, t.shape[2], t.shape[3]), Window);
        var pa = Patches(a);
        var pb = Patches(b);
        Tensor Mean(Tensor p) => einsum("k,nkp->np", g, p);
        var muA = Mean(pa);
        var muB = Mean(pb);
        var varA = Mean(pa * pa) - muA * muA;
        var varB = Mean(pb * pb) - muB * muB;
        var pixels = pa.shape[2];
        // [pixels, channels, a.n, k] x [pixels, channels, k, b.n] -> blur(a_i * b_j) at each pixel and channel.
        var left = (pa * g.reshape(1, -1, 1)).reshape(a.shape[0], channels, Window * Window, pixels).permute(3, 1, 0, 2);
        var right = pb.reshape(b.shape[0], channels, Window * Window, pixels).permute(3, 1, 2, 0);
        var cross = matmul(left, right); // [pixels, channels, a.n, b.n]
        Tensor ForA(Tensor t) => t.reshape(a.shape[0], channels, pixels).permute(2, 1, 0).unsqueeze(-1);
        Tensor ForB(Tensor t) => t.reshape(b.shape[0], channels, pixels).permute(2, 1, 0).unsqueeze(-2);
        var (mA, mB, vA, vB) = (ForA(muA), ForB(muB), ForA(varA), ForB(varB));
        var cov = cross - mA * mB;
        var map = (2 * mA * mB + C1) * (2 * cov + C2) / ((mA * mA + mB * mB + C1) * (vA + vB + C2));
        return map.mean([0, 1]).MoveToOuterDisposeScope();
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
