using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Audit;

/// <summary>Settings of one leakage audit.</summary>
public sealed record AuditOptions
{
    /// <summary>Noise the hospital adds before upload (the run's privacy.noiseSigma): the server sees A + noise.</summary>
    public double NoiseSigma { get; init; }

    /// <summary>Optimizer steps per decoder (batch <see cref="BatchSize"/>, Adam 1e-3): the attacker's budget.</summary>
    public int DecoderSteps { get; init; } = 400;

    public int BatchSize { get; init; } = 32;

    /// <summary>Sizes of the leaked (image, activation) sets the second attacker trains from.</summary>
    public IReadOnlyList<int> LeakedPairs { get; init; } = [50, 1000];

    /// <summary>Test images scored (re-identification is among all of them; chance is 1 / this).</summary>
    public int MaxTestImages { get; init; } = 1000;

    /// <summary>Images shown per row of the picture.</summary>
    public int PictureColumns { get; init; } = 10;

    public ulong Seed { get; init; } = 1;
}

/// <summary>One attack's figures over the test images.</summary>
public sealed record AuditAttack(string Name, double Ssim, double PsnrDb, double Reidentification);

/// <summary>What an audit measured: per attack SSIM / PSNR / re-identification, DCor(x, A), and the picture.</summary>
public sealed record LeakageReport(IReadOnlyList<AuditAttack> Attacks, double DistanceCorrelation, double ShuffledDistanceCorrelation, int TestImages,
    double NoiseSigma, byte[] Png)
{
    /// <summary>Re-identification by chance: 1 / test images.</summary>
    public double Chance => 1.0 / TestImages;

    public AuditAttack Baseline => Attacks[0];

    /// <summary>The attack with the highest SSIM (the best reconstruction).</summary>
    public AuditAttack Best => Attacks.Skip(1).MaxBy(a => a.Ssim) ?? Baseline;
}

/// <summary>
/// Plays the honest-but-curious server against a hospital's own client layer on the hospital's own data (the server
/// is never involved): decoders from activations back to images, trained from auxiliary images with the client
/// weights known and from N leaked (image, activation) pairs, against the mean-image baseline. Pixels are compared
/// on [0, 1] (the features' range mapped back linearly; standardisation is affine). Image models only.
/// </summary>
public static class LeakageAudit
{
    /// <summary>Audits on <paramref name="test"/>, the attacker's decoders trained from <paramref name="auxiliary"/>.</summary>
    public static LeakageReport Run(Network client, TrainingSet auxiliary, TrainingSet test, AuditOptions options) =>
        Run(client, auxiliary, [test], options)[0];

