using System.Diagnostics;
using System.Globalization;
using System.Text;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// One defence setting: where the cut is, the noise (with <see cref="ClipNorm"/> &gt; 0 the noise multiplier: each sample clipped to
/// C, then noise sigma x C, a Gaussian mechanism with an epsilon; else absolute), the NoPeek alpha and the attacker-aware weight.
/// </summary>
public sealed record PrivacyArm(string Name, ModelDefinition Model, double Sigma, double Alpha)
{
    public double ClipNorm { get; init; }

    /// <summary>Attacker-aware training's weight (ResSFL): the client objective subtracts it times a simulated decoder's MSE.</summary>
    public double AttackerAware { get; init; }

    /// <summary>Standard deviation of the noise on what is sent.</summary>
    public double ReleaseNoise => ClipNorm > 0 ? Sigma * ClipNorm : Sigma;

    /// <summary>The noise multiplier of the Gaussian mechanism, or null when the arm states no guarantee.</summary>
    public double? NoiseMultiplier => ClipNorm > 0 && Sigma > 0 ? Sigma : null;
}

/// <summary>
/// One hospital of an arm: its client layer's validation and test AUC (with the shared server), the audit of that layer on validation
/// (to choose) and test (to report), and epsilon at delta 1 / N for every release the run makes (epochs x training, epochs x
/// validation, one evaluation), as the agent's ledger counts them.
/// </summary>
public sealed record PrivacyHospitalResult(string Hospital, int TrainCount, double ValidationAuc, double TestAuc, LeakageReport? Validation,
    LeakageReport? Test, double? Epsilon, double Delta);

/// <summary>An arm's accuracy and leakage per hospital, on validation (to choose) and on test (to report).</summary>
public sealed record PrivacyArmResult(PrivacyArm Arm, IReadOnlyList<PrivacyHospitalResult> Hospitals, double Seconds)
{
    /// <summary>The best validation attack's SSIM above the mean image's, at the audited hospital where it is largest.</summary>
    public double ValidationSsimGap =>
        Hospitals.Where(h => h.Validation is not null).Max(h => h.Validation!.Best.Ssim - h.Validation.Baseline.Ssim);

    /// <summary>The most patients re-identified on validation, at any audited hospital (L2 or SSIM, multi-view included).</summary>
    public double ValidationReidentification =>
        Hospitals.Where(h => h.Validation is not null).Max(h => h.Validation!.MostReidentifying.BestReidentification);
}

