using SplitFunctions.Core.Baselines;

namespace SplitFunctions.Core.Data;

/// <summary>One epoch of a training arm: mean training loss and the validation score that selects the weights.</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double ValidationScore, double Seconds);

/// <summary>Scores predictions against targets on validation data; higher is better (e.g. AUC, or minus MSLE).</summary>
public delegate double ValidationScorer(float[] predictions, float[] targets);

/// <summary>Per-epoch progress for long runs.</summary>
public delegate void EpochProgress(string arm, EpochResult result);
