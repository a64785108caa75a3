using System.Globalization;
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
    /// <summary>
    /// Standard deviation of the noise the hospital adds before upload (after <see cref="BeforeNoise"/>): the server
    /// sees BeforeNoise(A) + N(0, sigma^2), fresh per value and per send.
    /// </summary>
    public double NoiseSigma { get; init; }

    /// <summary>What the hospital does to the activations before the noise (e.g. clipping), exactly as its agent does; null: nothing.</summary>
    public Func<Tensor, Tensor>? BeforeNoise { get; init; }

    /// <summary>
    /// Most optimizer steps per decoder (batch <see cref="BatchSize"/>, Adam 1e-3). Each decoder is scored on held-out
    /// auxiliary pairs every <see cref="EvaluateEvery"/> steps and stops after <see cref="Patience"/> scores without
    /// improvement; the best-scoring weights are kept (the attacker's model selection).
    /// </summary>
    public int DecoderSteps { get; init; } = 2000;

    public int EvaluateEvery { get; init; } = 100;

    public int Patience { get; init; } = 4;

    public int BatchSize { get; init; } = 32;

    /// <summary>
    /// Steps of the attacker the audit had before issue 29 (a decoder from the hospital's own images, fixed steps, no
    /// model selection), kept as a row so every report shows how much the stronger attackers add; 0 leaves it out.
    /// </summary>
    public int LegacyDecoderSteps { get; init; } = DefaultLegacyDecoderSteps;

    /// <summary>The old attacker's steps as the audit before issue 29 ran it.</summary>
    public const int DefaultLegacyDecoderSteps = 300;

    /// <summary>Fraction of the auxiliary pairs held out to choose ridge's lambda and each decoder's best step.</summary>
    public double HeldOutFraction { get; init; } = 0.2;

    /// <summary>Sizes of the leaked (image, activation) sets the weights-unknown attacker trains from.</summary>
    public IReadOnlyList<int> LeakedPairs { get; init; } = [50, 1000];

    /// <summary>
    /// Public images of the same kind (prepared exactly as the hospital's own: size, channels, normalisation), added to
    /// the attacker's auxiliary data: an attacker with the client weights is not limited to the hospital's images.
    /// </summary>
    public TrainingSet? PublicImages { get; init; }

    /// <summary>How the public images are named in the report (e.g. "public chest X-rays").</summary>
    public string PublicName { get; init; } = "public";

    /// <summary>
    /// How many times the run sends each patient (epochs, validations, evaluations): the multi-view attack averages
    /// that many noisy views. The audit uses the final layer for every view (the server saw earlier layers in earlier
    /// epochs), which favours the attacker slightly.
    /// </summary>
    public int Views { get; init; } = 1;

    /// <summary>
    /// Whether the server can derive which row of each send is which patient (today: the batch order comes from the
    /// manifest seed and validation is sent in fixed order). When false only nearest-neighbour linking is reported.
    /// </summary>
    public bool OrderKnownToServer { get; init; } = true;

    /// <summary>Another hospital's client layer (collusion): decoders trained on its activations, applied to this hospital's.</summary>
    public Network? Colluder { get; init; }

    public string ColluderName { get; init; } = "another hospital";

    /// <summary>
    /// Attacks whose SSIM re-identification (an n x n SSIM matrix, the audit's slowest part) is computed: the ones with the
    /// highest L2 re-identification and the highest mean SSIM, this many of each. Every attack is re-identified by L2 (one
    /// matrix product); the figures reported are the best over both. int.MaxValue: every attack (the audit before).
    /// </summary>
    public int SsimReidentifiedAttacks { get; init; } = 2;

    /// <summary>Test images scored (re-identification is among all of them; chance is 1 / this).</summary>
    public int MaxTestImages { get; init; } = 1000;

    /// <summary>Images shown per row of the picture.</summary>
    public int PictureColumns { get; init; } = 10;

    public ulong Seed { get; init; } = 1;

    /// <summary>Receives a line before each long step (decoders train for minutes on a hospital's CPU).</summary>
    public Action<string>? Progress { get; init; }
}

/// <summary>
/// One attack's figures over the test images: SSIM, PSNR and MSE against the originals, and re-identification (how often
/// a reconstruction is nearest to its own original among all test images) by SSIM and by L2 in pixel space.
/// </summary>
public sealed record AuditAttack(string Name, double Ssim, double PsnrDb, double? Reidentification)
{
    public double Mse { get; init; }

