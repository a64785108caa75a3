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

/// <summary>One defence setting: where the cut is, the noise sigma and the NoPeek alpha.</summary>
public sealed record PrivacyArm(string Name, ModelDefinition Model, double Sigma, double Alpha);

/// <summary>An arm's accuracy and leakage, on validation (to choose) and on test (to report, scored once).</summary>
public sealed record PrivacyArmResult(PrivacyArm Arm, double ValidationAuc, double TestAuc, LeakageReport Validation, LeakageReport Test, double Seconds);

/// <summary>
/// The privacy / accuracy trade-off: trains each arm in one process exactly as split learning computes it (client
/// forward, noise on what would be sent, server forward, BCE, plus alpha * DCor(x, A) at the client; one backward), then
/// audits its client layer. Settings are chosen on validation figures; test figures are computed once per arm.
/// </summary>
public static class PrivacyStudy
{
    /// <summary>The grid: no defence, two sigmas, two alphas, two deeper cuts, and a combination.</summary>
    public static IReadOnlyList<PrivacyArm> Grid(string name) => name switch
    {
        "tiny" => [new("none", ModelCatalog.PneumoniaCnn, 0, 0), new("nopeek a=2", ModelCatalog.PneumoniaCnn, 0, 2)],
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

    public static PrivacyArmResult RunArm(PrivacyArm arm, TrainingSet train, TrainingSet validation, TrainingSet test, int epochs, int batchSize,
        double learningRate, ulong seed, AuditOptions audit)
    {
        ArgumentNullException.ThrowIfNull(arm);
        ArgumentNullException.ThrowIfNull(train);
        var clock = Stopwatch.StartNew();
        using var model = SplitModel.Create(arm.Model, seed);
        using var clientOptimizer = Optimizer.Create(model.Client, arm.Model.Optimizer with { LearningRate = learningRate });
        using var serverOptimizer = Optimizer.Create(model.Server, arm.Model.Optimizer with { LearningRate = learningRate });
        var features = new float[batchSize * train.SampleSize];
        var targets = new float[batchSize];
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            foreach (var batch in BatchOrder.Batches(BatchOrder.Shuffle(train.Count, seed, epoch), batchSize))
            {
                using var scope = NewDisposeScope();
                train.Gather(batch, features, targets);
                var n = batch.Count;
                var x = TensorData.FromFloats(features.AsSpan(0, n * train.SampleSize), train.BatchShape(n));
                var y = TensorData.FromFloats(targets.AsSpan(0, n), [n, 1]);
                clientOptimizer.ZeroGrad();
                serverOptimizer.ZeroGrad();
                var a = model.Client.Forward(x, train: true);
                var sent = a;
                if (arm.Sigma > 0)
                {
                    var noise = new float[a.numel()];
                    ActivationNoise.Add(noise, arm.Sigma);
                    sent = a + TensorData.FromFloats(noise, a.shape);
                }
                var loss = nn.functional.binary_cross_entropy(model.Server.Forward(sent, train: true), y);
                if (arm.Alpha > 0 && n > 1) loss = loss + arm.Alpha * DistanceCorrelation.Compute(x, a);
                loss.backward();
                serverOptimizer.Step();
                clientOptimizer.Step();
            }
        }
        var validationAuc = Auc(model, validation, arm.Sigma);
        var testAuc = Auc(model, test, arm.Sigma);
        // Each training patient was sent once per epoch, in an order derived from the seed (known to the server).
        var reports = LeakageAudit.Run(model.Client, train, [validation, test], audit with { NoiseSigma = arm.Sigma, Seed = seed, Views = epochs });
        return new PrivacyArmResult(arm, validationAuc, testAuc, reports[0], reports[1], clock.Elapsed.TotalSeconds);
    }

    // Evaluation as the hospital gets it: the server sees the noisy activations of held-out samples too.
    private static double Auc(SplitModel model, TrainingSet data, double sigma)
    {
        var scores = new float[data.Count];
        for (var start = 0; start < data.Count; start += 256)
        {
            var n = Math.Min(256, data.Count - start);
            using var scope = NewDisposeScope();
            var x = TensorData.FromFloats(data.Features.AsSpan(start * data.SampleSize, n * data.SampleSize), data.BatchShape(n));
            var a = model.Client.Forward(x, train: false);
            if (sigma > 0)
            {
                var values = a.ToFloats();
                ActivationNoise.Add(values, sigma);
                a = TensorData.FromFloats(values, a.shape);
            }
            model.Server.Forward(a, train: false).CopyTo(scores.AsSpan(start, n));
        }
        return ClassificationMetrics.RocAuc(scores, data.Targets);
    }

    /// <summary>
    /// The default: among arms whose validation AUC is within <paramref name="aucTolerance"/> of the undefended arm's,
    /// the one whose best validation reconstruction has the lowest SSIM (validation figures only).
    /// </summary>
    public static PrivacyArmResult Choose(IReadOnlyList<PrivacyArmResult> results, double aucTolerance)
    {
        ArgumentNullException.ThrowIfNull(results);
        var reference = results[0].ValidationAuc;
        return results.Where(r => r.ValidationAuc >= reference - aucTolerance).MinBy(r => r.Validation.Best.Ssim) ?? results[0];
    }

    /// <summary>Arms no other arm beats on both test AUC (higher) and best test SSIM (lower).</summary>
    public static bool OnParetoFront(PrivacyArmResult r, IReadOnlyList<PrivacyArmResult> all) =>
        !all.Any(o => o != r && o.TestAuc >= r.TestAuc && o.Test.Best.Ssim <= r.Test.Best.Ssim
            && (o.TestAuc > r.TestAuc || o.Test.Best.Ssim < r.Test.Best.Ssim));

    public static string Table(IReadOnlyList<PrivacyArmResult> results, PrivacyArmResult chosen)
    {
        ArgumentNullException.ThrowIfNull(results);
        var t = new StringBuilder();
        t.AppendLine("| arm | cut | sigma | alpha | val AUC | test AUC | mean-image SSIM | best SSIM | PSNR dB | best attack | re-identified | "
            + "re-identified by | old audit SSIM / re-id | DCor | Pareto | seconds |");
        t.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---|---:|");
        foreach (var r in results)
        {
            var best = r.Test.Best;
            var reid = r.Test.MostReidentifying;
            var old = r.Test.Legacy is { } l ? string.Create(CultureInfo.InvariantCulture, $"{l.Ssim:F3} / {l.BestReidentification:P1}") : "";
            var mark = r == chosen ? " (chosen)" : "";
            t.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Arm.Name}{mark} | {r.Arm.Model.Name} | {r.Arm.Sigma} | {r.Arm.Alpha} | {r.ValidationAuc:F4} | {r.TestAuc:F4} | "
                    + $"{r.Test.Baseline.Ssim:F3} | {best.Ssim:F3} | {best.PsnrDb:F1} | {best.Name} | {reid.BestReidentification:P1} | {reid.Name} | {old} | "
                    + $"{r.Test.DistanceCorrelation:F3} | {(OnParetoFront(r, results) ? "yes" : "")} | {r.Seconds:F0} |");
        }
        return t.ToString();
    }
}
