using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// The audits train many decoders with TorchSharp's Adam; in the full parallel run one of them once failed inside Adam's step
/// ("Unknown scalar type", a native scalar freed under it) and never alone, so the audit tests run alone, after the others.
/// </summary>
[CollectionDefinition(nameof(LeakageAuditTests), DisableParallelization = true)]
public sealed class LeakageAuditCollection;

/// <summary>Issue 15, item 3: the built-in audit finds that an undefended layer leaks and a defended one leaks less (tiny data).</summary>
[Collection(nameof(LeakageAuditTests))]
public sealed class LeakageAuditTests
{
    private static TrainingSet Images(int count, long seed)
    {
        var images = SyntheticImages.Generate(count, 28, 28, seed);
        return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
    }

    [Fact]
    public void UndefendedLayer_LeaksWellAboveTheMeanImage_AndNoiseLeaksLess()
    {
        var auxiliary = Images(240, 1);
        var test = Images(60, 2);
        TorchRuntime.Seed(7);
        using var client = ModelCatalog.PneumoniaCnn.BuildClient();
        var options = new AuditOptions { DecoderSteps = 60, EvaluateEvery = 30, LegacyDecoderSteps = 150, LeakedPairs = [50], PictureColumns = 6 };

        var open = LeakageAudit.Run(client, auxiliary, test, options);
        var defended = LeakageAudit.Run(client, auxiliary, test, options with { NoiseSigma = 2.0 });

        open.Attacks.Select(a => a.Name).Should().HaveCount(6).And.Contain(n => n.Contains("50 leaked")).And.Contain(n => n.StartsWith("ridge"));
        open.Best.Ssim.Should().BeGreaterThan(open.Baseline.Ssim + 0.1, "one conv block is an almost invertible encoding");
        open.Best.Reidentification.Should().BeGreaterThan(5 * open.Chance);
        open.DistanceCorrelation.Should().BeGreaterThan(open.ShuffledDistanceCorrelation);
        defended.Best.Ssim.Should().BeLessThan(open.Best.Ssim - 0.05, "noise the server cannot subtract hides detail");
        open.Png.AsSpan(0, 8).ToArray().Should().Equal([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);

        var folder = Directory.CreateTempSubdirectory("audit-");
        try
        {
            LeakageReportFiles.Save(open, folder.FullName);
            File.ReadAllText(Path.Combine(folder.FullName, "audit.md")).Should().Contain("baseline: the mean image").And.Contain("re-identification");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void CheaperScoring_SsimReidentifiesOnlyTheLeadingAttacks_AndReportsTheSameFigures()
    {
        var auxiliary = Images(240, 5);
        var test = Images(60, 6);
        TorchRuntime.Seed(7);
        using var client = ModelCatalog.PneumoniaCnn.BuildClient();
        var options = new AuditOptions { DecoderSteps = 60, EvaluateEvery = 30, LegacyDecoderSteps = 60, LeakedPairs = [50], PictureColumns = 4, Seed = 3 };

        var every = LeakageAudit.Run(client, auxiliary, test, options with { SsimReidentifiedAttacks = int.MaxValue });
        var cheap = LeakageAudit.Run(client, auxiliary, test, options);

        every.Attacks.Should().OnlyContain(a => a.Reidentification != null);
        var scored = cheap.Attacks.Skip(1).Where(a => a.Reidentification != null).ToList();
        scored.Count.Should().BeInRange(2, 4, "the top 2 by L2 re-identification and the top 2 by mean SSIM");
        cheap.Attacks.Skip(1).Should().Contain(a => a.Reidentification == null);
        // The same attackers (same seeds) give the same reconstructions: every figure the cheaper scoring reports is the full one's.
        foreach (var (a, b) in cheap.Attacks.Zip(every.Attacks))
        {
            a.Name.Should().Be(b.Name);
            a.ReidentificationL2.Should().Be(b.ReidentificationL2);
            if (a.Reidentification is { } r) r.Should().Be(b.Reidentification!.Value);
        }
        cheap.Best.Name.Should().Be(every.Best.Name);
        cheap.Best.Reidentification.Should().NotBeNull();
        cheap.MostReidentifying.BestReidentification.Should().Be(every.MostReidentifying.BestReidentification);
    }

    [Fact]
    public void Ssim_IsOneForIdenticalImages_AndDistanceCorrelationSeparatesDependentFromIndependent()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.rand(4, 1, 28, 28);
        ImageSimilarity.Ssim(x, x).mean().item<float>().Should().BeApproximately(1f, 1e-4f);
        ImageSimilarity.Ssim(x, torch.rand(4, 1, 28, 28)).mean().item<float>().Should().BeLessThan(0.2f);
        var v = torch.randn(200, 5);
        DistanceCorrelation.Value(v, v * 3 + 1).Should().BeApproximately(1, 1e-6);
        DistanceCorrelation.Value(v, torch.randn(200, 5)).Should().BeLessThan(0.35);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void SsimMatrix_EqualsTheSsimOfEachPair_AndReidentificationFindsExactCopies(int channels)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.rand(5, channels, 20, 24);
        var b = torch.rand(7, channels, 20, 24);
        var matrix = ImageSimilarity.SsimMatrix(a, b);
        matrix.shape.Should().Equal(5, 7);
        for (var i = 0; i < 5; i++)
        {
            var pairwise = ImageSimilarity.Ssim(a[i].unsqueeze(0).expand(7, -1, -1, -1), b);
            (matrix[i] - pairwise).abs().max().item<float>().Should().BeLessThan(1e-5f);
        }
        // Copies with a little noise are re-identified; reversed order is not (only the middle one matches itself).
        var originals = torch.rand(40, channels, 28, 28);
        ImageSimilarity.ReidentificationRate((originals + 0.02 * torch.randn_like(originals)).clamp(0, 1), originals).Should().Be(1.0);
        ImageSimilarity.ReidentificationRate(originals.flip(0), originals).Should().Be(0.0);
    }

    [Fact]
    public void NoPeek_ItsGradientJoinsTheServersInTheClientBackward()
    {
        var data = Images(16, 3);
        var manifest = RunManifest.ForModel("run-nopeek", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], 5);
        using var plain = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var nopeek = ClientLayer.Create(manifest with { Privacy = new PrivacySettings { NoPeekAlpha = 1 } }, trainable: true, secret: null);
        float[] before;
        using (var w = plain.Network.GetState("0.weight")) before = w.ToFloats();
        int[] rows = [.. Enumerable.Range(0, 16)];
        foreach (var layer in new[] { plain, nopeek })
        {
            using var scope = torch.NewDisposeScope();
            var a = layer.Forward(data, rows, train: true, out _);
            layer.ApplyGradient(a, new float[a.numel()]); // the server's dL/dA is zero here
        }
        using var w0 = plain.Network.GetState("0.weight");
        using var w1 = nopeek.Network.GetState("0.weight");
        // Weights, not SaveState() bytes: the saved archive carries a timestamp.
        w0.ToFloats().Should().Equal(before, "a zero server gradient moves nothing without NoPeek");
        nopeek.LastNoPeekPenalty.Should().BeGreaterThan(0);
        w1.ToFloats().Should().NotEqual(w0.ToFloats(), "the DCor penalty's gradient reached the client weights");
    }

    [Fact]
    public void NoPeek_InUShapedMode_ItsGradientJoinsTheServersInTheHeadBackward()
    {
        var data = Images(16, 4);
        var manifest = RunManifest.ForModel("run-nopeek-u", ModelCatalog.PneumoniaCnn, TrainingMode.UShaped, ["hospital-a"], 5);
        using var plain = UShapedLayers.Create(manifest, secret: null);
        using var nopeek = UShapedLayers.Create(manifest with { Privacy = new PrivacySettings { NoPeekAlpha = 1 } }, secret: null);
        float[] before;
        using (var w = plain.Head.GetState("0.weight")) before = w.ToFloats();
        int[] rows = [.. Enumerable.Range(0, 16)];
        foreach (var layers in new[] { plain, nopeek })
        {
            using var scope = torch.NewDisposeScope();
            var a = layers.HeadForward(data, rows, train: true, out _);
            layers.HeadBackward(a, new float[a.numel()]); // the server's dL/dA is zero here
        }
        using var w0 = plain.Head.GetState("0.weight");
        using var w1 = nopeek.Head.GetState("0.weight");
        w0.ToFloats().Should().Equal(before, "a zero server gradient moves nothing without NoPeek");
        w1.ToFloats().Should().NotEqual(before, "the DCor penalty's gradient reached the head's weights");
    }

    [Theory]
    [InlineData("pneumonia-cnn-cut2", new long[] { 64, 7, 7 })]
    [InlineData("pneumonia-cnn-cut3", new long[] { 128, 3, 3 })]
    public void DeeperCutPresets_MoveBlocksToTheHospital(string name, long[] cut)
    {
        var model = ModelCatalog.Get(name);
        TorchRuntime.Seed(1);
        var (client, server) = model.BuildSplit();
        using var _c = client;
        using var _s = server;
        client.OutputShape.Should().Equal(cut);
        server.OutputShape.Should().Equal([1L]);
        (model.ClientLayers.Count + model.ServerLayers.Count).Should()
            .Be(ModelCatalog.PneumoniaCnn.ClientLayers.Count + ModelCatalog.PneumoniaCnn.ServerLayers.Count);
    }
}