    public double ReidentificationL2 { get; init; }

    /// <summary>Views of each patient the attack averaged (1: a single send).</summary>
    public int Views { get; init; } = 1;

    /// <summary>Multi-view attacks: the fraction of later views linked to the right patient (1 when the order gives it away).</summary>
    public double? LinkingAccuracy { get; init; }

    /// <summary>The higher of the two re-identification rates (L2 alone where SSIM re-identification was not computed).</summary>
    public double BestReidentification => Math.Max(Reidentification ?? 0, ReidentificationL2);
}

/// <summary>What an audit measured: per attack SSIM / PSNR / MSE / re-identification, DCor(x, A), and the picture.</summary>
public sealed record LeakageReport(IReadOnlyList<AuditAttack> Attacks, double DistanceCorrelation, double ShuffledDistanceCorrelation, int TestImages,
    double NoiseSigma, byte[] Png)
{
    /// <summary>Seconds spent scoring the attacks on these images (reconstruction, SSIM, re-identification).</summary>
    public double ScoringSeconds { get; init; }

    /// <summary>Re-identification by chance: 1 / test images.</summary>
    public double Chance => 1.0 / TestImages;

    public AuditAttack Baseline => Attacks[0];

    /// <summary>The attack with the highest SSIM (the best reconstruction).</summary>
    public AuditAttack Best => Attacks.Skip(1).MaxBy(a => a.Ssim) ?? Baseline;

    /// <summary>The attack with the highest PSNR (lowest MSE).</summary>
    public AuditAttack BestPsnr => Attacks.Skip(1).MaxBy(a => a.PsnrDb) ?? Baseline;

    /// <summary>The attack that re-identifies the most patients (by L2 or SSIM).</summary>
    public AuditAttack MostReidentifying => Attacks.Skip(1).MaxBy(a => a.BestReidentification) ?? Baseline;

    /// <summary>The attacker of the audit before issue 29, when it was run (for comparison).</summary>
    public AuditAttack? Legacy => Attacks.FirstOrDefault(a => a.Name.EndsWith(LeakageAudit.LegacyMark, StringComparison.Ordinal));
}

/// <summary>
/// Plays the honest-but-curious server against a hospital's own client layer on the hospital's own data (the server is
/// never involved), with the strongest attackers we can run: a closed-form ridge map and a decoder trained to its best
/// held-out score, from the hospital's images plus public ones, with the client weights known; the same from N leaked
/// (image, activation) pairs with the weights unknown; with another hospital's layer (collusion); and averaging every
/// view of a patient the run sends, linked by the order when the server can derive it, else by content (one to one, and
/// each view alone). Against the mean-image baseline. Pixels are
/// compared on [0, 1] (the features' range mapped back linearly; standardisation is affine). Image models only.
/// </summary>
public static class LeakageAudit
{
    /// <summary>Ends the name of the attacker the audit had before issue 29.</summary>
    public const string LegacyMark = "(the audit before issue 29)";

    private sealed record Attacker(string Name, Func<Tensor, Tensor> Reconstruct, int Views = 1, ViewLinking Linking = ViewLinking.Exact);

    // How a multi-view attacker links a patient's views: by the order (when the server can derive it), or by content, either one to one
    // (each view holds every patient once) or each view's row to its nearest patient alone. Neither wins everywhere: one to one linked
    // more views right on PneumoniaMNIST, nearest alone re-identified more patients (it piles views onto the most distinctive ones).
    private enum ViewLinking { Exact, OneToOne, NearestAlone }

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
        if (options.PublicImages is { } p && !p.SampleShape.SequenceEqual(auxiliary.SampleShape))
            throw new ArgumentException($"the public images are [{string.Join(",", p.SampleShape)}], the hospital's "
                + $"[{string.Join(",", auxiliary.SampleShape)}]");
        if (options.Colluder is { } c && (!c.InputShape.SequenceEqual(client.InputShape) || !c.OutputShape.SequenceEqual(client.OutputShape)))
            throw new ArgumentException("the colluding hospital's layer has another shape than this hospital's");
        if (options.Views < 1) throw new ArgumentException($"views must be at least 1, got {options.Views}");
        using var scope = NewDisposeScope();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void progress(string line) => options.Progress?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{line} (at {clock.Elapsed.TotalSeconds:F0} s)"));
        var sigma = options.NoiseSigma;
        var (low, high) = Range(auxiliary.Features);
        var xOwn = Unit(auxiliary, auxiliary.Count, low, high);
        var cOwn = Clean(client, auxiliary, auxiliary.Count, options);
        var attackers = new List<Attacker>();
        var seed = options.Seed;

