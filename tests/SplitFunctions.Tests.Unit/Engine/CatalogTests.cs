using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

public sealed class CatalogTests
{
    [Theory]
    [InlineData("covid-ct-cnn", 4, new long[] { 32, 32, 32 })]
    [InlineData("pneumonia-cnn", 4, new long[] { 32, 14, 14 })]
    [InlineData("ldl-mlp", 16, new long[] { 64 })]
    [InlineData("mura-vgg19", 1, new long[] { 64, 112, 112 })]
    [InlineData("pneumonia-cnn-narrow", 4, new long[] { 3, 14, 14 })]
    public void EachModel_BuildsWithItsCut_AndOneTrainingStepLowersTheLossOnThatBatch(string name, int batch, long[] cut)
    {
        var model = ModelCatalog.Get(name);
        TorchRuntime.Seed(1);
        var (client, server) = model.BuildSplit();
        using var _c = client;
        using var _s = server;
        client.OutputShape.Should().Equal(cut);
        server.OutputShape.Should().Equal([1L]);

        using var clientOptimizer = Optimizer.Create(client, model.Optimizer);
        using var serverOptimizer = Optimizer.Create(server, model.Optimizer);
        var count = batch * model.InputShape.Aggregate(1L, (a, b) => a * b);
        using var x = TensorData.FromFloats(GoldenValues.Values("catalog-input", count, 1.0), [batch, .. model.InputShape]);
        using var y = GoldenValues.Targets(model.Task == TaskKind.Classification, batch);

        double Step()
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            clientOptimizer.ZeroGrad();
            serverOptimizer.ZeroGrad();
            var a = client.Forward(x, train: true);
            var prediction = server.Forward(a, train: true);
            var loss = Loss.Compute(model.Loss, prediction, y, backward: true);
            clientOptimizer.Step();
            serverOptimizer.Step();
            return loss;
        }

        var first = Step();
        var later = first;
        for (var i = 0; i < 3; i++) later = Step();
        double.IsFinite(first).Should().BeTrue();
        later.Should().BeLessThan(first, "a few steps on one batch must fit it better");
    }

    [Fact]
    public void The_narrow_cut_sends_fewer_values_than_the_image_has_pixels_and_keeps_the_preset_key_scheme()
    {
        var narrow = ModelCatalog.PneumoniaCnnNarrow;
        var wide = ModelCatalog.PneumoniaCnn;
        narrow.CutShape.Aggregate(1L, (a, b) => a * b).Should().BeLessThan(28 * 28, "int8 both ways then stays under 2x the raw uint8 image");
        using var client = narrow.BuildClient();
        using var server = narrow.BuildServer(narrow.CutShape);
        using var wideServer = wide.BuildServer(wide.CutShape);
        client.StateNames.Should().Equal("0.weight", "0.bias", "3.weight", "3.bias");
        server.StateNames.Should().Equal(wideServer.StateNames, "the cloud part has pneumonia-cnn's layers, its first convolution taking 3 channels");
        using var firstServerConv = server.GetState("0.weight");
        firstServerConv.shape.Should().Equal([64L, 3, 3, 3]);
    }

    [Fact]
    public void UnknownModel_NamesTheCatalog()
    {
        var act = () => ModelCatalog.Get("resnet-9000");
        act.Should().Throw<UnknownModelException>().WithMessage("*resnet-9000*covid-ct-cnn*ldl-mlp*");
    }

    [Fact]
    public void CutPoint_IsTheFirstBlock()
    {
        ModelCatalog.CovidCtCnn.ClientLayers.OfType<Conv2d>().Should().ContainSingle();
        ModelCatalog.CovidCtCnn.ServerLayers.OfType<Conv2d>().Should().HaveCount(4, "five conv blocks in all");
        ModelCatalog.MuraVgg19.ClientLayers.OfType<Conv2d>().Concat(ModelCatalog.MuraVgg19.ServerLayers.OfType<Conv2d>())
            .Should().HaveCount(16, "VGG19 has 16 convolutions");
        ModelCatalog.LdlMlp.ServerLayers.OfType<LeakyReLU>().Should().NotBeEmpty();
    }
}
