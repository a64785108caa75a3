using SplitFunctions.Core.Models;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>The multi-hospital split-learning arms, run through the real system (Azurite, the function, one agent per hospital).</summary>
public static class SplitArm
{
    public static Task<ArmResult> RunAsync(TrainingMode mode, StudyOptions options, ModelDefinition model, StudyMaterial material, string folder, CancellationToken ct) =>
        throw new NotSupportedException("split-learning arms are not wired to the agent yet");
}