        if (options.LegacyDecoderSteps > 0)
        {
            progress($"audit: the old attacker (decoder, {options.LegacyDecoderSteps} steps, {auxiliary.Count} own images)");
            var (legacy, _) = TrainDecoder(Noisy(cOwn, sigma), xOwn, null, null, 0, options.LegacyDecoderSteps, 32, options, seed);
            attackers.Add(new($"decoder, {options.LegacyDecoderSteps} steps, the hospital's own {auxiliary.Count} images {LegacyMark}", legacy));
        }

        // The attacker with the client weights: the hospital's images and the public ones, split once into fit and held-out.
        var xPool = xOwn;
        var pool = $"the hospital's own {auxiliary.Count} images";
        if (options.PublicImages is { Count: > 0 } publicImages)
        {
            xPool = cat([xOwn, Unit(publicImages, publicImages.Count, low, high)], 0);
            pool = $"{auxiliary.Count} own + {publicImages.Count} {options.PublicName} images";
        }
        var cPool = options.PublicImages is { Count: > 0 } pub ? cat([cOwn, Clean(client, pub, pub.Count, options)], 0) : cOwn;
        var (fit, held) = Split((int)xPool.shape[0], options.HeldOutFraction, seed);
        var multiView = options.Views > 1 && sigma > 0;
        var viewSigma = sigma / Math.Sqrt(options.Views);
        double[] levels = multiView ? [sigma, viewSigma] : [sigma];
        progress($"audit: ridge inversion, client weights known, {pool}");
        var ridges = RidgeInversion.Fit(cPool.index_select(0, fit), xPool.index_select(0, fit), cPool.index_select(0, held), xPool.index_select(0, held),
            levels, seed);
        attackers.Add(new($"ridge (closed form), client weights known, {pool}", ridges[0].Reconstruct));
        progress($"audit: decoder (at most {options.DecoderSteps} steps, best on held-out), client weights known, {pool}");
        var (decoder, decoderStep) = TrainDecoder(cPool.index_select(0, fit), xPool.index_select(0, fit), Noisy(cPool.index_select(0, held), sigma),
            xPool.index_select(0, held), sigma, options.DecoderSteps, options.BatchSize, options, seed);
        attackers.Add(new($"decoder (best at step {decoderStep}), client weights known, {pool}", decoder));

        // Weights unknown: only leaked pairs of the hospital's images and the noisy activations the server received for them.
        var index = 1;
        foreach (var n in options.LeakedPairs.Where(n => n > 0).Select(n => Math.Min(n, auxiliary.Count)).Distinct())
        {
            var chosen = tensor(SeededRandom.Permutation(auxiliary.Count, (long)seed + index++)[..n].Select(i => (long)i).ToArray());
            var (a, x) = (Noisy(cOwn.index_select(0, chosen), sigma), xOwn.index_select(0, chosen));
            var (f, h) = Split(n, options.HeldOutFraction, seed + (ulong)n);
            progress($"audit: ridge and decoder from {n} leaked pairs");
            var ridge = RidgeInversion.Fit(a.index_select(0, f), x.index_select(0, f), a.index_select(0, h), x.index_select(0, h), [0], seed)[0];
            attackers.Add(new($"ridge from {n} leaked (image, activation) pairs, weights unknown", ridge.Reconstruct));
            var (leaked, step) = TrainDecoder(a.index_select(0, f), x.index_select(0, f), a.index_select(0, h), x.index_select(0, h), 0, options.DecoderSteps,
                options.BatchSize, options, seed);
            attackers.Add(new($"decoder (best at step {step}) from {n} leaked pairs, weights unknown", leaked));
        }

