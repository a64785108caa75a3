using System.Globalization;
using System.Text;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using TorchSharp;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// One defence setting's result. Per batch (the paper's measure): each attack's mean per-batch AUC, the better orientation
/// taken in every batch, and <see cref="ChanceAuc"/>, the same measure for random scores (its floor: a defence cannot
/// push it lower). Pooled: one AUC over every gradient the server received in the run (scores normalised per batch,
/// orientation chosen once), and <see cref="LinkedAuc"/>, the spectral score averaged over each patient's epochs, as a
/// server that links every view of a patient would (an upper bound on linking). <see cref="BestAttackAuc"/> is the
/// largest pooled or linked AUC.
/// </summary>
public sealed record LeakageResult(string Defence, double NormAttackAuc, double DirectionAttackAuc, int SelectedEpoch, double ValidationAuc, double TestAuc)
{
    public double SpectralAttackAuc { get; init; }

    public double ChanceAuc { get; init; }

    public double NormPooledAuc { get; init; }

    public double DirectionPooledAuc { get; init; }

    public double SpectralPooledAuc { get; init; }

    public double LinkedAuc { get; init; }

    /// <summary>
    /// Model completion (Fu et al., USENIX Security 2022): the server projects its own output for each training sample on the tail's
    /// direction, which it reads off the gradients (their first principal direction, signed batch to batch as the spectral attack does):
    /// for a linear tail that ranks samples as the hospital's prediction does, whatever noise is on each gradient. Pooled over the run.
    /// </summary>
    public double CompletionPooledAuc { get; init; }

    /// <summary>Model completion averaged over each training patient's epochs (perfect linking, as <see cref="LinkedAuc"/>).</summary>
    public double CompletionLinkedAuc { get; init; }

    /// <summary>Model completion on the test patients: the server's outputs for them at the kept epoch's evaluation, on the last direction.</summary>
    public double CompletionTestAuc { get; init; }

    public double BestAttackAuc =>
        new[] { NormPooledAuc, DirectionPooledAuc, SpectralPooledAuc, LinkedAuc, CompletionPooledAuc, CompletionLinkedAuc, CompletionTestAuc }
            .Where(double.IsFinite).Max();
}

/// <summary>
/// Label leakage of U-shaped training, measured (Li et al., ICLR 2022): the U-shaped network (head, body, tail; the
/// same <see cref="UShapedSplit"/> and <see cref="OutputGradientDefence"/> the agent and function run) trained in one
/// process on the pooled training rows, recording every dL/d(server output) exactly as the server would receive it
/// (after the hospital's defence), and scoring the norm and direction attacks on it. The epoch is chosen on
/// validation; the test AUC is read at that epoch only.
/// </summary>
public static class LabelLeakageStudy
{
    public static IReadOnlyList<LeakageResult> Run(string dataPath, IReadOnlyList<GradientDefence> defences, int epochs, int? maxSamples, ulong seed,
        Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(defences);
        ArgumentNullException.ThrowIfNull(log);
        var model = ModelCatalog.PneumoniaCnn;
        var study = ImageStudy.Load(dataPath, 28, 28, hospitals: 3, (long)seed, maxSamples);
        var statistics = ChannelStatistics.Compute(study.Pooled.Subset(study.Split.Training));
        var train = ImageStudy.ToTrainingSet(study.Pooled.Subset(study.Split.Training), statistics);
        var validation = ImageStudy.ToTrainingSet(study.Validation, statistics);
        var test = ImageStudy.ToTrainingSet(study.Test, statistics);
        log($"{train.Count} training, {validation.Count} validation, {test.Count} test images; batch {model.BatchSize}, {epochs} epochs per setting");
        return [.. defences.Select(d => Train(model, d, train, validation, test, epochs, seed, log))];
    }

    public static string Describe(GradientDefence d) =>
        d.IsOff ? "none" : string.Join(" + ",
            new[] { d.MaxNorm ? "max-norm" : null, d.NoiseMultiplier > 0 ? FormattableString.Invariant($"noise x{d.NoiseMultiplier:0.##}") : null,
            d.DirectionNoise > 0 ? FormattableString.Invariant($"direction noise x{d.DirectionNoise:0.##}") : null,
            d.MarvellPower > 0 ? FormattableString.Invariant($"Marvell s={d.MarvellPower:0.###}") : null }.Where(s => s is not null));

