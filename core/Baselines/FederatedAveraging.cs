using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using TorchSharp;

namespace SplitFunctions.Core.Baselines;

/// <summary>
/// Federated averaging (McMahan et al. 2017) of the same network, for the paper's comparison: each round every hospital
/// trains one local epoch from the global weights, and the global weights become the sample-weighted mean of theirs.
/// Rounds = epochs, the same data and batch size as split learning; the best round on validation is kept.
/// </summary>
public static class FederatedAveraging
{
    public static (SplitModel Model, IReadOnlyList<EpochResult> History) Train(
        ModelDefinition definition, IReadOnlyList<TrainingSet> hospitals, TrainingSet validation, int rounds, int batchSize, ulong seed,
        ValidationScorer score, EpochProgress? progress = null, ImageAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(hospitals);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(score);
        var global = SplitModel.Create(definition, seed);
        // Every participant starts from the same seeded weights and keeps its own optimizer state across rounds.
        var locals = hospitals.Select(_ => SplitModel.Create(definition, seed)).ToList();
        var history = new List<EpochResult>();
        var best = double.NegativeInfinity;
        (byte[] Client, byte[] Server)? bestWeights = null;
        try
        {
            var total = hospitals.Sum(h => (double)h.Count);
            for (var round = 0; round < rounds; round++)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                double lossSum = 0;
                for (var k = 0; k < hospitals.Count; k++)
                {
                    CopyWeights(global, locals[k]);
                    // Each participant's rows are numbered from 0: the draw is keyed by (round, participant) so two hospitals' row 5 differ.
                    var pass = augmentation?.ForEpoch(((long)round * hospitals.Count) + k);
                    lossSum += locals[k].TrainEpoch(hospitals[k], batchSize, seed + (ulong)k, round, pass);
                }
                Average(global, locals, hospitals.Select(h => h.Count / total).ToArray());
                var validationScore = score(global.Predict(validation), validation.Targets);
                var result = new EpochResult(round + 1, lossSum / total, validationScore, clock.Elapsed.TotalSeconds);
                history.Add(result);
                progress?.Invoke("federated", result);
                if (validationScore > best)
                {
                    best = validationScore;
                    bestWeights = (global.Client.SaveState(), global.Server.SaveState());
                }
            }
        }
        finally
        {
            foreach (var local in locals) local.Dispose();
        }
        if (bestWeights is { } w)
        {
            global.Client.LoadState(w.Client);
            global.Server.LoadState(w.Server);
        }
        return (global, history);
    }

    private static void CopyWeights(SplitModel from, SplitModel to)
    {
        to.Client.LoadState(from.Client.SaveState());
        to.Server.LoadState(from.Server.SaveState());
    }

    private static void Average(SplitModel global, List<SplitModel> locals, double[] weights)
    {
        AverageNetwork(global.Client, locals.Select(l => l.Client).ToList(), weights);
        AverageNetwork(global.Server, locals.Select(l => l.Server).ToList(), weights);
    }

    // The sample-weighted mean of every state entry, computed in libtorch (one scope per network). Batch norm's running
    // mean and variance are averaged like the weights; its batch counter (an integer) is the largest of the locals'.
    private static void AverageNetwork(Network global, List<Network> locals, double[] weights)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var name in global.StateNames)
        {
            var first = locals[0].GetState(name);
            if (!first.is_floating_point())
            {
                global.SetState(name, torch.stack(locals.Select(l => l.GetState(name)).ToArray()).max());
                continue;
            }
            var sum = torch.zeros_like(first);
            for (var k = 0; k < locals.Count; k++)
            {
                using var weight = weights[k].ToScalar(); // held through the call (see DistanceCorrelation)
                sum.add_(locals[k].GetState(name), weight);
            }
            global.SetState(name, sum);
        }
    }
}