    /// <summary>Trains the attackers once and scores each evaluation set (e.g. validation to choose settings, test to report).</summary>
    public static IReadOnlyList<LeakageReport> Run(Network client, TrainingSet auxiliary, IReadOnlyList<TrainingSet> evaluations, AuditOptions options)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(auxiliary);
        ArgumentNullException.ThrowIfNull(evaluations);
        ArgumentNullException.ThrowIfNull(options);
        if (client.InputShape.Length != 3 || client.OutputShape.Length != 3)
            throw new ArgumentException($"the leakage audit reconstructs images from convolutional features; this model maps "
                + $"[{string.Join(",", client.InputShape)}] to [{string.Join(",", client.OutputShape)}]");
        if (auxiliary.Count < 2 || evaluations.Any(e => e.Count < 2)) throw new ArgumentException($"the audit needs at least 2 auxiliary and 2 evaluation "
            + $"samples");
        using var scope = NewDisposeScope();
        var (low, high) = Range(auxiliary.Features);
        var xAux = Unit(auxiliary, auxiliary.Count, low, high);
        var aAux = Observed(client, auxiliary, auxiliary.Count, options.NoiseSigma);
        var attempts = new List<(string Name, int Pairs)> { ($"decoder, client weights known ({auxiliary.Count} auxiliary images)", auxiliary.Count) };
        foreach (var n in options.LeakedPairs.Where(n => n > 0)) attempts.Add(($"decoder from {Math.Min(n, auxiliary.Count)} leaked "
            + $"pairs", Math.Min(n, auxiliary.Count)));
        var decoders = new List<Func<Tensor, Tensor>>();
        var index = 0;
        foreach (var (_, pairs) in attempts)
        {
            var chosen = tensor(SeededRandom.Permutation(auxiliary.Count, (long)options.Seed + index++)[..pairs].Select(i => (long)i).ToArray());
            decoders.Add(TrainDecoder(aAux.index_select(0, chosen), xAux.index_select(0, chosen), options));
        }
        var reports = new List<LeakageReport>();
        foreach (var test in evaluations)
        {
            var testCount = Math.Min(test.Count, options.MaxTestImages);
            var xTest = Unit(test, testCount, low, high);
            var aTest = Observed(client, test, testCount, options.NoiseSigma);
            var attacks = new List<AuditAttack>();
            var rows = new List<IReadOnlyList<float[]>> { Pictures(xTest, options.PictureColumns) };
            var mean = xAux.mean([0], keepdim: true).expand_as(xTest);
            attacks.Add(Score("baseline: the mean image", mean, xTest, reidentify: false));
            rows.Add(Pictures(mean, options.PictureColumns));
            for (var i = 0; i < attempts.Count; i++)
            {
                var reconstruction = decoders[i](aTest);
                attacks.Add(Score(attempts[i].Name, reconstruction, xTest, reidentify: true));
                rows.Add(Pictures(reconstruction, options.PictureColumns));
            }
            var sample = (int)Math.Min(testCount, 512);
            var dcor = DistanceCorrelation.Value(xTest.narrow(0, 0, sample), aTest.narrow(0, 0, sample));
            var shuffle = tensor(SeededRandom.Permutation(sample, (long)options.Seed ^ 0x5eed).Select(i => (long)i).ToArray());
            var shuffled = DistanceCorrelation.Value(xTest.narrow(0, 0, sample), aTest.narrow(0, 0, sample).index_select(0, shuffle));
            var shape = client.InputShape;
            reports.Add(new LeakageReport(attacks, dcor, shuffled, testCount, options.NoiseSigma, AuditPicture.Png(rows, (int)shape[1], (int)shape[2])));
        }
        return reports;
    }

    // The activations as the server decrypts them: the client layer in eval mode, plus the hospital's noise.
    private static Tensor Observed(Network client, TrainingSet data, int count, double sigma)
    {
        var output = new List<Tensor>();
        for (var start = 0; start < count; start += 256)
        {
            var n = Math.Min(256, count - start);
            var x = TensorData.FromFloats(data.Features.AsSpan(start * data.SampleSize, n * data.SampleSize), data.BatchShape(n), client.Device);
            var a = client.Forward(x, train: false).cpu();
            if (sigma > 0)
            {
                var values = a.ToFloats();
                ActivationNoise.Add(values, sigma);
                a = TensorData.FromFloats(values, a.shape);
            }
            output.Add(a);
        }
        return cat(output, 0);
    }

    // A small convolutional decoder (the attacker's model): 3x3 conv at the cut's resolution, bilinear upsampling to
    // the image's size, two 3x3 convs to pixels. Small on purpose: the audit runs on a hospital's CPU.
    private static Func<Tensor, Tensor> TrainDecoder(Tensor activations, Tensor images, AuditOptions options)
    {
        var channels = activations.shape[1];
        var height = images.shape[2];
        var width = images.shape[3];
        var (head, tail) = TorchRuntime.Seeded(options.Seed, () => (
            nn.Sequential(nn.Conv2d(channels, 32, 3, padding: 1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(32, 16, 3, padding: 1), nn.ReLU(), nn.Conv2d(16, images.shape[1], 3, padding: 1), nn.Sigmoid())));
        Tensor Decode(Tensor a)
            => tail.forward(nn.functional.interpolate(head.forward(a), size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false));
        using (var optimizer = optim.Adam([.. head.parameters(), .. tail.parameters()], 1e-3))
        {
            var random = new SeededRandom((long)options.Seed);
            var count = (int)activations.shape[0];
            var batch = Math.Min(options.BatchSize, count);
            for (var step = 0; step < options.DecoderSteps; step++)
            {
                using var stepScope = NewDisposeScope();
                var picks = tensor(Enumerable.Range(0, batch).Select(_ => (long)random.NextInt(count)).ToArray());
                optimizer.zero_grad();
                var loss = nn.functional.mse_loss(Decode(activations.index_select(0, picks)), images.index_select(0, picks));
                loss.backward();
                optimizer.step();
            }
        }
        head.eval();
        tail.eval();
        return testActivations =>
        {
            using var noGrad = no_grad();
            var parts = new List<Tensor>();
            for (long start = 0; start < testActivations.shape[0]; start += 256)
            {
                parts.Add(Decode(testActivations.narrow(0, start, Math.Min(256, testActivations.shape[0] - start))));
            }
            return cat(parts, 0);
        };
    }

    private static AuditAttack Score(string name, Tensor reconstruction, Tensor originals, bool reidentify)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ssim = ImageSimilarity.Ssim(reconstruction, originals).mean().item<float>();
        var psnr = ImageSimilarity.Psnr(reconstruction, originals).mean().item<float>();
        // The mean image is the same answer for every sample: it re-identifies nobody beyond chance.
        var reid = reidentify ? ImageSimilarity.ReidentificationRate(reconstruction, originals) : 1.0 / originals.shape[0];
        return new AuditAttack(name, ssim, psnr, reid);
    }

    private static (float Low, float High) Range(float[] values)
    {
        float low = float.PositiveInfinity, high = float.NegativeInfinity;
        foreach (var v in values)
        {
            if (v < low) low = v;
            if (v > high) high = v;
        }
        return (low, high > low ? high : low + 1);
    }

    private static Tensor Unit(TrainingSet data, int count, float low, float high)
    {
        var x = TensorData.FromFloats(data.Features.AsSpan(0, count * data.SampleSize), data.BatchShape(count));
        return ((x - low) / (high - low)).clamp(0, 1);
    }

    private static List<float[]> Pictures(Tensor images, int columns)
    {
        var list = new List<float[]>();
        for (var i = 0; i < Math.Min(columns, images.shape[0]); i++) list.Add(images[i][0].contiguous().ToFloats());
        return list;
    }
}