    /// <summary>Trains <paramref name="model"/> U-shaped with <paramref name="defence"/> and scores every attack on what the server received.</summary>
    public static LeakageResult Train(ModelDefinition model, GradientDefence defence, TrainingSet train, TrainingSet validation, TrainingSet test,
        int epochs, ulong seed, Action<string> log)
    {
        TorchRuntime.Seed(seed);
        var (head, body, tail) = UShapedSplit.Build(model);
        using var h = head;
        using var b = body;
        using var t = tail;
        using var headOptimizer = Optimizer.Create(head, model.Optimizer);
        using var bodyOptimizer = Optimizer.Create(body, model.Optimizer);
        using var tailOptimizer = Optimizer.Create(tail, model.Optimizer);
        double normSum = 0, directionSum = 0, spectralSum = 0, chanceSum = 0;
        int normBatches = 0, directionBatches = 0;
        var pooled = new Pool();
        var linked = new double[train.Count];
        var linkedViews = new int[train.Count];
        var completion = new double[train.Count];
        var completionViews = new int[train.Count];
        var chance = new Random((int)seed);
        double[]? previousDirection = null;
        var best = (Epoch: 0, Validation: double.NegativeInfinity, Test: double.NaN, CompletionTest: double.NaN);
        var features = new float[model.BatchSize * train.SampleSize];
        var labels = new float[model.BatchSize];
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            foreach (var batch in BatchOrder.Batches(BatchOrder.Shuffle(train.Count, seed, epoch), model.BatchSize))
            {
                var n = batch.Count;
                train.Gather(batch, features, labels);
                using var scope = torch.NewDisposeScope();
                var x = TensorData.FromFloats(features.AsSpan(0, n * train.SampleSize), train.BatchShape(n));
                var y = TensorData.FromFloats(labels.AsSpan(0, n), [n, 1]);
                headOptimizer.ZeroGrad();
                bodyOptimizer.ZeroGrad();
                tailOptimizer.ZeroGrad();
                var a = head.Forward(x, train: true);
                var aWire = a.detach().requires_grad_();
                var o = body.Forward(aWire, train: true);
                var oWire = o.detach().requires_grad_();
                Loss.Compute(model.Loss, tail.Forward(oWire, train: true), y, backward: true);
                tailOptimizer.Step();
                // What the server receives: the hospital's dL/d(output) after its defence.
                var g = oWire.grad!.ToFloats();
                OutputGradientDefence.Apply(g, labels.AsSpan(0, n), n, defence);
                var batchLabels = labels.AsSpan(0, n);
                if (HasBothClasses(batchLabels))
                {
                    normSum += LabelLeakageAttacks.Auc(LabelLeakageAttacks.NormScores(g, n), batchLabels);
                    normBatches++;
                    var norms = LabelLeakageAttacks.NormScores(g, n);
                    var meanNorm = norms.Average();
                    for (var i = 0; i < n; i++) pooled.Add(0, meanNorm == 0 ? 0 : norms[i] / meanNorm, batchLabels[i]);
                    var (scores, kept) = LabelLeakageAttacks.DirectionScores(g, batchLabels, n);
                    // Per batch the known positive signs the direction; pooled and linked, each batch's direction is signed to agree
                    // with the previous one, so the run shares one orientation that no single noisy label can flip.
                    var (spectral, _) = LabelLeakageAttacks.SpectralScores(g, batchLabels, n);
                    var (aligned, _, direction) = LabelLeakageAttacks.SpectralScores(g, batchLabels, n, previousDirection);
                    if (direction.Length > 0)
                    {
                        previousDirection = direction;
                        // Model completion: the server's own outputs projected on the tail's direction it read off the gradients.
                        var outputs = LabelLeakageAttacks.CompletionScores(o.detach().ToFloats(), n, direction);
                        for (var i = 0; i < n; i++)
                        {
                            var score = outputs[i];
                            pooled.Add(3, score, batchLabels[i]);
                            completion[batch[i]] += score;
                            completionViews[batch[i]]++;
                        }
                    }
                    if (HasBothClasses(kept))
                    {
                        directionSum += LabelLeakageAttacks.Auc(scores, kept);
                        spectralSum += LabelLeakageAttacks.Auc(spectral, kept);
                        var random = kept.Select(_ => (float)chance.NextDouble()).ToArray();
                        chanceSum += LabelLeakageAttacks.Auc(random, kept);
                        directionBatches++;
                        // The scores skip the batch's first positive (the attacker's known label): map them back to samples.
                        var reference = batchLabels.IndexOf(1f);
                        for (int i = 0, j = 0; i < n; i++)
                        {
                            if (i == reference) continue;
                            pooled.Add(1, scores[j], kept[j]);
                            pooled.Add(2, aligned[j], kept[j]);
                            linked[batch[i]] += aligned[j];
                            linkedViews[batch[i]]++;
                            j++;
                        }
                    }
                }
                o.backward([TensorData.FromFloats(g, o.shape)]);
                bodyOptimizer.Step();
                a.backward([aWire.grad!]);
                headOptimizer.Step();
            }
            var validationAuc = Score(head, body, tail, validation);
            var testAuc = Score(head, body, tail, test);
            // The server computes the body's outputs for the test patients when the hospital evaluates: it can score them too.
            var completionTest = previousDirection is null ? double.NaN : CompletionScore(head, body, test, previousDirection);
            if (validationAuc > best.Validation) best = (epoch + 1, validationAuc, testAuc, completionTest);
            log(FormattableString.Invariant($"  {Describe(defence)}: epoch {epoch + 1}, validation AUC {validationAuc:F4}, {clock.Elapsed.TotalSeconds:F0} s"));
        }
        var viewed = Enumerable.Range(0, train.Count).Where(i => linkedViews[i] > 0).ToArray();
        var linkedAuc = LabelLeakageAttacks.Auc(viewed.Select(i => (float)(linked[i] / linkedViews[i])).ToArray(),
            viewed.Select(i => train.Targets[i]).ToArray());
        var completed = Enumerable.Range(0, train.Count).Where(i => completionViews[i] > 0).ToArray();
        var completionLinkedAuc = completed.Length == 0 ? double.NaN : LabelLeakageAttacks.Auc(
            completed.Select(i => (float)(completion[i] / completionViews[i])).ToArray(), completed.Select(i => train.Targets[i]).ToArray());
        return new LeakageResult(Describe(defence), normSum / Math.Max(normBatches, 1), directionSum / Math.Max(directionBatches, 1), best.Epoch,
            best.Validation, best.Test)
        {
            SpectralAttackAuc = spectralSum / Math.Max(directionBatches, 1),
            ChanceAuc = chanceSum / Math.Max(directionBatches, 1),
            NormPooledAuc = pooled.Auc(0),
            DirectionPooledAuc = pooled.Auc(1),
            SpectralPooledAuc = pooled.Auc(2),
            LinkedAuc = linkedAuc,
            CompletionPooledAuc = pooled.Auc(3),
            CompletionLinkedAuc = completionLinkedAuc,
            CompletionTestAuc = best.CompletionTest,
        };
    }

    // Every received gradient's score under each attack, with its label, for one AUC over the run.
    private sealed class Pool
    {
        private readonly List<float>[] scores = [[], [], [], []];
        private readonly List<float>[] labels = [[], [], [], []];

        public void Add(int attack, double score, float label)
        {
            scores[attack].Add((float)score);
            labels[attack].Add(label);
        }

        public double Auc(int attack) => labels[attack].Count == 0 ? double.NaN
            : LabelLeakageAttacks.Auc(scores[attack].ToArray(), labels[attack].ToArray());
    }

    private static bool HasBothClasses(ReadOnlySpan<float> labels)
    {
        bool positive = false, negative = false;
        foreach (var l in labels)
        {
            if (l >= 0.5f) positive = true;
            else negative = true;
        }
        return positive && negative;
    }

    // The attack AUC of the server's outputs for data, projected on the direction (model completion at evaluation).
    private static double CompletionScore(Network head, Network body, TrainingSet data, double[] direction)
    {
        var scores = new float[data.Count];
        ForEachOutputChunk(head, body, data, (start, n, outputs) =>
            LabelLeakageAttacks.CompletionScores(outputs.ToFloats(), n, direction).CopyTo(scores, start));
        return LabelLeakageAttacks.Auc(scores, data.Targets);
    }

    private static double Score(Network head, Network body, Network tail, TrainingSet data)
    {
        var predictions = new float[data.Count];
        ForEachOutputChunk(head, body, data, (start, _, outputs) => tail.Forward(outputs, train: false).ToFloats().CopyTo(predictions, start));
        return ClassificationMetrics.RocAuc(predictions, data.Targets);
    }

    // The body's outputs (what the server computes) for data in order, a chunk at a time, without gradients.
    private static void ForEachOutputChunk(Network head, Network body, TrainingSet data, Action<int, int, torch.Tensor> use)
    {
        var order = Enumerable.Range(0, data.Count).ToArray();
        const int chunk = 256;
        var features = new float[chunk * data.SampleSize];
        var targets = new float[chunk];
        for (var start = 0; start < data.Count; start += chunk)
        {
            var n = Math.Min(chunk, data.Count - start);
            data.Gather(order.AsSpan(start, n), features, targets);
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var x = TensorData.FromFloats(features.AsSpan(0, n * data.SampleSize), data.BatchShape(n));
            use(start, n, body.Forward(head.Forward(x, train: false), train: false));
        }
    }

    /// <summary>The results as a markdown table, for docs/results.md.</summary>
    public static string ToMarkdown(IReadOnlyList<LeakageResult> results)
    {
        var text = new StringBuilder("| defence at the hospital | per batch: norm / direction / spectral (chance) | pooled: norm / direction / spectral "
            + "| linked views | model completion: pooled / linked / test patients | best attack | epoch | validation AUC | test AUC |\n"
            + "|---|---|---|---|---|---|---|---|---|\n");
        foreach (var r in results)
        {
            text.Append(CultureInfo.InvariantCulture, $"| {r.Defence} | {r.NormAttackAuc:F3} / {r.DirectionAttackAuc:F3} / {r.SpectralAttackAuc:F3} "
                + $"({r.ChanceAuc:F3}) | {r.NormPooledAuc:F3} / {r.DirectionPooledAuc:F3} / {r.SpectralPooledAuc:F3} | {r.LinkedAuc:F3} | "
                + $"{r.CompletionPooledAuc:F3} / {r.CompletionLinkedAuc:F3} / {r.CompletionTestAuc:F3} | "
                + $"{r.BestAttackAuc:F3} | {r.SelectedEpoch} | {r.ValidationAuc:F4} | {r.TestAuc:F4} |\n");
        }
        return text.ToString();
    }
}
