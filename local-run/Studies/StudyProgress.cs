using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>One line per epoch per arm, so long studies show where they are.</summary>
public static class StudyProgress
{
    public static EpochProgress Console(int epochs) => (arm, r) =>
        System.Console.WriteLine($"  {arm,-22} epoch {r.Epoch,3}/{epochs}  train loss {r.TrainLoss,8:F4}  validation {r.ValidationScore,8:F4}  "
            + $"({r.Seconds:F1} s)");
}
