using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Pipelined training's client side (ClientLayer.ForwardStashed / ApplyStashedGradient): a batch's backward runs through
/// the weights its forward used, whatever steps were taken meanwhile, and its gradient then moves the live weights.
/// </summary>
public sealed class WeightStashingTests
{
    private static RunManifest Manifest(OptimizerSettings optimizer) =>
        RunManifest.ForModel("stash", ModelCatalog.LdlMlp, TrainingMode.Vanilla, ["hospital-a"], seed: 11) with { ClientOptimizer = optimizer };

    private static TrainingSet Data()
    {
        var random = new Random(5);
        var x = new float[32 * 7];
        for (var i = 0; i < x.Length; i++) x[i] = random.NextSingle() * 2 - 1;
        return new TrainingSet(x, new float[32], [7]);
    }

    private static float[] Gradient(int salt)
    {
        var random = new Random(salt);
        var g = new float[16 * 64];
        for (var i = 0; i < g.Length; i++) g[i] = random.NextSingle() - 0.5f;
        return g;
    }

    private static float[] Weights(ClientLayer layer)
    {
        using var weight = layer.Network.GetState("0.weight");
        using var bias = layer.Network.GetState("0.bias");
        return [.. weight.data<float>().ToArray(), .. bias.data<float>().ToArray()];
    }

    private static readonly int[] First = [.. Enumerable.Range(0, 16)];
    private static readonly int[] Second = [.. Enumerable.Range(16, 16)];

    [Fact]
    public void With_nothing_in_between_a_stashed_step_is_the_synchronous_step()
    {
        var manifest = Manifest(OptimizerSettings.Adam(1e-2));
        var data = Data();
        using var synchronous = ClientLayer.Create(manifest, trainable: true, secret: null);
        using var stashed = ClientLayer.Create(manifest, trainable: true, secret: null);
        for (var step = 0; step < 3; step++)
        {
            using (var activations = synchronous.Forward(data, First, train: true, out _)) synchronous.ApplyGradient(activations, Gradient(step));
            stashed.ApplyStashedGradient(stashed.ForwardStashed(data, First, out _), Gradient(step));
        }
        Weights(stashed).Should().Equal(Weights(synchronous), "k = 1 through the stash is synchronous training, value for value");
    }

    [Fact]
    public void A_batch_forwarded_before_another_was_applied_gets_the_gradient_at_the_weights_its_forward_used()
    {
        // Plain SGD: a step moves the weights by -lr x gradient, so the two steps' gradients can be told apart; a large rate
        // moves the LeakyReLU's kinks, so a gradient taken after the first step differs from one taken before it.
        var manifest = Manifest(OptimizerSettings.Sgd(1.0));
        var data = Data();
        using var pipelined = ClientLayer.Create(manifest, trainable: true, secret: null);
        var initial = Weights(pipelined);
        var one = pipelined.ForwardStashed(data, First, out _);
        var two = pipelined.ForwardStashed(data, Second, out _);
        pipelined.ApplyStashedGradient(one, Gradient(1));
        pipelined.ApplyStashedGradient(two, Gradient(2));

        // Each batch's step alone from the initial weights: pipelined, both gradients were taken there (weight stashing).
        float[] StepAlone(int[] rows, int salt)
        {
            using var alone = ClientLayer.Create(manifest, trainable: true, secret: null);
            using (var activations = alone.Forward(data, rows, train: true, out _)) alone.ApplyGradient(activations, Gradient(salt));
            return Weights(alone);
        }
        var afterOne = StepAlone(First, 1);
        var afterTwo = StepAlone(Second, 2);
        var expected = initial.Select((w, i) => w + (afterOne[i] - w) + (afterTwo[i] - w)).ToArray();
        var actual = Weights(pipelined);
        actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max().Should().BeLessThan(1e-5f, "the second gradient was taken at the initial weights");
        // The same two batches trained synchronously differ: the second backward would go through the weights after the first step.
        using var synchronous = ClientLayer.Create(manifest, trainable: true, secret: null);
        using (var a = synchronous.Forward(data, First, train: true, out _)) synchronous.ApplyGradient(a, Gradient(1));
        using (var b = synchronous.Forward(data, Second, train: true, out _)) synchronous.ApplyGradient(b, Gradient(2));
        Weights(synchronous).Zip(actual, (s, p) => Math.Abs(s - p)).Max().Should().BeGreaterThan(1e-5f);
    }

    [Fact]
    public void A_pipelined_forward_augments_its_training_batch_as_the_synchronous_forward_does()
    {
        // data.augmentation applies to pipelined batches too: the stashed forward sees the same transformed images.
        var manifest = RunManifest.ForModel("stash", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], seed: 11);
        var random = new Random(7);
        var x = new float[16 * 28 * 28];
        for (var i = 0; i < x.Length; i++) x[i] = random.NextSingle();
        var data = new TrainingSet(x, new float[16], [1, 28, 28]);
        var augmentation = new ImageAugmentation(new AugmentationSettings(), OrderSecret.Create(), manifest.RunId, data.SampleShape).ForEpoch(2);
        var rows = First;
        using var layer = ClientLayer.Create(manifest, trainable: true, secret: null);
        float[] synchronous;
        using (var activations = layer.Forward(data, rows, train: true, out _, augmentation)) synchronous = activations.detach().data<float>().ToArray();
        var augmented = layer.ForwardStashed(data, rows, out _, augmentation: augmentation);
        var plain = layer.ForwardStashed(data, rows, out _);
        try
        {
            augmented.Activations.detach().data<float>().ToArray().Should().Equal(synchronous);
            plain.Activations.detach().data<float>().ToArray().Should().NotEqual(synchronous, "the augmentation changed the images");
        }
        finally
        {
            layer.Release(augmented);
            layer.Release(plain);
        }
    }

    [Fact]
    public void Stashed_steps_survive_garbage_collections_running_beside_them()
    {
        // Summing the per-parameter terms with `a + b` made a temporary Scalar that a collection could finalize while libtorch
        // read it: a pipelined PneumoniaMNIST run died with "Expected false to be true" (TorchSharp 0.107, as OptimizerTests).
        // pneumonia-cnn's client block (convolution and batch norm: four parameters, three sums a step) on a few 28x28 images.
        var random = new Random(3);
        var pixels = new float[8 * 28 * 28];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = random.NextSingle();
        var data = new TrainingSet(pixels, new float[8], [1, 28, 28]);
        var manifest = RunManifest.ForModel("stash-gc", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], seed: 11);
        using var layer = ClientLayer.Create(manifest, trainable: true, secret: null);
        var gradient = new float[4 * 32 * 14 * 14];
        for (var i = 0; i < gradient.Length; i++) gradient[i] = random.NextSingle() - 0.5f;
        int[] first = [0, 1, 2, 3], second = [4, 5, 6, 7];
        using (new CollectionsBeside())
        {
            var inFlight = new Queue<StashedForward>();
            for (var step = 0; step < 3000; step++)
            {
                inFlight.Enqueue(layer.ForwardStashed(data, step % 2 == 0 ? first : second, out _));
                if (inFlight.Count == 3) layer.ApplyStashedGradient(inFlight.Dequeue(), gradient);
            }
            while (inFlight.TryDequeue(out var left)) layer.ApplyStashedGradient(left, gradient);
        }
        using var weight = layer.Network.GetState("0.weight");
        weight.data<float>().ToArray().Should().OnlyContain(w => float.IsFinite(w));
    }
}
