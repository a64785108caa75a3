using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Privacy;

/// <summary>The U-shaped cut of the catalog, the label-leakage attacks on what the server receives, and the hospital's defence.</summary>
public sealed class UShapedLeakageTests
{
    [Fact]
    public void The_tail_is_the_last_linear_layer_and_what_follows_it()
    {
        UShapedSplit.Tail(ModelCatalog.PneumoniaCnn).Should().Equal(new Linear(64, 1), new Sigmoid());
        UShapedSplit.Tail(ModelCatalog.CovidCtCnn).Should().Equal(new Linear(128, 1), new Sigmoid());
        UShapedSplit.Tail(ModelCatalog.LdlMlp).Should().Equal(new Linear(32, 1));
        UShapedSplit.Body(ModelCatalog.LdlMlp).Count.Should().Be(ModelCatalog.LdlMlp.ServerLayers.Count - 1);
    }

    // What a sigmoid+BCE tail sends back: (p - y) / n times its weight row, one direction per class.
    private static (float[] Gradients, float[] Labels) RankOneGradients(int batch, int width, int seed)
    {
        var rng = new Random(seed);
        var w = Enumerable.Range(0, width).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var labels = Enumerable.Range(0, batch).Select(i => (float)(i % 3 == 0 ? 1 : 0)).ToArray();
        var g = new float[batch * width];
        for (var i = 0; i < batch; i++)
        {
            var p = 0.2 + 0.6 * rng.NextDouble();
            for (var k = 0; k < width; k++) g[i * width + k] = (float)((p - labels[i]) / batch * w[k]);
        }
        return (g, labels);
    }

    // The defence draws fresh CSPRNG noise on every call, so one batch's attack AUC is a random variable (for the
    // settings below about 6% of single batches score >= 0.9). The claims are about its mean over many batches,
    // with margins of more than ten standard errors, so they do not fail by chance.
    private const int Draws = 200;

    private static double MeanDefendedAuc(float[] g, float[] labels, GradientDefence defence) =>
        Enumerable.Range(0, Draws).Average(_ =>
        {
            var defended = (float[])g.Clone();
            OutputGradientDefence.Apply(defended, labels, 64, defence);
            var (scores, kept) = LabelLeakageAttacks.DirectionScores(defended, labels, 64);
            return LabelLeakageAttacks.Auc(scores, kept);
        });

    [Fact]
    public void Undefended_gradients_give_the_labels_away_and_the_defence_takes_them_back()
    {
        var (g, labels) = RankOneGradients(64, 64, seed: 1);
        var (scores, kept) = LabelLeakageAttacks.DirectionScores(g, labels, 64);
        LabelLeakageAttacks.Auc(scores, kept).Should().Be(1.0, "positives and negatives point in opposite directions");

        // Measured mean 0.76, standard deviation 0.10 per batch: standard error 0.007 over 200 batches.
        MeanDefendedAuc(g, labels, new GradientDefence { MaxNorm = true, NoiseMultiplier = 3 }).Should().BeLessThan(0.85);
    }

    [Fact]
    public void Direction_noise_blurs_the_label_sign_and_touches_only_the_separating_direction()
    {
        var (g, labels) = RankOneGradients(64, 64, seed: 3);
        // Measured mean 0.59, standard deviation 0.06 per batch: standard error 0.004 over 200 batches.
        MeanDefendedAuc(g, labels, new GradientDefence { DirectionNoise = 3 }).Should()
            .BeLessThan(0.7, "the sign along the tail's weight row is what gave the label away");

        // Every row moved along the one direction all rows share (the tail's weight row): nothing else was perturbed.
        var defended = (float[])g.Clone();
        OutputGradientDefence.Apply(defended, labels, 64, new GradientDefence { DirectionNoise = 3 });
        var w = g.AsSpan(0, 64).ToArray();
        for (var i = 0; i < 64; i++)
        {
            var delta = Enumerable.Range(0, 64).Select(k => (double)defended[i * 64 + k] - g[i * 64 + k]).ToArray();
            var cosine = delta.Zip(w, (d, v) => d * v).Sum() / (Math.Sqrt(delta.Sum(d => d * d)) * Math.Sqrt(w.Sum(v => (double)v * v)));
            Math.Abs(cosine).Should().BeGreaterThan(0.999);
        }
    }

    [Fact]
    public void Max_norm_equalises_the_norms_and_its_noise_is_never_the_same_twice()
    {
        var (g, labels) = RankOneGradients(64, 256, seed: 2);
        var once = (float[])g.Clone();
        var twice = (float[])g.Clone();
        var defence = new GradientDefence { MaxNorm = true };
        OutputGradientDefence.Apply(once, labels, 64, defence);
        OutputGradientDefence.Apply(twice, labels, 64, defence);
        once.Should().NotEqual(twice, "the noise comes from the CSPRNG, not from anything the server could know");

        // Undefended, the norms differ by a factor of about four, which is the norm attack's signal.
        var max = LabelLeakageAttacks.NormScores(g, 64).Max();
        LabelLeakageAttacks.NormScores(g, 64).Min().Should().BeLessThan(0.5f * max);
        // Defended, every sample's expected squared norm is the batch's largest: the mean over 200 draws is within 5%
        // for every sample (one draw's squared norm varies by about 9% at width 256; 0.6% over 200 draws).
        var meanSquares = new double[64];
        for (var draw = 0; draw < Draws; draw++)
        {
            var defended = (float[])g.Clone();
            OutputGradientDefence.Apply(defended, labels, 64, defence);
            var norms = LabelLeakageAttacks.NormScores(defended, 64);
            for (var i = 0; i < 64; i++) meanSquares[i] += (double)norms[i] * norms[i] / Draws;
        }
        meanSquares.Should().OnlyContain(s => s > 0.95 * max * max && s < 1.05 * max * max, "every sample's gradient is topped up to the batch's largest norm");

        var off = (float[])g.Clone();
        OutputGradientDefence.Apply(off, labels, 64, new GradientDefence());
        off.Should().Equal(g);
    }

    [Fact]
    public void The_manifest_carries_the_u_shaped_settings_and_refuses_bad_ones()
    {
        var manifest = RunManifest.ForModel("run-u", ModelCatalog.LdlMlp, TrainingMode.UShaped, ["alpha"], seed: 1) with
        {
            UShaped = new UShapedSettings
            {
                SecondLegTimeoutSeconds = 30,
                Defence = new GradientDefence { MaxNorm = true, NoiseMultiplier = 1.5, DirectionNoise = 0.5 }
            },
        };
        var parsed = RunManifest.Parse(manifest.ToJson());
        parsed.Mode.Should().Be(TrainingMode.UShaped);
        parsed.UShaped.Should().Be(manifest.UShaped);
        var bad = () => RunManifest.Parse((manifest with { UShaped = new UShapedSettings { Defence = new GradientDefence { NoiseMultiplier = -1 } } })
            .ToJson());
        bad.Should().Throw<RunManifestException>().WithMessage("*noiseMultiplier*");
        var badDirection = ()
            => RunManifest.Parse((manifest with { UShaped = new UShapedSettings { Defence = new GradientDefence { DirectionNoise = double.NaN } } }).ToJson());
        badDirection.Should().Throw<Exception>();
    }
}