/// <summary>
/// The privacy / accuracy trade-off over hospitals of sizes 7:2:1: each hospital trains its own client layer (the same initial
/// weights) against one shared server, their batches interleaved, exactly as split learning computes each step (client forward,
/// clipping, noise on what is sent, server forward, BCE; at the client plus alpha * DCor(x, A) and minus the attacker-aware term;
/// one backward), then each hospital's layer is audited. Settings are chosen on validation figures only; test figures are
/// reported for the chosen arm and the undefended one.
/// </summary>
public static class PrivacyStudy
{
    /// <summary>
    /// The grids: "issue29" (no defence, then cut depth x clipped noise x NoPeek x attacker-aware), "default" (the earlier absolute-noise grid),
    /// "tiny".
    /// </summary>
    public static IReadOnlyList<PrivacyArm> Grid(string name) => name switch
    {
        "tiny" => [new("none", ModelCatalog.PneumoniaCnn, 0, 0), new("nopeek a=2", ModelCatalog.PneumoniaCnn, 0, 2)],
        "issue29" =>
        [
            // Clipped to C = 1 (every trained sample's norm is far above 1: in effect a normalisation), the noise multiplier sigma is
            // relative to a norm-1 vector of a few hundred values: sigma 0.05 already buries each value under noise 20 times its size.
            // The reference is the product without any defence: one block at the hospital, nothing added. Cut depth is a defence
            // (it costs the small hospitals accuracy: more layers to learn from their own rows), so it is an arm, not the reference.
            new("none", ModelCatalog.PneumoniaCnn, 0, 0),
            new("cut3 alone", ModelCatalog.PneumoniaCnnCut3, 0, 0),
            new("cut3 s=1 absolute (the old default)", ModelCatalog.PneumoniaCnnCut3, 1, 0),
            new("cut3 C=1 s=0.05", ModelCatalog.PneumoniaCnnCut3, 0.05, 0) { ClipNorm = 1 },
            new("cut3 C=1 s=0.1", ModelCatalog.PneumoniaCnnCut3, 0.1, 0) { ClipNorm = 1 },
            new("cut3 C=1 s=0.05 aa=1", ModelCatalog.PneumoniaCnnCut3, 0.05, 0) { ClipNorm = 1, AttackerAware = 1 },
            new("cut3 C=1 s=0.05 nopeek=2", ModelCatalog.PneumoniaCnnCut3, 0.05, 2) { ClipNorm = 1 },
            // Between the default and NoPeek 2 (near the privacy goal, far from the accuracy one): where the front bends.
            new("cut3 C=1 s=0.05 nopeek=0.5", ModelCatalog.PneumoniaCnnCut3, 0.05, 0.5) { ClipNorm = 1 },
            new("cut3 C=1 s=0.05 nopeek=1", ModelCatalog.PneumoniaCnnCut3, 0.05, 1) { ClipNorm = 1 },
            new("cut3 s=1 absolute aa=1", ModelCatalog.PneumoniaCnnCut3, 1, 0) { AttackerAware = 1 },
            new("cut2 C=1 s=0.1", ModelCatalog.PneumoniaCnnCut2, 0.1, 0) { ClipNorm = 1 },
        ],
        _ =>
        [
            new("none", ModelCatalog.PneumoniaCnn, 0, 0),
            new("noise s=0.5", ModelCatalog.PneumoniaCnn, 0.5, 0),
            new("noise s=1", ModelCatalog.PneumoniaCnn, 1, 0),
            new("nopeek a=0.5", ModelCatalog.PneumoniaCnn, 0, 0.5),
            new("nopeek a=2", ModelCatalog.PneumoniaCnn, 0, 2),
            new("cut 2 blocks", ModelCatalog.PneumoniaCnnCut2, 0, 0),
            new("cut 3 blocks", ModelCatalog.PneumoniaCnnCut3, 0, 0),
            new("cut 3 + nopeek a=2", ModelCatalog.PneumoniaCnnCut3, 0, 2),
            new("cut 3 + noise s=0.5", ModelCatalog.PneumoniaCnnCut3, 0.5, 0),
            // Stronger points, so the front reaches toward the privacy goal (SSIM near the mean image) at a stated AUC cost.
            new("noise s=2", ModelCatalog.PneumoniaCnn, 2, 0),
            new("nopeek a=8", ModelCatalog.PneumoniaCnn, 0, 8),
            new("cut 3 + noise s=1", ModelCatalog.PneumoniaCnnCut3, 1, 0),
            new("cut 3 + noise s=2 + nopeek a=2", ModelCatalog.PneumoniaCnnCut3, 2, 2),
            new("cut 3 + nopeek a=8", ModelCatalog.PneumoniaCnnCut3, 0, 8),
            new("cut 3 + noise s=4", ModelCatalog.PneumoniaCnnCut3, 4, 0),
        ],
    };

    /// <summary>One hospital's data, normalised with its own training statistics (as its agent does).</summary>
    public sealed record Hospital(string Name, TrainingSet Train, TrainingSet Validation, TrainingSet Test, TrainingSet? PublicImages);

