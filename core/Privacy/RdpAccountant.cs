namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Renyi differential privacy accountant (Mironov 2017) for compositions of Gaussian mechanisms, as Google's
/// dp-accounting (<c>rdp_privacy_accountant.py</c>) and Opacus (<c>accountants/analysis/rdp.py</c>) compute it with
/// sampling probability 1: a Gaussian mechanism with noise multiplier sigma (noise standard deviation over L2
/// sensitivity) is (alpha, alpha / (2 sigma^2))-RDP at every order alpha, and RDP adds up over releases. The
/// conversion to (epsilon, delta) is the improved one of Canonne, Kamath and Steinke 2020 (Proposition 12) and
/// Asoodeh et al. 2020, minimised over the orders, exactly as dp-accounting's <c>compute_epsilon</c>.
/// Like Flower's <c>RdpAccountant</c> it is a small value a caller can keep, compose and ask before a release.
/// </summary>
public sealed class RdpAccountant
{
    /// <summary>dp-accounting's default orders: 1.1..10.9 in steps of 0.1, 11..63, 128, 256, 512, 1024.</summary>
    public static IReadOnlyList<double> DefaultOrders { get; } =
        [.. Enumerable.Range(1, 99).Select(x => 1 + x / 10.0), .. Enumerable.Range(11, 53).Select(x => (double)x), 128, 256, 512, 1024];

    private readonly double[] orders;
    private readonly double[] rdp;

    public RdpAccountant(IReadOnlyList<double>? orders = null)
    {
        this.orders = [.. orders ?? DefaultOrders];
        if (this.orders.Length == 0 || this.orders.Any(a => !(a >= 1))) throw new ArgumentException("RDP orders must be >= 1", nameof(orders));
        rdp = new double[this.orders.Length];
    }

    /// <summary>The orders and the RDP spent at each so far.</summary>
    public IReadOnlyList<double> Orders => orders;
    public IReadOnlyList<double> Rdp => rdp;

    /// <summary>RDP at <paramref name="order"/> of one Gaussian mechanism with <paramref name="noiseMultiplier"/>: alpha / (2 sigma^2).</summary>
    public static double GaussianRdp(double noiseMultiplier, double order) =>
        noiseMultiplier > 0 ? order / (2 * noiseMultiplier * noiseMultiplier) : double.PositiveInfinity;

    /// <summary>Adds <paramref name="count"/> releases, each a Gaussian mechanism with <paramref name="noiseMultiplier"/> (no subsampling).</summary>
    public RdpAccountant ComposeGaussian(double noiseMultiplier, int count = 1)
    {
        if (!double.IsFinite(noiseMultiplier) || noiseMultiplier < 0) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier));
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0) return this;
        for (var i = 0; i < orders.Length; i++) rdp[i] += count * GaussianRdp(noiseMultiplier, orders[i]);
        return this;
    }

    /// <summary>The smallest epsilon over the orders at which the releases so far are (epsilon, delta)-DP, and that order.</summary>
    public (double Epsilon, double Order) GetEpsilon(double delta) => EpsilonFromRdp(orders, rdp, delta);

    /// <summary>
    /// dp-accounting's <c>compute_epsilon</c>: for each order, 0 if delta^2 + expm1(-rdp) > 0 (the KL bound), else
    /// rdp + log1p(-1/alpha) - log(delta alpha) / (alpha - 1) for alpha > 1.01; the minimum, at least 0.
    /// </summary>
    public static (double Epsilon, double Order) EpsilonFromRdp(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(rdp);
        if (orders.Count != rdp.Count || orders.Count == 0) throw new ArgumentException("one RDP value per order");
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "delta must be in (0, 1)");
        var best = double.PositiveInfinity;
        var bestOrder = orders[0];
        for (var i = 0; i < orders.Count; i++)
        {
            double a = orders[i], r = rdp[i];
            double epsilon;
            if (double.IsPositiveInfinity(r)) epsilon = double.PositiveInfinity;
            else if (delta * delta + Math.Exp(-r) - 1 > 0) epsilon = 0;
            else if (a > 1.01) epsilon = r + Math.Log(1 - 1 / a) - Math.Log(delta * a) / (a - 1);
            else epsilon = double.PositiveInfinity;
            if (epsilon < best)
            {
                best = epsilon;
                bestOrder = a;
            }
        }
        return (Math.Max(0, best), bestOrder);
    }

    /// <summary>Epsilon at <paramref name="delta"/> after <paramref name="releases"/> Gaussian releases with <paramref name="noiseMultiplier"/>.</summary>
    public static double GaussianEpsilon(double noiseMultiplier, int releases, double delta) =>
        releases == 0 ? 0 : new RdpAccountant().ComposeGaussian(noiseMultiplier, releases).GetEpsilon(delta).Epsilon;
}
