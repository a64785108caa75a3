using System.Globalization;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Data;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>What kind of pass over a split releases the hospital's samples.</summary>
public enum ReleaseKind
{
    Training,
    Validation,
    Evaluation,
}

/// <summary>
/// The hospital's privacy account: every pass that sends its samples is one Gaussian release per sample (noise
/// multiplier sigma when the run clips to privacy.clipNorm), composed by the RDP accountant into epsilon at delta
/// (1 / N by default). Checked before each pass, counting what that pass costs, against privacy.maxEpsilon.
/// </summary>
public static class ReleaseBudget
{
    /// <summary>Sigma of the run's Gaussian mechanism, or null when the manifest gives no guarantee (no clipping or no noise).</summary>
    public static double? NoiseMultiplier(RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return manifest.Privacy is { ClipNorm: > 0, NoiseSigma: > 0 } p ? p.NoiseSigma : null;
    }

    /// <summary>Delta: the configured one, else 1 / N for the hospital's N samples (every split).</summary>
    public static double Delta(AgentPrivacySettings privacy, HospitalData data)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        ArgumentNullException.ThrowIfNull(data);
        var n = data.Train.Count + data.Validation.Count + data.Test.Count;
        return privacy.Delta ?? 1.0 / Math.Max(2, n);
    }

    /// <summary>Epsilon after <paramref name="releases"/> releases per sample, or null without a guarantee.</summary>
    public static double? Epsilon(double? noiseMultiplier, int releases, double delta) =>
        noiseMultiplier is { } sigma ? RdpAccountant.GaussianEpsilon(sigma, releases, delta) : null;

    /// <summary>Whether the next training message begins a pass the ledger has not counted yet.</summary>
    public static bool BeginsTrainingPass(AgentState state, int epoch)
    {
        ArgumentNullException.ThrowIfNull(state);
        return epoch + 1 > state.Releases.TrainingPasses;
    }

    /// <summary>
    /// The ledger with one more pass of <paramref name="kind"/> counted, or an <see cref="ExitCode.PrivacyBudget"/> stop
    /// when that pass would bring epsilon above privacy.maxEpsilon (nothing of it is sent).
    /// </summary>
    public static ReleaseLedger Count(HospitalRun run, ReleaseKind kind)
    {
        ArgumentNullException.ThrowIfNull(run);
        return Count(run.State.Releases, kind, run.State.Epoch, run.Manifest, Delta(run.Config.Privacy, run.Data), run.Config.Privacy.MaxEpsilon);
    }

    /// <summary>As <see cref="Count(HospitalRun, ReleaseKind)"/>, from the values it reads: <paramref name="epoch"/> is the epoch in progress.</summary>
    public static ReleaseLedger Count(ReleaseLedger ledger, ReleaseKind kind, int epoch, RunManifest manifest, double delta, double? maxEpsilon)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        ArgumentNullException.ThrowIfNull(manifest);
        // A training pass is an epoch: epochs begun before this agent kept a ledger count too. Temporal mode uploads once.
        var trainingPasses = manifest.Mode == TrainingMode.Temporal ? 1 : Math.Max(ledger.TrainingPasses + 1, epoch + 1);
        var next = kind switch
        {
            ReleaseKind.Training => ledger with { TrainingPasses = trainingPasses },
            ReleaseKind.Validation => ledger with { ValidationPasses = ledger.ValidationPasses + 1 },
            _ => ledger with { EvaluationPasses = ledger.EvaluationPasses + 1 },
        };
        var sigma = NoiseMultiplier(manifest);
        next = next with { NoiseMultiplier = sigma, Delta = delta, Epsilon = Epsilon(sigma, next.Releases, delta) };
        if (maxEpsilon is { } max && !(next.Epsilon <= max))
        {
            throw new AgentException(ExitCode.PrivacyBudget, string.Create(CultureInfo.InvariantCulture,
                $"privacy budget: the next {kind.ToString().ToLowerInvariant()} pass would bring epsilon to {Describe(next.Epsilon)} at delta {delta:G3} "
                    + $"({next.Releases} releases per sample), above privacy.maxEpsilon {max}; nothing more was sent. Raise the budget in the configuration "
                    + $"only if the hospital accepts it."));
        }
        return next;
    }

    /// <summary>
    /// Refuses, before anything is sent, a run that cannot keep within privacy.maxEpsilon: one without a guarantee, or one whose
    /// planned training passes alone (the manifest's epochs; temporal: one upload) would exceed it.
    /// </summary>
    public static string? PlanViolation(RunManifest manifest, double? maxEpsilon, double delta)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (maxEpsilon is not { } max) return null;
        var sigma = NoiseMultiplier(manifest);
        if (sigma is null)
        {
            return "privacy.maxEpsilon is set, but the run states no guarantee (privacy.clipNorm 0 or privacy.noiseSigma 0): ask the operator for "
                + "clipped noise";
        }
        var passes = manifest.Mode == TrainingMode.Temporal ? 1 : manifest.Epochs;
        var epsilon = RdpAccountant.GaussianEpsilon(sigma.Value, passes, delta);
        return epsilon > max
            ? string.Create(CultureInfo.InvariantCulture, $"the run's {passes} training pass(es) at noise multiplier {sigma} would spend epsilon {epsilon:F2} "
                + $"at delta {delta:G3}, above privacy.maxEpsilon {max}")
            : null;
    }

    /// <summary>Epsilon as a person reads it.</summary>
    public static string Describe(double? epsilon) =>
        epsilon is { } e ? e.ToString("F2", CultureInfo.InvariantCulture) : "unbounded (no guarantee: the run does not clip, or adds no noise)";
}
