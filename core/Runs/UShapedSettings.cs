using SplitFunctions.Core.Consortium;

namespace SplitFunctions.Core.Runs;

/// <summary>
/// U-shaped mode (<see cref="TrainingMode.UShaped"/>): how long the server keeps a forward leg open for its backward
/// leg, and the defence the hospital applies to dL/d(server output) before it leaves (Li et al., ICLR 2022).
/// </summary>
public sealed record UShapedSettings
{
    /// <summary>A backward leg arriving later than this after its forward leg is rejected as expired (the hospital redoes the batch).</summary>
    public int SecondLegTimeoutSeconds { get; init; } = 600;

    /// <summary>The hospital's perturbation of the output gradients the server sees.</summary>
    public GradientDefence Defence { get; init; } = new();

    /// <summary>Throws <see cref="RunManifestException"/> naming the field.</summary>
    public void Validate()
    {
        if (SecondLegTimeoutSeconds is < 1 or > 86400) throw new RunManifestException($"uShaped.secondLegTimeoutSeconds {SecondLegTimeoutSeconds} is out of "
            + $"range 1..86400");
        if (Defence is null) throw new RunManifestException("uShaped.defence is null: leave it out for no defence");
        if (!double.IsFinite(Defence.NoiseMultiplier) || Defence.NoiseMultiplier < 0) throw new RunManifestException("uShaped.defence.noiseMultiplier must be "
            + "a finite number >= 0");
        if (!double.IsFinite(Defence.DirectionNoise) || Defence.DirectionNoise < 0) throw new RunManifestException("uShaped.defence.directionNoise must be a "
            + "finite number >= 0");
        if (!double.IsFinite(Defence.MarvellPower) || Defence.MarvellPower < 0) throw new RunManifestException("uShaped.defence.marvellPower must be a "
            + "finite number >= 0 (0: off)");
    }
}

/// <summary>
/// Perturbation of each sample's dL/d(server output) at the hospital, noise from a CSPRNG (never from values the server
/// holds): <see cref="MaxNorm"/> tops every sample's gradient up with Gaussian noise to the batch's largest norm (Li et
/// al.'s max-norm, against the norm attack); <see cref="NoiseMultiplier"/> adds isotropic Gaussian noise of total norm
/// about multiplier x that largest norm (against the direction attack); <see cref="DirectionNoise"/> adds one-dimensional
/// Gaussian noise along the direction that separates the classes (a simplified Marvell, Li et al.), which hides the
/// direction at a fraction of the isotropic noise's cost.
/// </summary>
public sealed record GradientDefence
{
    public bool MaxNorm { get; init; }

    public double NoiseMultiplier { get; init; }

    /// <summary>Standard deviation of the noise along the class-separating direction, as a multiple of the batch's largest norm.</summary>
    public double DirectionNoise { get; init; }

    /// <summary>
    /// Marvell's noise power budget P per batch as a multiple of ||mean positive gradient - mean negative gradient||^2
    /// (the paper's s; it measured 0.1 to 4). 0: off. Binary tasks only (the manifest refuses it for other losses).
    /// </summary>
    public double MarvellPower { get; init; }

    /// <summary>Whether the gradients leave unchanged.</summary>
    public bool IsOff => !MaxNorm && NoiseMultiplier == 0 && DirectionNoise == 0 && MarvellPower == 0;
}
