using System.Globalization;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// The least protection a hospital accepts, pinned in its own agent configuration (<c>privacy.floor</c>): the operator's
/// manifest sets mode, cut, noise, NoPeek, attacker-aware training and the label defence, and a manifest below the floor is refused before
/// anything is sent. <see cref="Recommended"/> is what `splitfn-agent init` writes; <see cref="Open"/> accepts any
/// manifest (studies that measure undefended runs on purpose). docs/privacy.md, "The hospital's floor".
/// </summary>
public sealed record PrivacyFloor
{
    /// <summary>Modes this hospital takes part in (vanilla sends the labels to the server; U-shaped and temporal keep them or send them once).</summary>
    public IReadOnlyList<TrainingMode> Modes { get; init; } = [TrainingMode.Vanilla, TrainingMode.UShaped, TrainingMode.Temporal];

    /// <summary>Fewest layers with weights (convolutions, linear layers) before the cut: one layer is inverted almost completely (REFERENCES.md).</summary>
    public int MinClientLayers { get; init; } = 2;

    /// <summary>Smallest noise multiplier; above 0 it also requires privacy.clipNorm (noise relative to a bounded norm, a guarantee).</summary>
    public double MinNoiseMultiplier { get; init; }

    /// <summary>Smallest NoPeek weight.</summary>
    public double MinNoPeekAlpha { get; init; }

    /// <summary>Smallest attacker-aware training weight (privacy.attackerAwareWeight).</summary>
    public double MinAttackerAwareWeight { get; init; }

    /// <summary>U-shaped runs must apply a label defence to the gradients they send (uShaped.defence).</summary>
    public bool RequireLabelDefence { get; init; }

    /// <summary>Smallest Marvell power budget U-shaped runs must apply (uShaped.defence.marvellPower; 0: not required).</summary>
    public double MinMarvellPower { get; init; }

    /// <summary>The floor `init` writes: every mode, at least two client layers, the gradient bound on (privacy.gradients).</summary>
    public static PrivacyFloor Recommended { get; } = new();

    /// <summary>Accepts any manifest.</summary>
    public static PrivacyFloor Open { get; } = new() { MinClientLayers = 0 };

    /// <summary>Layers with weights in the client part (the head in U-shaped runs); a residual block counts its two convolutions in series.</summary>
    public static int ClientDepth(RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return manifest.Layers.Client.Sum(l => l switch
        {
            Conv2d or Linear => 1,
            BasicBlock => 2,
            _ => 0,
        });
    }

    /// <summary>The first setting of <paramref name="manifest"/> below this floor, as one line naming it; null when the manifest meets it.</summary>
    public string? Violation(RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var p = manifest.Privacy;
        string N(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
        if (Modes is { } modes && !modes.Contains(manifest.Mode))
            return $"mode {manifest.Mode} is not among privacy.floor.modes ({string.Join(", ", modes)})";
        var depth = ClientDepth(manifest);
        if (depth < MinClientLayers)
            return $"the cut leaves {depth} client layer(s) with weights at the hospital, below privacy.floor.minClientLayers {MinClientLayers}";
        if (MinNoiseMultiplier > 0 && p.ClipNorm <= 0)
            return $"privacy.clipNorm is 0 (no clipping, so the noise states no guarantee), but privacy.floor.minNoiseMultiplier is {N(MinNoiseMultiplier)}";
        if (p.NoiseSigma < MinNoiseMultiplier)
            return $"privacy.noiseSigma {N(p.NoiseSigma)} is below privacy.floor.minNoiseMultiplier {N(MinNoiseMultiplier)}";
        if (p.NoPeekAlpha < MinNoPeekAlpha)
            return $"privacy.noPeekAlpha {N(p.NoPeekAlpha)} is below privacy.floor.minNoPeekAlpha {N(MinNoPeekAlpha)}";
        if (p.AttackerAwareWeight < MinAttackerAwareWeight)
            return $"privacy.attackerAwareWeight {N(p.AttackerAwareWeight)} is below privacy.floor.minAttackerAwareWeight {N(MinAttackerAwareWeight)}";
        if (RequireLabelDefence && manifest.Mode == TrainingMode.UShaped && manifest.UShaped.Defence.IsOff)
            return "uShaped.defence is off, but privacy.floor.requireLabelDefence is true";
        if (manifest.Mode == TrainingMode.UShaped && manifest.UShaped.Defence.MarvellPower < MinMarvellPower)
        {
            return $"uShaped.defence.marvellPower {N(manifest.UShaped.Defence.MarvellPower)} is below privacy.floor.minMarvellPower {N(MinMarvellPower)}";
        }
        return null;
    }

    /// <summary>Checks the floor's own values; returns the problem as one line, or null.</summary>
    public string? Problem()
    {
        if (Modes is null || Modes.Count == 0) return "privacy.floor.modes is empty: list the modes this hospital accepts (Vanilla, UShaped, Temporal)";
        if (MinClientLayers < 0) return "privacy.floor.minClientLayers must be >= 0";
        if (!double.IsFinite(MinNoiseMultiplier) || MinNoiseMultiplier < 0) return "privacy.floor.minNoiseMultiplier must be a finite number >= 0";
        if (!double.IsFinite(MinNoPeekAlpha) || MinNoPeekAlpha < 0) return "privacy.floor.minNoPeekAlpha must be a finite number >= 0";
        if (!double.IsFinite(MinMarvellPower) || MinMarvellPower < 0) return "privacy.floor.minMarvellPower must be a finite number >= 0";
        if (!double.IsFinite(MinAttackerAwareWeight) || MinAttackerAwareWeight < 0) return "privacy.floor.minAttackerAwareWeight must be a finite number >= 0";
        return null;
    }
}
