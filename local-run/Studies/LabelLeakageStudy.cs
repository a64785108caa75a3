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

/// <summary>One defence setting's result: the attacks' mean per-batch AUC on what the server received, and the test AUC.</summary>
public sealed record LeakageResult(string Defence, double NormAttackAuc, double DirectionAttackAuc, int SelectedEpoch, double ValidationAuc, double TestAuc);

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
        return [.. defences.Select(d => RunOne(model, d, train, validation, test, epochs, seed, log))];
    }

    public static string Describe(GradientDefence d) =>
        d.IsOff ? "none" : string.Join(" + ",
            new[] { d.MaxNorm ? "max-norm" : null, d.NoiseMultiplier > 0 ? FormattableString.Invariant($"noise x{d.NoiseMultiplier:0.##}") : null,
            d.DirectionNoise > 0 ? FormattableString.Invariant($"direction noise x{d.DirectionNoise:0.##}") : null }.Where(s => s is not null));

    private static LeakageResult RunOne(ModelDefinition model, GradientDefence defence, TrainingSet train, TrainingSet validation, TrainingSet test,
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
        double normSum = 0, directionSum = 0;
        int normBatches = 0, directionBatches = 0;
        var best = (Epoch: 0, Validation: double.NegativeInfinity, Test: double.NaN);
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
                    var (scores, kept) = LabelLeakageAttacks.DirectionScores(g, batchLabels, n);
                    if (HasBothClasses(kept))
                    {
                        directionSum += LabelLeakageAttacks.Auc(scores, kept);
                        directionBatches++;
                    }
                }
                o.backward([TensorData.FromFloats(g, o.shape)]);
                bodyOptimizer.Step();
                a.backward([aWire.grad!]);
                headOptimizer.Step();
            }
            var validationAuc = Score(head, body, tail, validation);
            var testAuc = Score(head, body, tail, test);
            if (validationAuc > best.Validation) best = (epoch + 1, validationAuc, testAuc);
            log(FormattableString.Invariant($"  {Describe(defence)}: epoch {epoch + 1}, validation AUC {validationAuc:F4}, {clock.Elapsed.TotalSeconds:F0} s"));
        }
        return new LeakageResult(Describe(defence), normSum / Math.Max(normBatches, 1), directionSum / Math.Max(directionBatches, 1), best.Epoch,
            best.Validation, best.Test);
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

    private static double Score(Network head, Network body, Network tail, TrainingSet data)
    {
        var predictions = new float[data.Count];
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
            tail.Forward(body.Forward(head.Forward(x, train: false), train: false), train: false).ToFloats().CopyTo(predictions, start);
        }
        return ClassificationMetrics.RocAuc(predictions, data.Targets);
    }

    /// <summary>The results as a markdown table, for docs/results.md.</summary>
    public static string ToMarkdown(IReadOnlyList<LeakageResult> results)
    {
        var text = new StringBuilder("| defence at the hospital | norm attack AUC | direction attack AUC | epoch (validation) | validation AUC | test AUC "
            + "|\n|---|---|---|---|---|---|\n");
        foreach (var r in results)
        {
            text.Append(CultureInfo.InvariantCulture, $"| {r.Defence} | {r.NormAttackAuc:F3} | {r.DirectionAttackAuc:F3} | {r.SelectedEpoch} | "
                + $"{r.ValidationAuc:F4} | {r.TestAuc:F4} |\n");
        }
        return text.ToString();
    }
}
