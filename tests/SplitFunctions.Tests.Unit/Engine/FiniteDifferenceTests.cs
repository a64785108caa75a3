using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

/// <summary>Autograd of each client part against central finite differences, for inputs and weights.</summary>
public sealed class FiniteDifferenceTests
{
    [Theory]
    [InlineData("covid-ct-cnn")]
    [InlineData("pneumonia-cnn")]
    [InlineData("ldl-mlp")]
    [InlineData("mura-vgg19")]
    public void ClientPartGradients_MatchFiniteDifferences(string name)
    {
        var model = ModelCatalog.Get(name);
        TorchRuntime.Seed(3);
        using var client = model.BuildClient();
        var inputShape = (long[])[2, .. model.InputShape];
        var inputCount = inputShape.Aggregate(1L, (a, b) => a * b);
        var x = GoldenValues.Values("fd-input", inputCount, 1.0);
        var outputCount = 2 * client.OutputShape.Aggregate(1L, (a, b) => a * b);
        // Only 64 outputs count: few kinks (ReLU, max-pool ties) near them and little float32 noise in L.
        var r = new float[outputCount];
        var weights = GoldenValues.Values("fd-projection", outputCount, 1.0);
        for (var k = 0; k < 64; k++)
        {
            var j = k * outputCount / 64;
            r[j] = weights[j];
        }
        var outputShape = (long[])[2, .. client.OutputShape];

        // L(x, w) = sum(client(x) * r): dL/dOutput = r.
        double Objective(float[] input)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var t = TensorData.FromFloats(input, inputShape);
            var values = client.Forward(t, train: false).ToFloats();
            double sum = 0;
            for (var i = 0; i < values.Length; i++) sum += (double)values[i] * r[i];
            return sum;
        }

        // Autograd: input gradient directly; weight gradient read off an SGD step with lr = 1 (w0 - w1 = g).
        using var xt = TensorData.FromFloats(x, inputShape).requires_grad_();
        using var output = client.Forward(xt, train: true);
        using var projection = TensorData.FromFloats(r, outputShape);
        // The last weight: perturbing an earlier one moves every later ReLU and crosses too many kinks.
        var weightName = client.StateNames.Last(n => n.EndsWith(".weight", StringComparison.Ordinal));
        using var w0 = client.GetState(weightName);
        var before = w0.ToFloats();
        var saved = client.SaveState();
        using var sgd = Optimizer.Create(client, OptimizerSettings.Sgd(1.0));
        output.backward([projection]);
        var gx = xt.grad!.ToFloats();
        sgd.Step();
        using var w1 = client.GetState(weightName);
        var after = w1.ToFloats();
        var gw = before.Select((b, i) => (double)b - after[i]).ToArray();
        client.LoadState(saved); // the step moved every parameter

        // ReLU, LeakyReLU and max-pool have kinks: a probe whose +-h step crosses one disagrees honestly,
        // so at most one probe of six may miss; every other probe must agree within 2%.
        const double h = 1e-3;
        var misses = new List<string>();
        void Expect(double numeric, double analytic, string what)
        {
            if (Math.Abs(numeric - analytic) > 2e-2 * Math.Max(1, Math.Abs(numeric)))
                misses.Add($"{what}: finite difference {numeric:G6}, autograd {analytic:G6}");
        }
        // Probe where the gradient is largest, so agreement means something.
        var probes = Enumerable.Range(0, gx.Length).OrderByDescending(i => Math.Abs(gx[i])).Take(6).ToArray();
        gx[probes[0]].Should().NotBe(0f);
        foreach (var i in probes)
        {
            var plus = (float[])x.Clone();
            var minus = (float[])x.Clone();
            plus[i] += (float)h;
            minus[i] -= (float)h;
            var numeric = (Objective(plus) - Objective(minus)) / (2 * h);
            Expect(numeric, gx[i], $"dL/dx[{i}]");
        }

        var weightProbes = Enumerable.Range(0, gw.Length).OrderByDescending(i => Math.Abs(gw[i])).Take(6).ToArray();
        gw[weightProbes[0]].Should().NotBe(0);
        foreach (var i in weightProbes)
        {
            double Perturbed(double delta)
            {
                var w = (float[])before.Clone();
                w[i] += (float)delta;
                using var t = TensorData.FromFloats(w, w0.shape);
                client.SetState(weightName, t);
                return Objective(x);
            }
            var numeric = (Perturbed(h) - Perturbed(-h)) / (2 * h);
            Expect(numeric, gw[i], $"dL/d{weightName}[{i}]");
        }
        misses.Count.Should().BeLessThanOrEqualTo(2, "of 12 probes (6 inputs, 6 weights) only kink crossings may miss: " + string.Join("; ", misses));
    }
}
