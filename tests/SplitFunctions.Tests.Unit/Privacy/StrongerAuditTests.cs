using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Data;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using TorchSharp;
using Xunit.Abstractions;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, item 1: the audit's attackers are as strong as the ones an independent audit ran: a closed-form ridge map,
/// decoders with model selection, public auxiliary images, every view of a patient averaged after linking, collusion.
/// </summary>
[Collection(nameof(LeakageAuditTests))]
public sealed class StrongerAuditTests(ITestOutputHelper output)
{
    private static TrainingSet Images(int count, long seed)
    {
        var images = SyntheticImages.Generate(count, 28, 28, seed);
        return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
    }

    [Fact]
    public void Ridge_RecoversAKnownLinearMapExactly_WithoutNoise()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var map = torch.randn(40, 60, dtype: torch.float64);
        var bias = torch.randn(1, 60, dtype: torch.float64);
        var a = torch.randn(300, 40, dtype: torch.float64);
        var x = a.matmul(map) + bias;
        var fitted = RidgeInversion.Fit(a[..240].to(torch.float32), x[..240].reshape(240, 1, 6, 10).to(torch.float32), a[240..].to(torch.float32),
            x[240..].reshape(60, 1, 6, 10).to(torch.float32), [0])[0];
        var fresh = torch.randn(50, 40, dtype: torch.float64);
        var expected = (fresh.matmul(map) + bias).reshape(50, 1, 6, 10);
        var predicted = fitted.Predict(fresh.to(torch.float32)).to(torch.float64);
        (predicted - expected).abs().max().item<double>().Should().BeLessThan(1e-3, "the map is linear and the pairs noiseless");
        fitted.RelativeLambda.Should().BeLessThan(1e-4, "held-out pairs without noise need no shrinkage");

