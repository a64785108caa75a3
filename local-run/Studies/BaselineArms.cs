using System.Diagnostics;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// The in-process comparison arms of the paper: centralised training on the pooled hospital data, each hospital alone,
/// and federated averaging, all with the same network, epochs, batch size and seed as split learning. Each keeps the
/// epoch with the best validation score; the test split is scored once, after that choice.
/// </summary>
public static class BaselineArms
{
    public static ArmResult Centralised(ModelDefinition model, IReadOnlyList<TrainingSet> hospitals, TrainingSet validation, TrainingSet test,
        TestScorer scoreTest,
        int epochs, int batchSize, ulong seed, EpochProgress? progress, ImageAugmentation? augmentation = null)
    {
        var pooled = TrainingSet.Concat(hospitals);
        return Local("centralised", "all hospitals' data pooled in one place (the upper "
            + "reference)", model, pooled, validation, test, scoreTest, epochs, batchSize, seed, progress, augmentation);
    }

    public static ArmResult SingleHospital(string hospital, double share, ModelDefinition model, TrainingSet data, TrainingSet validation, TrainingSet test,
        TestScorer scoreTest,
        int epochs, int batchSize, ulong seed, EpochProgress? progress, ImageAugmentation? augmentation = null) =>
        Local($"single-{hospital}", $"{hospital} alone ({share:P0} of the training "
            + $"data)", model, data, validation, test, scoreTest, epochs, batchSize, seed, progress, augmentation);

    public static ArmResult Federated(ModelDefinition model, IReadOnlyList<TrainingSet> hospitals, TrainingSet validation, TrainingSet test,
        TestScorer scoreTest,
        int epochs, int batchSize, ulong seed, EpochProgress? progress, ImageAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(test);
        var clock = Stopwatch.StartNew();
        var (trained, history) = FederatedAveraging.Train(model, hospitals, validation, epochs, batchSize, seed, ValidationScores.For(model.Task), progress,
            augmentation);
        using (trained)
        {
            var predictions = trained.Predict(test);
            return new ArmResult("federated", "federated averaging, one local epoch per round, sample-weighted", history,
                scoreTest(predictions), null, clock.Elapsed.TotalSeconds, hospitals.Sum(h => h.Count), Best(history))
            { TestPredictions = predictions };
        }
    }

    private static ArmResult Local(string arm, string description, ModelDefinition model, TrainingSet train, TrainingSet validation, TrainingSet test,
        TestScorer scoreTest,
        int epochs, int batchSize, ulong seed, EpochProgress? progress, ImageAugmentation? augmentation)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(test);
        var clock = Stopwatch.StartNew();
        var (trained, history) = LocalTrainer.Train(arm, model, train, validation, epochs, batchSize, seed, ValidationScores.For(model.Task), progress,
            augmentation: augmentation);
        using (trained)
        {
            var predictions = trained.Predict(test);
            return new ArmResult(arm, description, history, scoreTest(predictions), null, clock.Elapsed.TotalSeconds, train.Count, Best(history))
            {
                TestPredictions = predictions,
            };
        }
    }

    /// <summary>The epoch whose weights were kept (best validation score).</summary>
    public static int Best(IReadOnlyList<EpochResult> history) =>
        history.Count == 0 ? 0 : history.MaxBy(h => h.ValidationScore)!.Epoch;
}
