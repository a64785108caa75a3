using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, item 3: with privacy.clipNorm every release is a Gaussian mechanism: each sample's activations are
/// bounded to norm C (inside the graph, and again on the values sent), then noise sigma x C is added.
/// </summary>
public sealed class ClippedReleaseTests
{
    [Fact]
    public void Clipping_bounds_each_sample_s_norm_leaves_small_samples_alone_and_passes_the_gradient_through()
    {
        using var scope = torch.NewDisposeScope();
        // Four samples of shape [2, 3, 3] with norms 0.5, 3, 30 and 300.
        var values = new float[4 * 18];
        double[] scales = [0.5, 3, 30, 300];
        for (var s = 0; s < 4; s++)
        {
            for (var i = 0; i < 18; i++) values[s * 18 + i] = (float)(scales[s] / Math.Sqrt(18) * (i % 2 == 0 ? 1 : -1));
        }
        var a = torch.tensor(values, [4, 2, 3, 3]).requires_grad_();
        var clipped = ActivationClipping.Clip(a, 2.0);
        var norms = ActivationClipping.RowNorms(clipped.detach().data<float>().ToArray(), 4);
        norms[0].Should().BeApproximately(0.5, 1e-5, "a sample under C is sent as it is");
        norms.Skip(1).Should().OnlyContain(n => Math.Abs(n - 2.0) < 1e-4, "a sample over C is scaled to C");

        clipped.sum().backward();
        var grad = a.grad!.data<float>().ToArray();
        grad[0].Should().BeApproximately(1f, 1e-5f, "below C the gradient is the identity's");
        Math.Abs(grad[3 * 18]).Should().BeLessThan(0.01f, "above C the clipping's Jacobian scales the gradient down");
    }

    [Fact]
    public void A_release_is_clipped_to_C_and_carries_noise_sigma_times_C()
    {
        const int rows = 200, width = 100;
        const double c = 2.0, sigma = 1.5;
        var big = new float[rows * width];
        Array.Fill(big, 10f); // norm 100 per row
        ActivationNoise.Release(big, rows, noiseSigma: 0, clipNorm: c);
        ActivationClipping.RowNorms(big, rows).Should().OnlyContain(n => n <= c, "the bound holds on the bytes sent, rounding included");

        var zeros = new float[rows * width];
        ActivationNoise.Release(zeros, rows, sigma, c);
        var std = Math.Sqrt(zeros.Average(v => (double)v * v));
        std.Should().BeApproximately(sigma * c, 0.05 * sigma * c, "the noise is relative to the clip norm");

        var absolute = new float[rows * width];
        ActivationNoise.Release(absolute, rows, sigma, clipNorm: 0);
        Math.Sqrt(absolute.Average(v => (double)v * v)).Should().BeApproximately(sigma, 0.05 * sigma, "without a clip norm the noise is absolute");
    }

    [Fact]
    public void The_manifest_carries_the_clip_norm_and_refuses_a_negative_one()
    {
        var manifest = RunManifest.ForModel("run-clip", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], 1) with
        {
            Privacy = new PrivacySettings { NoiseSigma = 1, ClipNorm = 4 },
        };
        RunManifest.Parse(manifest.ToJson()).Privacy.ClipNorm.Should().Be(4);
        var negative = () => RunManifest.Parse((manifest with { Privacy = new PrivacySettings { ClipNorm = -1 } }).ToJson());
        negative.Should().Throw<RunManifestException>().WithMessage("*privacy.clipNorm*");
    }
}