        // Fewer rows than features: the dual form, which must still reproduce the pairs it was fitted on.
        var wide = torch.randn(30, 100, dtype: torch.float64);
        var target = wide.matmul(torch.randn(100, 12, dtype: torch.float64)).reshape(30, 1, 3, 4);
        var dual = RidgeInversion.Fit(wide.to(torch.float32), target.to(torch.float32), null, null, [0])[0];
        (dual.Predict(wide.to(torch.float32)).to(torch.float64) - target).abs().max().item<double>().Should().BeLessThan(1e-2);
    }

    [Fact]
    public void MultiViewAveraging_ShrinksTheNoiseAsOneOverSqrtViews_AndLinkingAccuracyIsMeasured()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var clean = torch.randn(200, 64);
        torch.Tensor View(double sigma)
        {
            var values = clean.ToFloats();
            ActivationNoise.Add(values, sigma);
            return TensorData.FromFloats(values, clean.shape);
        }
        double Rms(torch.Tensor t) => (t - clean).pow(2).mean().sqrt().item<float>();
        foreach (var k in new[] { 1, 4, 16 })
        {
            var views = Enumerable.Range(0, k).Select(_ => View(0.5)).ToList();
            var (exact, exactLinking) = MultiViewLinking.Average(views, exact: true, seed: 1);
            exactLinking.Should().Be(1);
            Rms(exact).Should().BeApproximately(0.5 / Math.Sqrt(k), 0.05 / Math.Sqrt(k), $"{k} views");
            // Rows 64 wide and 1 apart on average: noise 0.5 still leaves every view nearest to its own patient.
            var (linked, accuracy) = MultiViewLinking.Average(views, exact: false, seed: 1);
            if (k > 1) accuracy.Should().Be(1);
            Rms(linked).Should().BeApproximately(0.5 / Math.Sqrt(k), 0.05 / Math.Sqrt(k));
        }
        // Noise far above the spread between patients: linking falls to about chance and averaging helps little.
        var drowned = Enumerable.Range(0, 4).Select(_ => View(20)).ToList();
        var (_, poor) = MultiViewLinking.Average(drowned, exact: false, seed: 1);
        poor.Should().BeLessThan(0.1);
    }

    [Fact]
    public void MinCostAssignment_FindsTheCheapestPermutation_AsBruteForceDoes()
    {
        var rng = new Random(3);
        for (var trial = 0; trial < 200; trial++)
        {
            var n = rng.Next(1, 7);
            var cost = Enumerable.Range(0, n * n).Select(_ => Math.Round(rng.NextDouble() * 10, rng.Next(0, 3)) - 5).ToArray();
            var assignment = MinCostAssignment.Solve(cost, n);
            assignment.Should().OnlyHaveUniqueItems().And.HaveCount(n);
            double Sum(IReadOnlyList<int> columns) => columns.Select((c, r) => cost[r * n + c]).Sum();
            Sum(assignment).Should().BeApproximately(Permutations(n).Min(p => Sum(p)), 1e-9, $"trial {trial}, n = {n}");
        }
        MinCostAssignment.Solve([], 0).Should().BeEmpty();
        FluentActions.Invoking(() => MinCostAssignment.Solve([1, double.NaN, 2, 3], 2)).Should().Throw<ArgumentException>();
    }

    private static IEnumerable<int[]> Permutations(int n) => n == 0 ? [[]]
        : Permutations(n - 1).SelectMany(p => Enumerable.Range(0, n).Select(at => p.Take(at).Append(n - 1).Concat(p.Skip(at)).ToArray()));

    [Fact]
    public void LinkingOneToOne_LinksMoreViewsThanNearestAlone_WhenPatientsAreClose()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        var clean = torch.randn(300, 16);
        var views = Enumerable.Range(0, 4).Select(_ =>
        {
            var values = clean.ToFloats();
            ActivationNoise.Add(values, 0.6);
            return TensorData.FromFloats(values, clean.shape);
        }).ToList();
        var (_, nearest) = MultiViewLinking.Average(views, exact: false, seed: 2, oneToOne: false);
        var (_, assigned) = MultiViewLinking.Average(views, exact: false, seed: 2);
        // Every epoch holds each patient once: a server that uses it links more views right than one that links rows one by one.
        nearest.Should().BeInRange(0.2, 0.95, "the noise is comparable to the distances between patients");
        assigned.Should().BeGreaterThan(nearest + 0.03);
    }

    [Fact]
    public void StrongerAudit_BeatsTheOldAttacker_WithPublicImagesMoreViewsAndCollusion()
    {
        var auxiliary = Images(200, 11);
        var publicImages = Images(400, 12);
        var test = Images(60, 13);
        using var client = TorchRuntime.Seeded(7, () => ModelCatalog.PneumoniaCnn.BuildClient());
        using var colluder = TorchRuntime.Seeded(8, () => ModelCatalog.PneumoniaCnn.BuildClient());
        var progress = new List<string>();
        var options = new AuditOptions
        {
            NoiseSigma = 0.5,
            DecoderSteps = 40,
            EvaluateEvery = 20,
            Patience = 1,
            LegacyDecoderSteps = 150,
            LeakedPairs = [],
            PublicImages = publicImages,
            PublicName = "public synthetic",
            Views = 8,
            Colluder = colluder,
            ColluderName = "hospital-b",
            PictureColumns = 4,
            Progress = progress.Add,
        };

        var report = LeakageAudit.Run(client, auxiliary, test, options);
        foreach (var line in progress) output.WriteLine(line);
        output.WriteLine(LeakageReportFiles.Markdown(report));

        AuditAttack Row(string start, string contains = "") => report.Attacks.Single(a => a.Name.StartsWith(start, StringComparison.Ordinal)
            && a.Name.Contains(contains, StringComparison.Ordinal) && (contains.Length > 0 || a.Views == 1));
        var legacy = report.Legacy!;
        var ridge = Row("ridge (closed form)");
        var multiView = Row("ridge, 8 views", "exact linking");
        var linked = Row("ridge, 8 views", "nearest-neighbour");
        ridge.Name.Should().Contain("200 own + 400 public synthetic images");
        ridge.Ssim.Should().BeGreaterThan(legacy.Ssim, "a closed-form map from more auxiliary images beats 150 steps of a small decoder");
        multiView.Ssim.Should().BeGreaterThan(ridge.Ssim + 0.02, "averaging 8 views shrinks the noise by sqrt(8)");
        multiView.BestReidentification.Should().BeGreaterThanOrEqualTo(legacy.BestReidentification);
        multiView.Views.Should().Be(8);
        linked.LinkingAccuracy.Should().BeInRange(0, 1);
        Row("ridge, 8 views", "one-to-one linking by content").LinkingAccuracy.Should().BeInRange(0, 1, "both by-content linkings are attacks");
        report.Best.Ssim.Should().BeGreaterThanOrEqualTo(multiView.Ssim);
        report.Best.Should().NotBe(legacy);
        report.Attacks.Should().Contain(a => a.Name.StartsWith("collusion: ridge with hospital-b's layer", StringComparison.Ordinal));
        report.Attacks.Skip(1).Should().OnlyContain(a => a.Mse > 0 && a.ReidentificationL2 >= 0);
        progress.Should().Contain(line => line.Contains("multi-view", StringComparison.Ordinal));

        var markdown = LeakageReportFiles.Markdown(report);
        markdown.Should().Contain("re-identified (L2)").And.Contain("best attack").And.Contain(legacy.Name);
    }

    [Fact]
    public void PublicImages_ArePreparedWithTheHospitalsStatistics_AndAMissingFileIsOneActionableLine()
    {
        var folder = Directory.CreateTempSubdirectory("public-");
        try
        {
            var images = SyntheticImages.Generate(12, 28, 28, 21);
            var path = Path.Combine(folder.FullName, "public.npz");
            ImageArchive.Save(path, [new("train", images)]);
            var statistics = new ChannelStatistics([0.25f], [0.5f]);

            var loaded = PublicImagesLoader.Load(path, ModelCatalog.PneumoniaCnn, statistics);

            loaded.Count.Should().Be(12);
            // Saved as uint8, so pixels come back on the 1/255 grid; then (x - 0.25) / 0.5 as the hospital's own images.
            var expected = images.Images.Select(p => (MathF.Round(p * 255) / 255 - 0.25f) / 0.5f).ToArray();
            loaded.Features.Should().Equal(expected, (a, b) => Math.Abs(a - b) < 1e-5);
            var missing = () => PublicImagesLoader.Load(Path.Combine(folder.FullName, "none.npz"), ModelCatalog.PneumoniaCnn, statistics);
            missing.Should().Throw<AgentException>().Which.Message.Should().Contain("--public-images").And.NotContain("\n");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
