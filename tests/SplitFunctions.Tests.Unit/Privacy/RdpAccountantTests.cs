using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, item 3: the accountant against published reference values of an established one. The references are the
/// unit tests of Google's dp-accounting, python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py
/// (github.com/google/differential-privacy): test_compute_rdp_gaussian, test_rdp_composition,
/// test_compute_epsilon_delta_pure_dp and test_compute_epsilon_delta_gaussian; Opacus's get_privacy_spent
/// (opacus/accountants/analysis/rdp.py) applies the same conversion. The exact (epsilon, delta) curve of the
/// Gaussian mechanism (Balle and Wang, ICML 2018, Theorem 8; the check dp-accounting's test_delta_bounds_gaussian
/// makes) bounds the RDP figure from below: RDP must never claim less than the truth, nor much more.
/// </summary>
public sealed class RdpAccountantTests
{
    [Fact]
    public void The_RDP_of_a_Gaussian_mechanism_is_alpha_over_two_sigma_squared_and_adds_up_over_releases()
    {
        // dp-accounting test_compute_rdp_gaussian: alpha 3.14159, sigma 2.71828.
        const double alpha = 3.14159, sigma = 2.71828;
        var one = new RdpAccountant([alpha]).ComposeGaussian(sigma);
        one.Rdp[0].Should().BeApproximately(alpha / (2 * sigma * sigma), 1e-12);
        // test_rdp_composition: six releases are six times one.
        new RdpAccountant([alpha]).ComposeGaussian(sigma, 6).Rdp[0].Should().BeApproximately(6 * one.Rdp[0], 1e-12);
        new RdpAccountant([alpha]).ComposeGaussian(sigma, 2).ComposeGaussian(sigma, 4).Rdp[0].Should().BeApproximately(6 * one.Rdp[0], 1e-12);
        // k releases at sigma are one release at sigma / sqrt(k) (dp-accounting's effective noise multiplier).
        new RdpAccountant().ComposeGaussian(1.0, 9).GetEpsilon(1e-3).Epsilon
            .Should().BeApproximately(new RdpAccountant().ComposeGaussian(1.0 / 3).GetEpsilon(1e-3).Epsilon, 1e-9);
    }

    [Fact]
    public void The_conversion_to_epsilon_matches_dp_accounting_s_pure_dp_reference()
    {
        // test_compute_epsilon_delta_pure_dp: orders 2..32, RDP 1.1 at each, delta 1e-5 -> epsilon 1.32783806176 at order 32.
        double[] orders = [.. Enumerable.Range(2, 31).Select(a => (double)a)];
        var (epsilon, order) = RdpAccountant.EpsilonFromRdp(orders, [.. orders.Select(_ => 1.1)], 1e-5);
        epsilon.Should().BeApproximately(1.32783806176, 1e-9);
        order.Should().Be(32);
    }

    [Fact]
    public void A_Gaussian_with_noise_multiplier_4_530877117_is_one_epsilon_at_delta_1e_6_as_dp_accounting_computes()
    {
        // test_compute_epsilon_delta_gaussian: orders 1.000, 1.001, ..., 99.999; sampling probability 1; noise multiplier
        // 4.530877117, "chosen to obtain exactly (1, 1e-6)-DP"; assertAlmostEqual(eps, 1) (7 decimal places).
        double[] orders = [.. Enumerable.Range(1000, 99000).Select(i => 0.001 * i)];
        var epsilon = new RdpAccountant(orders).ComposeGaussian(4.530877117).GetEpsilon(1e-6).Epsilon;
        epsilon.Should().BeApproximately(1.0, 5e-8);
    }

    [Theory]
    [InlineData(1.0, 1, 1e-5)]
    [InlineData(1.0, 9, 1e-3)] // a default vanilla run: 4 epochs + 4 validations + 1 evaluation, delta 1/N for N = 1,000
    [InlineData(2.0, 9, 2e-4)]
    [InlineData(0.5, 4, 1e-3)]
    [InlineData(4.0, 100, 1e-5)]
    public void The_RDP_epsilon_is_an_upper_bound_on_the_exact_Gaussian_epsilon_and_close_to_it(double sigma, int releases, double delta)
    {
        var rdp = RdpAccountant.GaussianEpsilon(sigma, releases, delta);
        // k Gaussian releases at sigma compose exactly to one Gaussian with mu = sqrt(k) / sigma (Balle and Wang, Theorem 8).
        var mu = Math.Sqrt(releases) / sigma;
        ExactDelta(mu, rdp).Should().BeLessThanOrEqualTo(delta * (1 + 1e-6), "RDP never claims less epsilon than the mechanism has");
        var exact = ExactEpsilon(mu, delta);
        rdp.Should().BeGreaterThanOrEqualTo(exact - 1e-9).And.BeLessThan(1.3 * exact + 0.05, "and it is not much looser than the truth");
    }

    [Fact]
    public void No_noise_is_no_guarantee_and_no_release_costs_nothing()
    {
        RdpAccountant.GaussianEpsilon(0, 1, 1e-5).Should().Be(double.PositiveInfinity);
        RdpAccountant.GaussianEpsilon(1, 0, 1e-5).Should().Be(0);
        RdpAccountant.GaussianEpsilon(1, 2, 1e-5).Should().BeGreaterThan(RdpAccountant.GaussianEpsilon(1, 1, 1e-5), "every release costs");
        var badDelta = () => RdpAccountant.GaussianEpsilon(1, 1, 0);
        badDelta.Should().Throw<ArgumentOutOfRangeException>();
    }

    // delta(epsilon) of the Gaussian mechanism with mu = sensitivity / sigma: Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu).
    private static double ExactDelta(double mu, double epsilon) => Phi(mu / 2 - epsilon / mu) - Math.Exp(epsilon) * Phi(-mu / 2 - epsilon / mu);

    private static double ExactEpsilon(double mu, double delta)
    {
        double low = 0, high = 200;
        for (var i = 0; i < 200; i++)
        {
            var mid = (low + high) / 2;
            if (ExactDelta(mu, mid) > delta) low = mid;
            else high = mid;
        }
        return high;
    }

    private static double Phi(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    // Complementary error function, fractional error below 1.2e-7 (Numerical Recipes, erfcc).
    private static double Erfc(double x)
    {
        var z = Math.Abs(x);
        var t = 1 / (1 + 0.5 * z);
        var r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