        if (options.Colluder is { } colluder)
        {
            // A colluding hospital gives the server its own layer; the server trains on it and applies the result to this hospital's activations.
            var cColluder = Clean(colluder, auxiliary, auxiliary.Count, options);
            if (options.PublicImages is { Count: > 0 } pc) cColluder = cat([cColluder, Clean(colluder, pc, pc.Count, options)], 0);
            progress($"audit: collusion, ridge and decoder with {options.ColluderName}'s layer, {pool}");
            var ridge = RidgeInversion.Fit(cColluder.index_select(0, fit), xPool.index_select(0, fit), cColluder.index_select(0, held),
                xPool.index_select(0, held), [sigma], seed)[0];
            attackers.Add(new($"collusion: ridge with {options.ColluderName}'s layer, {pool}", ridge.Reconstruct));
            var (colluding, step) = TrainDecoder(cColluder.index_select(0, fit), xPool.index_select(0, fit), Noisy(cColluder.index_select(0, held), sigma),
                xPool.index_select(0, held), sigma, options.DecoderSteps, options.BatchSize, options, seed);
            attackers.Add(new($"collusion: decoder (best at step {step}) with {options.ColluderName}'s layer, {pool}", colluding));
        }

        if (multiView)
        {
            // Averaged views carry noise sigma / sqrt(views): the attacker trains for that noise level.
            var k = options.Views;
            progress($"audit: multi-view attack ({k} views), decoder for noise {viewSigma:G3}");
            var (decoderK, stepK) = TrainDecoder(cPool.index_select(0, fit), xPool.index_select(0, fit), Noisy(cPool.index_select(0, held), viewSigma),
                xPool.index_select(0, held), viewSigma, options.DecoderSteps, options.BatchSize, options, seed);
            foreach (var linking in options.OrderKnownToServer ? new[] { ViewLinking.Exact, ViewLinking.OneToOne, ViewLinking.NearestAlone }
                : [ViewLinking.OneToOne, ViewLinking.NearestAlone])
            {
                var how = linking switch
                {
                    ViewLinking.Exact => "exact linking (the batch order is known to the server)",
                    ViewLinking.OneToOne => "one-to-one linking by content",
                    _ => "nearest-neighbour linking",
                };
                attackers.Add(new($"ridge, {k} views averaged after {how}, client weights known, {pool}", ridges[1].Reconstruct, k, linking));
                attackers.Add(new($"decoder (best at step {stepK}), {k} views averaged after {how}, client weights known, {pool}", decoderK, k, linking));
            }
        }

