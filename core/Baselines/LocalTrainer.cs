using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Core.Baselines;

/// <summary>
/// Trains a catalog model in one process on one data set: the centralised baseline (all hospitals' data pooled) and the
/// single-hospital arms (one hospital's data alone). Keeps the weights of the epoch with the best validation score, so the
/// number of epochs is chosen on validation data, never on the test split.
/// </summary>
public static class LocalTrainer
{
    public static (SplitModel Model, IReadOnlyList<EpochResult> History) Train(
        string arm, ModelDefinition definition, TrainingSet train, TrainingSet validation, int epochs, int batchSize, ulong seed,
        ValidationScorer score, EpochProgress? progress = null, OptimizerSettings? optimizer = null, ImageAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(score);
        var model = SplitModel.Create(definition, seed, optimizer);
        var history = new List<EpochResult>();
        var best = new BestEpoch<(byte[] Client, byte[] Server)>();
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var sum = model.TrainEpoch(train, batchSize, seed, epoch, augmentation?.ForEpoch(epoch));
            var validationScore = score(model.Predict(validation), validation.Targets);
            var result = new EpochResult(epoch + 1, sum / train.Count, validationScore, clock.Elapsed.TotalSeconds);
            history.Add(result);
            progress?.Invoke(arm, result);
            best.Offer(epoch + 1, validationScore, () => (model.Client.SaveState(), model.Server.SaveState()));
        }
        if (best.Epoch > 0)
        {
            model.Client.LoadState(best.State.Client);
            model.Server.LoadState(best.State.Server);
        }
        return (model, history);
    }
}
