using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Models;

namespace SplitFunctions.Tests.Engine;

/// <summary>Our engine against PyTorch 1.13.1 (fixtures from tests/golden/make_fixtures.py): forward, dL/dA, steps.</summary>
public sealed class GoldenTests
{
    [Theory]
    [InlineData("covid-ct-cnn")]
    [InlineData("pneumonia-cnn")]
    [InlineData("ldl-mlp")]
    [InlineData("mura-vgg19")]
    public void SplitTrainingSteps_MatchPyTorch(string modelName)
    {
        var golden = GoldenRun.Load(modelName);
        var model = ModelCatalog.Get(modelName);
        model.InputShape.Should().Equal(golden.InputShape);

        var (client, server) = model.BuildSplit();
        using var _c = client;
        using var _s = server;
        GoldenValues.Initialise(client, "client");
        GoldenValues.Initialise(server, "server");
        var settings = golden.Optimizer.Kind == "adam"
            ? new OptimizerSettings(OptimizerKind.Adam, golden.Optimizer.LearningRate, WeightDecay: golden.Optimizer.WeightDecay)
            : new OptimizerSettings(OptimizerKind.Sgd, golden.Optimizer.LearningRate, golden.Optimizer.Momentum, golden.Optimizer.WeightDecay);
        using var clientOptimizer = Optimizer.Create(client, settings);
        using var serverOptimizer = Optimizer.Create(server, settings);
        using var x = GoldenValues.Input([golden.Batch, .. golden.InputShape]);
        using var y = GoldenValues.Targets(golden.Task == "classification", golden.Batch);

        for (var s = 0; s < golden.Steps.Length; s++)
        {
            var expected = golden.Steps[s];
            clientOptimizer.ZeroGrad();
            serverOptimizer.ZeroGrad();

            // The split as it runs for real: the server sees a copy of A, the hospital gets dL/dA back.
            using var a = client.Forward(x, train: true);
            using var cut = Tensor.FromFloats(a.ToArray(), a.Shape);
            using var prediction = server.Forward(cut, train: true, needInputGrad: true);
            var loss = Loss.Compute(model.Loss, prediction, y, backward: true);
            using var cutGradient = cut.Grad();
            a.Backward(cutGradient);
            clientOptimizer.Step();
            serverOptimizer.Step();

            expected.ClientOutput.ShouldMatch(a.ToArray(), a.Shape, $"step {s} client output");
            expected.Prediction.ShouldMatch(prediction.ToArray(), prediction.Shape, $"step {s} prediction");
            loss.Should().BeApproximately(expected.Loss, 1e-5 * Math.Max(1, Math.Abs(expected.Loss)), $"step {s} loss");
            expected.CutGradient.ShouldMatch(cutGradient.ToArray(), cutGradient.Shape, $"step {s} dL/dA");
            CompareWeights(client, expected.ClientWeights, $"step {s} client");
            CompareWeights(server, expected.ServerWeights, $"step {s} server");
            if (s == 0)
            {
                CompareFirstUpdate(client, "client", expected.ClientWeights);
                CompareFirstUpdate(server, "server", expected.ServerWeights);
            }
        }
    }

    // The update itself (w1 - w0), so a wrong learning rate or moment cannot hide inside the weights' scale.
    private static void CompareFirstUpdate(Network network, string prefix, Dictionary<string, SampledTensor> expected)
    {
        foreach (var (name, sampled) in expected)
        {
            using var value = network.GetState(name);
            var shape = value.Shape;
            var initial = GoldenValues.Values(prefix + "." + name, value.ElementCount, GoldenValues.InitBound(shape));
            var ours = value.ToArray();
            var deltas = new double[sampled.Values.Length];
            var ourDeltas = new double[sampled.Values.Length];
            for (var k = 0; k < deltas.Length; k++)
            {
                var index = sampled.Indices?[k] ?? k;
                deltas[k] = sampled.Values[k] - initial[index];
                ourDeltas[k] = ours[index] - initial[index];
            }
            var scale = Math.Max(deltas.Max(Math.Abs), 1e-6);
            for (var k = 0; k < deltas.Length; k++)
                (Math.Abs(ourDeltas[k] - deltas[k]) / scale).Should().BeLessThanOrEqualTo(1e-3, $"{prefix} {name}[{k}] first update");
        }
    }

    private static void CompareWeights(Network network, Dictionary<string, SampledTensor> expected, string what)
    {
        network.StateNames.Should().BeEquivalentTo(expected.Keys, $"{what} state-dict keys");
        foreach (var (name, sampled) in expected)
        {
            using var value = network.GetState(name);
            sampled.ShouldMatch(value.ToArray(), value.Shape, $"{what} {name}");
        }
    }
}
