using SplitFunctions.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Attacker-aware training (ResSFL, Li et al. CVPR 2022): the hospital trains an inversion decoder alongside its client layer
/// on the activations exactly as it releases them (clipped, plus noise of the release's scale), and its client objective
/// subtracts weight x the decoder's reconstruction error, so the layer learns features the decoder cannot invert while
/// the task loss keeps them useful. Hospital-side only: the decoder, its noise and its error never leave the hospital.
/// The decoder is the audit's shape (3x3 conv at the cut's resolution, bilinear upsampling, two 3x3 convs to pixels).
/// </summary>
public sealed class SimulatedAttacker : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> head;
    private readonly nn.Module<Tensor, Tensor> tail;
    private readonly optim.Optimizer optimizer;
    private readonly long height;
    private readonly long width;
    private readonly double noise;
    private readonly Generator generator;

    /// <param name="activationChannels">Channels of the cut activations [n, channels, h, w].</param>
    /// <param name="inputShape">The client layer's input [channels, height, width].</param>
    /// <param name="weight">Lambda: the client objective subtracts this times the decoder's MSE.</param>
    /// <param name="releaseNoise">Standard deviation of the noise the hospital adds before release (sigma x C when clipped).</param>
    /// <param name="seed">Seeds the decoder's initial weights and its simulated noise (neither is released).</param>
    public SimulatedAttacker(long activationChannels, IReadOnlyList<long> inputShape, double weight, double releaseNoise, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Count != 3) throw new ArgumentException("attacker-aware training needs an image model (input [channels, height, width])");
        if (!double.IsFinite(weight) || weight <= 0) throw new ArgumentOutOfRangeException(nameof(weight), "the attacker-aware weight must be > 0");
        Weight = weight;
        noise = releaseNoise;
        height = inputShape[1];
        width = inputShape[2];
        var channels = inputShape[0];
        (head, tail) = TorchRuntime.Seeded(seed ^ 0xa77ac4e7, () => (
            (nn.Module<Tensor, Tensor>)nn.Sequential(nn.Conv2d(activationChannels, 32, 3, padding: 1), nn.ReLU()),
            (nn.Module<Tensor, Tensor>)nn.Sequential(nn.Conv2d(32, 16, 3, padding: 1), nn.ReLU(), nn.Conv2d(16, channels, 3, padding: 1))));
        optimizer = optim.Adam(head.parameters().Concat(tail.parameters()), 1e-3);
        generator = new Generator(seed ^ 0x5a77);
    }

    public double Weight { get; }

    /// <summary>The decoder's reconstruction MSE on the last batch, before its own update (the attack the client trained against).</summary>
    public double LastError { get; private set; }

    /// <summary>The decoder's reconstruction of <paramref name="released"/> (activations as the server receives them).</summary>
    public Tensor Reconstruct(Tensor released) =>
        tail.forward(nn.functional.interpolate(head.forward(released), size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false));

    /// <summary>
    /// One attacker-aware step on a batch: the decoder takes one Adam step on the detached activations, then the returned
    /// term (-weight x its MSE, differentiable in <paramref name="activations"/> only) joins the client objective.
    /// <paramref name="activations"/> are the client layer's output as it is released before noise (after clipping);
    /// <paramref name="input"/> the batch's input.
    /// </summary>
    public Tensor Penalty(Tensor activations, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(input);
        using (var step = NewDisposeScope())
        {
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(Reconstruct(Noisy(activations.detach())), input);
            loss.backward();
            optimizer.step();
        }
        var error = nn.functional.mse_loss(Reconstruct(Noisy(activations)), input);
        LastError = error.item<float>();
        // The decoder's parameters also receive gradients from this term; they are cleared before its next step.
        return -Weight * error;
    }

    private Tensor Noisy(Tensor a) => noise > 0 ? a + noise * randn(a.shape, generator: generator) : a;

    public void Dispose()
    {
        optimizer.Dispose();
        head.Dispose();
        tail.Dispose();
        generator.Dispose();
    }
}