        var reports = new List<LeakageReport>();
        foreach (var test in evaluations)
        {
            var testCount = Math.Min(test.Count, options.MaxTestImages);
            progress($"audit: scoring {attackers.Count} attacks on {testCount} images");
            var xTest = Unit(test, testCount, low, high);
            var cTest = Clean(client, test, testCount, options);
            // Each send carries fresh noise from the agent's own generator; the first is the single-view attacks' input.
            var views = Enumerable.Range(0, multiView ? options.Views : 1).Select(_ => Noisy(cTest, sigma)).ToList();
            // Without the order the server links in its ridge map's pixel space (denoised, 1 value per pixel instead of thousands of noisy ones).
            var averages = new Dictionary<ViewLinking, (Tensor Average, double Accuracy)>
            {
                [ViewLinking.Exact] = multiView ? MultiViewLinking.Average(views, exact: true, seed) : (views[0], 1.0),
                [ViewLinking.OneToOne] = multiView ? MultiViewLinking.Average(views, exact: false, seed, ridges[0].Predict) : (views[0], 1.0),
                [ViewLinking.NearestAlone] = multiView ? MultiViewLinking.Average(views, exact: false, seed, ridges[0].Predict, oneToOne: false)
                    : (views[0], 1.0),
            };
            var scoring = System.Diagnostics.Stopwatch.StartNew();
            var attacks = new List<AuditAttack>();
            var rows = new List<IReadOnlyList<float[]>> { Pictures(xTest, options.PictureColumns) };
            var mean = xPool.mean([0], keepdim: true).expand_as(xTest);
            attacks.Add(Score("baseline: the mean image", mean, xTest, reidentify: false));
            rows.Add(Pictures(mean, options.PictureColumns));
            var reconstructions = new List<Tensor>();
            foreach (var attacker in attackers)
            {
                using var attackScope = NewDisposeScope();
                var input = attacker.Views == 1 ? views[0] : averages[attacker.Linking].Average;
                Tensor reconstruction;
                using (no_grad()) reconstruction = attacker.Reconstruct(input);
                reconstructions.Add(reconstruction.MoveToOuterDisposeScope());
                attacks.Add(Score(attacker.Name, reconstruction, xTest, reidentify: true) with
                {
                    Views = attacker.Views,
                    LinkingAccuracy = attacker.Views == 1 ? null : averages[attacker.Linking].Accuracy,
                });
                rows.Add(Pictures(reconstruction, options.PictureColumns));
            }
            // SSIM re-identification only for the leading attacks (by L2 re-identification and by mean SSIM): the n x n SSIM
            // matrix costs minutes per attack on a hospital's CPU, the L2 one a matrix product.
            var leading = Enumerable.Range(1, attackers.Count).OrderByDescending(i => attacks[i].ReidentificationL2).Take(options.SsimReidentifiedAttacks)
                .Union(Enumerable.Range(1, attackers.Count).OrderByDescending(i => attacks[i].Ssim).Take(options.SsimReidentifiedAttacks)).Order().ToList();
            progress($"audit: SSIM re-identification of {leading.Count} of {attackers.Count} attacks");
            foreach (var i in leading) attacks[i] = attacks[i] with { Reidentification = ImageSimilarity.ReidentificationRate(reconstructions[i - 1], xTest) };
            foreach (var r in reconstructions) r.Dispose();
            var scoringSeconds = scoring.Elapsed.TotalSeconds;
            var sample = (int)Math.Min(testCount, 512);
            var aTest = views[0];
            var dcor = DistanceCorrelation.Value(xTest.narrow(0, 0, sample), aTest.narrow(0, 0, sample));
            var shuffle = tensor(SeededRandom.Permutation(sample, (long)seed ^ 0x5eed).Select(i => (long)i).ToArray());
            var shuffled = DistanceCorrelation.Value(xTest.narrow(0, 0, sample), aTest.narrow(0, 0, sample).index_select(0, shuffle));
            var shape = client.InputShape;
            reports.Add(new LeakageReport(attacks, dcor, shuffled, testCount, sigma, AuditPicture.Png(rows, (int)shape[1], (int)shape[2]))
            {
                ScoringSeconds = scoringSeconds,
            });
            progress(string.Create(CultureInfo.InvariantCulture, $"audit: scored in {scoringSeconds:F0} s"));
        }
        foreach (var ridge in ridges) ridge.Dispose();
        return reports;
    }

    // Indices of a seeded split: the held-out part is at least one row when there are two or more.
    private static (Tensor Fit, Tensor HeldOut) Split(int count, double fraction, ulong seed)
    {
        var order = SeededRandom.Permutation(count, (long)seed ^ 0x4e1d).Select(i => (long)i).ToArray();
        var held = count < 2 ? 0 : Math.Clamp((int)Math.Round(count * fraction), 1, count - 1);
        return (tensor(order[held..]), tensor(order[..held]));
    }

    // The activations before the noise: the client layer in eval mode, then whatever the hospital does before adding noise.
    private static Tensor Clean(Network client, TrainingSet data, int count, AuditOptions options)
    {
        var output = new List<Tensor>();
        for (var start = 0; start < count; start += 256)
        {
            var n = Math.Min(256, count - start);
            var x = TensorData.FromFloats(data.Features.AsSpan(start * data.SampleSize, n * data.SampleSize), data.BatchShape(n), client.Device);
            var a = client.Forward(x, train: false).cpu();
            output.Add(options.BeforeNoise is { } transform ? transform(a) : a);
        }
        return cat(output, 0);
    }

    // One send as the server decrypts it: fresh noise from the agent's own generator (ActivationNoise) on the clean activations.
    private static Tensor Noisy(Tensor clean, double sigma)
    {
        if (sigma <= 0) return clean;
        var values = clean.contiguous().ToFloats();
        ActivationNoise.Add(values, sigma);
        return TensorData.FromFloats(values, clean.shape);
    }

    // A small convolutional decoder (the attacker's model): 3x3 conv at the cut's resolution, bilinear upsampling to the
    // image's size, two 3x3 convs to pixels. Small on purpose: the audit runs on a hospital's CPU. With held-out pairs it
    // is scored every EvaluateEvery steps and the best weights are kept; trainNoise adds fresh N(0, trainNoise^2) to
    // each batch's activations (the attacker simulates the hospital's noise). Returns the decoder and its best step.
    private static (Func<Tensor, Tensor> Decode, int BestStep) TrainDecoder(Tensor activations, Tensor images, Tensor? heldActivations, Tensor? heldImages,
        double trainNoise, int maxSteps, int batchSize, AuditOptions options, ulong seed)
    {
        var channels = activations.shape[1];
        var height = images.shape[2];
        var width = images.shape[3];
        var (head, tail) = TorchRuntime.Seeded(seed, () => (
            nn.Sequential(nn.Conv2d(channels, 32, 3, padding: 1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(32, 16, 3, padding: 1), nn.ReLU(), nn.Conv2d(16, images.shape[1], 3, padding: 1), nn.Sigmoid())));
        Tensor Forward(Tensor a)
            => tail.forward(nn.functional.interpolate(head.forward(a), size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false));
        Tensor Decode(Tensor a)
        {
            using var noGrad = no_grad();
            var parts = new List<Tensor>();
            for (long start = 0; start < a.shape[0]; start += 256) parts.Add(Forward(a.narrow(0, start, Math.Min(256, a.shape[0] - start))));
            return cat(parts, 0);
        }
        var parameters = head.parameters().Concat(tail.parameters()).ToList();
        var best = (Loss: double.PositiveInfinity, Step: maxSteps, Weights: (Tensor[]?)null);
        using (var optimizer = optim.Adam(parameters, 1e-3))
        {
            var random = new SeededRandom((long)seed);
            var generator = new Generator(seed ^ 0x4015e);
            var count = (int)activations.shape[0];
            var batch = Math.Min(batchSize, count);
            var sinceBest = 0;
            for (var step = 1; step <= maxSteps; step++)
            {
                using (var stepScope = NewDisposeScope())
                {
                    var picks = tensor(Enumerable.Range(0, batch).Select(_ => (long)random.NextInt(count)).ToArray());
                    var a = activations.index_select(0, picks);
                    if (trainNoise > 0) a = a + trainNoise * randn(a.shape, generator: generator);
                    optimizer.zero_grad();
                    var loss = nn.functional.mse_loss(Forward(a), images.index_select(0, picks));
                    loss.backward();
                    optimizer.step();
                }
                if (heldActivations is null || heldImages is null || (step % options.EvaluateEvery != 0 && step != maxSteps)) continue;
                double heldLoss;
                using (var evalScope = NewDisposeScope()) heldLoss = (Decode(heldActivations) - heldImages).pow(2).mean().item<float>();
                if (heldLoss < best.Loss)
                {
                    foreach (var w in best.Weights ?? []) w.Dispose();
                    using (no_grad()) best = (heldLoss, step, [.. parameters.Select(w => w.detach().clone().DetachFromDisposeScope())]);
                    sinceBest = 0;
                }
                else if (++sinceBest >= options.Patience)
                {
                    break;
                }
            }
        }
        if (best.Weights is { } kept)
        {
            using var noGrad = no_grad();
            for (var i = 0; i < parameters.Count; i++) parameters[i].copy_(kept[i]);
            foreach (var w in kept) w.Dispose();
        }
        head.eval();
        tail.eval();
        return (Decode, best.Weights is null ? maxSteps : best.Step);
    }

    private static AuditAttack Score(string name, Tensor reconstruction, Tensor originals, bool reidentify)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ssim = ImageSimilarity.Ssim(reconstruction, originals).mean().item<float>();
        var psnr = ImageSimilarity.Psnr(reconstruction, originals).mean().item<float>();
        var mse = ImageSimilarity.Mse(reconstruction, originals).mean().item<float>();
        // The mean image is the same answer for every sample: it re-identifies nobody beyond chance.
        var chance = 1.0 / originals.shape[0];
        // SSIM re-identification is added afterwards for the leading attacks only (null: not computed).
        double? reid = reidentify ? null : chance;
        var reidL2 = reidentify ? ImageSimilarity.ReidentificationRateL2(reconstruction, originals) : chance;
        return new AuditAttack(name, ssim, psnr, reid) { Mse = mse, ReidentificationL2 = reidL2 };
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
