using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, item 4: attacker-aware training (ResSFL) at the hospital. The agent's client layer trains with the server's
/// gradient exactly as in a run (the server part in process); with privacy.attackerAwareWeight on, a decoder trained afterwards
/// on the layer's activations rebuilds held-out images worse than one trained on the layer without it (same seed, same data),
/// and the task loss still falls.
/// </summary>
[Collection(nameof(LeakageAuditTests))]
public sealed class AttackerAwareTests
{
    private static TrainingSet Images(int count, long seed)
    {
        var images = SyntheticImages.Generate(count, 28, 28, seed);
        return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
    }

    // Trains the agent's client layer against an in-process server for a few epochs; returns the layer and the mean BCE of the first and last epoch.
    private static (ClientLayer Layer, double First, double Last) Train(double weight, TrainingSet data)
    {
        var manifest = RunManifest.ForModel("run-aware", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], 5) with
        {
            Privacy = new PrivacySettings { AttackerAwareWeight = weight },
        };
        var layer = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var server = TorchRuntime.Seeded(5, () => ModelCatalog.PneumoniaCnn.BuildServer(layer.Network.OutputShape));
        using var serverOptimizer = Optimizer.Create(server, manifest.Optimizer);
        var losses = new List<double>();
        const int epochs = 6;
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            var sum = 0.0;
            var batches = BatchOrder.Batches(BatchOrder.Shuffle(data.Count, 5, epoch), 32).ToList();
            foreach (var batch in batches)
            {
                using var scope = torch.NewDisposeScope();
                var a = layer.Forward(data, batch.ToArray(), train: true, out var targets);
                var sent = a.detach().requires_grad_(true);
                serverOptimizer.ZeroGrad();
                var loss = torch.nn.functional.binary_cross_entropy(server.Forward(sent, train: true), TensorData.FromFloats(targets, [batch.Count, 1]));
                loss.backward();
                serverOptimizer.Step();
                layer.ApplyGradient(a, sent.grad!.contiguous().ToFloats());
                sum += loss.item<float>();
            }
            losses.Add(sum / batches.Count);
        }
        return (layer, losses[0], losses[^1]);
    }

    [Fact]
    public void With_the_weight_on_a_decoder_rebuilds_held_out_images_worse_and_training_still_converges()
    {
        var train = Images(320, 11);
        var heldOut = Images(80, 12);
        var (plain, plainFirst, plainLast) = Train(0, train);
        var (aware, awareFirst, awareLast) = Train(4, train);
        using (plain)
        using (aware)
        {
            plain.Attacker.Should().BeNull();
            aware.Attacker.Should().NotBeNull();
            aware.Attacker!.LastError.Should().BeGreaterThan(0);
            awareLast.Should().BeLessThan(awareFirst * 0.9, "the task loss still falls with the attacker-aware term");
            plainLast.Should().BeLessThan(plainFirst);

            // The attacker: a decoder to its best held-out score on the hospital's images, weights known, scored on held-out images.
            var options = new AuditOptions { DecoderSteps = 300, EvaluateEvery = 50, LegacyDecoderSteps = 0, LeakedPairs = [], PictureColumns = 2, Seed = 3 };
            var open = LeakageAudit.Run(plain.Network, train, heldOut, options);
            var defended = LeakageAudit.Run(aware.Network, train, heldOut, options);
            var decoderOpen = open.Attacks.Single(a => a.Name.StartsWith("decoder", StringComparison.Ordinal));
            var decoderDefended = defended.Attacks.Single(a => a.Name.StartsWith("decoder", StringComparison.Ordinal));
            decoderDefended.Mse.Should().BeGreaterThan(decoderOpen.Mse, "the layer was trained to defeat a decoder of this kind");
            decoderDefended.Ssim.Should().BeLessThan(decoderOpen.Ssim);
        }
    }
}