    /// <summary>Trains the arm; audits the first <paramref name="audited"/> hospitals (the largest first: its layer learns and leaks the most).</summary>
    public static PrivacyArmResult RunArm(PrivacyArm arm, IReadOnlyList<Hospital> hospitals, int epochs, int batchSize, double learningRate, ulong seed,
        AuditOptions audit, int audited = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(arm);
        ArgumentNullException.ThrowIfNull(hospitals);
        ArgumentNullException.ThrowIfNull(audit);
        var clock = Stopwatch.StartNew();
        // The consortium's initial client weights are the same at every hospital; the server is shared.
        var clients = hospitals.Select(_ => TorchRuntime.Seeded(seed, () => arm.Model.BuildClient())).ToList();
        using var server = TorchRuntime.Seeded(seed, () => arm.Model.BuildServer(clients[0].OutputShape));
        var settings = arm.Model.Optimizer with { LearningRate = learningRate };
        var clientOptimizers = clients.Select(c => Optimizer.Create(c, settings)).ToList();
        using var serverOptimizer = Optimizer.Create(server, settings);
        var attackers = clients.Select((c, i) => arm.AttackerAware > 0
            ? new SimulatedAttacker(c.OutputShape[0], c.InputShape, arm.AttackerAware, arm.ReleaseNoise, seed + (ulong)i) : null).ToList();
        try
        {
            for (var epoch = 0; epoch < epochs; epoch++)
            {
                // Every hospital's batches, spread evenly over the epoch (a small hospital's few batches are not all at its end).
                var steps = hospitals.SelectMany((h, i) =>
                {
                    var batches = BatchOrder.Batches(BatchOrder.Shuffle(h.Train.Count, seed + (ulong)i, epoch), batchSize).ToList();
                    return batches.Select((b, j) => (Hospital: i, Batch: b, At: (j + 0.5) / batches.Count));
                }).OrderBy(s => s.At).ThenBy(s => s.Hospital).ToList();
                foreach (var (i, batch, _) in steps)
                {
                    using var scope = NewDisposeScope();
                    var train = hospitals[i].Train;
                    var features = new float[batch.Count * train.SampleSize];
                    var targets = new float[batch.Count];
                    train.Gather(batch, features, targets);
                    var n = batch.Count;
                    var x = TensorData.FromFloats(features, train.BatchShape(n));
                    var y = TensorData.FromFloats(targets, [n, 1]);
                    clientOptimizers[i].ZeroGrad();
                    serverOptimizer.ZeroGrad();
                    var a = clients[i].Forward(x, train: true);
                    if (arm.ClipNorm > 0) a = ActivationClipping.Clip(a, arm.ClipNorm);
                    var sent = a;
                    if (arm.ReleaseNoise > 0)
                    {
                        var noise = new float[a.numel()];
                        ActivationNoise.Add(noise, arm.ReleaseNoise);
                        sent = a + TensorData.FromFloats(noise, a.shape);
                    }
                    var loss = nn.functional.binary_cross_entropy(server.Forward(sent, train: true), y);
                    if (arm.Alpha > 0 && n > 1) loss = loss + arm.Alpha * DistanceCorrelation.Compute(x, a);
                    if (attackers[i] is { } attacker) loss = loss + attacker.Penalty(a, x);
                    loss.backward();
                    serverOptimizer.Step();
                    clientOptimizers[i].Step();
                }
            }
            var results = new List<PrivacyHospitalResult>();
            for (var i = 0; i < hospitals.Count; i++)
            {
                var h = hospitals[i];
                var validationAuc = Auc(clients[i], server, h.Validation, arm);
                var testAuc = Auc(clients[i], server, h.Test, arm);
                // Each patient was sent once per epoch, in the hospital's secret order: the server links views by content only.
                var reports = new LeakageReport?[2];
                if (i < audited)
                {
                    // Collusion: the largest other hospital (the first, at 7:2:1) hands the server its trained layer.
                    int? colluder = hospitals.Count > 1 ? (i == 0 ? 1 : 0) : null;
                    var audited2 = LeakageAudit.Run(clients[i], h.Train, [h.Validation, h.Test], audit with
                    {
                        NoiseSigma = arm.ReleaseNoise,
                        BeforeNoise = arm.ClipNorm > 0 ? t => ActivationClipping.Clip(t, arm.ClipNorm) : null,
                        Seed = seed,
                        Views = epochs,
                        OrderKnownToServer = false,
                        PublicImages = h.PublicImages,
                        Colluder = colluder is { } c ? clients[c] : null,
                        ColluderName = colluder is { } n ? hospitals[n].Name : audit.ColluderName,
                    });
                    (reports[0], reports[1]) = (audited2[0], audited2[1]);
                }
                var delta = 1.0 / (h.Train.Count + h.Validation.Count + h.Test.Count);
                var epsilon = arm.NoiseMultiplier is { } sigma ? RdpAccountant.GaussianEpsilon(sigma, 2 * epochs + 1, delta) : (double?)null;
                results.Add(new PrivacyHospitalResult(h.Name, h.Train.Count, validationAuc, testAuc, reports[0], reports[1], epsilon, delta));
            }
            return new PrivacyArmResult(arm, results, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            foreach (var a in attackers) a?.Dispose();
            foreach (var o in clientOptimizers) o.Dispose();
            foreach (var c in clients) c.Dispose();
        }
    }

    // Evaluation as the hospital gets it: the server sees the clipped, noisy activations of held-out samples too.
    private static double Auc(Network client, Network server, TrainingSet data, PrivacyArm arm)
    {
        var scores = new float[data.Count];
        for (var start = 0; start < data.Count; start += 256)
        {
            var n = Math.Min(256, data.Count - start);
            using var scope = NewDisposeScope();
            var x = TensorData.FromFloats(data.Features.AsSpan(start * data.SampleSize, n * data.SampleSize), data.BatchShape(n));
            var a = client.Forward(x, train: false);
            var values = a.ToFloats();
            ActivationNoise.Release(values, n, arm.Sigma, arm.ClipNorm);
            server.Forward(TensorData.FromFloats(values, a.shape), train: false).CopyTo(scores.AsSpan(start, n));
        }
        return ClassificationMetrics.RocAuc(scores, data.Targets);
    }

    /// <summary>
    /// The default, on validation figures only: among arms where every hospital's validation AUC is within <paramref name="aucTolerance"/>
    /// of its undefended one (the first arm), the least leakage: the smallest best-attack SSIM above the mean image at the worst hospital,
    /// then the fewest re-identified. When no defended arm keeps every hospital within the tolerance, the same choice among the arms whose
    /// worst hospital loses at most <paramref name="aucTolerance"/> more than the cheapest defence's: accuracy first, as near the goal as
    /// any defence gets, then privacy (the cheapest alone may protect nothing, e.g. a deeper cut that costs the small hospitals and hides
    /// little).
    /// </summary>
    public static PrivacyArmResult Choose(IReadOnlyList<PrivacyArmResult> results, double aucTolerance)
    {
        ArgumentNullException.ThrowIfNull(results);
        var defended = results.Skip(1).ToList();
        if (defended.Count == 0) return results[0];
        double WorstLoss(PrivacyArmResult r) => r.Hospitals.Zip(results[0].Hospitals).Max(p => p.Second.ValidationAuc - p.First.ValidationAuc);
        var cheapest = defended.Min(WorstLoss);
        var allowed = cheapest <= aucTolerance ? aucTolerance : cheapest + aucTolerance;
        return defended.Where(r => WorstLoss(r) <= allowed + 1e-12).OrderBy(r => Math.Round(r.ValidationSsimGap, 3))
            .ThenBy(r => r.ValidationReidentification).First();
    }

    /// <summary>Arms no other arm beats on both the smallest hospital's validation AUC (higher) and the validation SSIM gap (lower).</summary>
    public static bool OnParetoFront(PrivacyArmResult r, IReadOnlyList<PrivacyArmResult> all)
    {
        static double Auc(PrivacyArmResult a) => a.Hospitals.Min(h => h.ValidationAuc);
        return !all.Any(o => o != r && Auc(o) >= Auc(r) && o.ValidationSsimGap <= r.ValidationSsimGap
            && (Auc(o) > Auc(r) || o.ValidationSsimGap < r.ValidationSsimGap));
    }

    /// <summary>The grid on validation (every arm; per hospital AUC, best attack's SSIM against the mean image, re-identified, epsilon).</summary>
    public static string Table(IReadOnlyList<PrivacyArmResult> results, PrivacyArmResult chosen)
    {
        ArgumentNullException.ThrowIfNull(results);
        var t = new StringBuilder();
        var names = results[0].Hospitals.Select(h => $"{h.Hospital} ({h.TrainCount})").ToList();
        t.AppendLine($"| arm | cut | C | sigma | NoPeek | attacker-aware | val AUC {string.Join(" / ", names)} | best val SSIM (mean image) per hospital | "
            + "val re-identified per hospital | epsilon per hospital | Pareto | seconds |");
        t.AppendLine("|---|---|---:|---:|---:|---:|---|---|---|---|---|---:|");
        foreach (var r in results)
        {
            var mark = r == chosen ? " **(chosen)**" : "";
            string Each(Func<PrivacyHospitalResult, string> f) => string.Join(" / ", r.Hospitals.Select(f));
            t.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Arm.Name}{mark} | {r.Arm.Model.Name} | {r.Arm.ClipNorm} | {r.Arm.Sigma} | {r.Arm.Alpha} | {r.Arm.AttackerAware} | "
                    + $"{Each(h => h.ValidationAuc.ToString("F4", CultureInfo.InvariantCulture))} | "
                    + $"{Each(h => h.Validation is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v.Best.Ssim:F3} ({v.Baseline.Ssim:F3})") : "-")} | "
                    + $"{Each(h => h.Validation?.MostReidentifying.BestReidentification.ToString("P1", CultureInfo.InvariantCulture) ?? "-")} | "
                    + $"{Each(h => h.Epsilon is { } e ? e.ToString("F1", CultureInfo.InvariantCulture) : "none")} | "
                    + $"{(OnParetoFront(r, results) ? "yes" : "")} | {r.Seconds:F0} |");
        }
        return t.ToString();
    }

    /// <summary>Test figures, per hospital, of the given arms (the chosen one and the undefended one): scored once, after the choice.</summary>
    public static string TestTable(IEnumerable<PrivacyArmResult> arms)
    {
        ArgumentNullException.ThrowIfNull(arms);
        var t = new StringBuilder();
        t.AppendLine("| arm | hospital | test AUC | mean-image SSIM | best SSIM | best attack | re-identified | most re-identifying attack | old audit "
            + "SSIM / re-id | epsilon (delta) |");
        t.AppendLine("|---|---|---:|---:|---:|---|---:|---|---:|---:|");
        foreach (var r in arms)
        {
            foreach (var h in r.Hospitals)
            {
                var eps = h.Epsilon is { } e ? string.Create(CultureInfo.InvariantCulture, $"{e:F1} ({h.Delta:G2})") : "none (no clipping)";
                if (h.Test is not { } test)
                {
                    t.AppendLine(CultureInfo.InvariantCulture,
                        $"| {r.Arm.Name} | {h.Hospital} ({h.TrainCount}) | {h.TestAuc:F4} | not audited | | | | | | {eps} |");
                    continue;
                }
                var old = test.Legacy is { } l ? string.Create(CultureInfo.InvariantCulture, $"{l.Ssim:F3} / {l.BestReidentification:P1}") : "";
                t.AppendLine(CultureInfo.InvariantCulture,
                    $"| {r.Arm.Name} | {h.Hospital} ({h.TrainCount}) | {h.TestAuc:F4} | {test.Baseline.Ssim:F3} | {test.Best.Ssim:F3} | "
                        + $"{test.Best.Name} | {test.MostReidentifying.BestReidentification:P1} | {test.MostReidentifying.Name} | {old} | {eps} |");
            }
        }
        return t.ToString();
    }
}
