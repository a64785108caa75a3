using System.CommandLine;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Core.CommandLine;

/// <summary>
/// The run's privacy settings as command-line options, declared once for every tool that creates runs
/// (`splitfn-operator run create`, `splitfn-local demo` and `experiments`): one help text, one default, one check.
/// </summary>
public sealed class PrivacyOptions
{
    public PrivacyOptions(double defaultNoiseSigma = 0, double defaultClipNorm = 0, double defaultAttackerAwareWeight = 0)
    {
        NoiseSigma = new Option<double>("--noise-sigma")
        {
            Description = "Privacy: Gaussian noise the hospitals add to their activations (from their CSPRNG): its standard deviation, or "
                + "with --clip-norm C the noise multiplier (noise sigma x C). 0: off.",
            DefaultValueFactory = _ => defaultNoiseSigma
        };
        ClipNorm = new Option<double>("--clip-norm")
        {
            Description = "Privacy: clip each sample's activations to this L2 norm C before the noise, which is then sigma x C: a Gaussian mechanism "
                + "each hospital can state epsilon for (0: no clipping, absolute noise, no guarantee; docs/privacy.md).",
            DefaultValueFactory = _ => defaultClipNorm
        };
        NoPeekAlpha = new Option<double>("--nopeek-alpha")
        {
            Description = "Privacy: NoPeek weight, the hospitals also minimise alpha * DCor(input, activations) (vanilla; 0: off).",
            DefaultValueFactory = _ => 0
        };
        AttackerAwareWeight = new Option<double>("--attacker-aware-weight")
        {
            Description = "Privacy: attacker-aware training (ResSFL), each hospital trains a simulated inversion decoder on what it releases and its "
                + "client layer maximises that decoder's error times this weight (vanilla; hospital-side only; 0: off).",
            DefaultValueFactory = _ => defaultAttackerAwareWeight
        };
        UShapedMaxNorm = new Option<bool>("--ushaped-max-norm")
        {
            Description = "U-shaped: hospitals scale every output gradient to the batch's largest norm (defends the norm label attack)."
        };
        UShapedDirectionNoise = new Option<double>("--ushaped-direction-noise", "--ushaped-defence-direction-noise")
        {
            Description = "U-shaped: noise along the class-separating direction of the output gradients, as a multiple of the largest norm "
                + "(direction attack, cheaper than --ushaped-noise; implies --ushaped-max-norm).",
            DefaultValueFactory = _ => 0
        };
        UShapedNoise = new Option<double>("--ushaped-noise", "--ushaped-defence-noise")
        {
            Description = "U-shaped: Gaussian noise on output gradients, as a multiple of the largest norm (direction attack; costs accuracy; "
                + "implies --ushaped-max-norm).",
            DefaultValueFactory = _ => 0
        };
        UShapedMarvell = new Option<double>("--ushaped-marvell")
        {
            Description = "U-shaped: Marvell (Li et al., ICLR 2022), per-class Gaussian noise on the output gradients that minimises the label "
                + "leakage bound, power budget as a multiple s of the squared distance between the classes' mean gradients (binary tasks; 0: off).",
            DefaultValueFactory = _ => 0
        };
    }

    public Option<double> NoiseSigma { get; }

    public Option<double> ClipNorm { get; }

    public Option<double> NoPeekAlpha { get; }

    public Option<double> AttackerAwareWeight { get; }

    public Option<bool> UShapedMaxNorm { get; }

    public Option<double> UShapedDirectionNoise { get; }

    public Option<double> UShapedNoise { get; }

    public Option<double> UShapedMarvell { get; }

    /// <summary>The activation defences (noise, clipping, NoPeek, attacker-aware training).</summary>
    public IEnumerable<Option> Activation => [NoiseSigma, ClipNorm, NoPeekAlpha, AttackerAwareWeight];

    /// <summary>The U-shaped label defences.</summary>
    public IEnumerable<Option> UShaped => [UShapedMaxNorm, UShapedDirectionNoise, UShapedNoise, UShapedMarvell];

    /// <summary>Adds the given options (default: all) to <paramref name="command"/>.</summary>
    public void AddTo(Command command, IEnumerable<Option>? options = null)
    {
        foreach (var option in options ?? Activation.Concat(UShaped)) command.Options.Add(option);
    }

    /// <summary>The first setting out of range as one line naming the option, or null when all are usable.</summary>
    public string? Problem(ParseResult result)
    {
        foreach (var option in new[] { NoiseSigma, ClipNorm, NoPeekAlpha, AttackerAwareWeight, UShapedDirectionNoise, UShapedNoise, UShapedMarvell })
        {
            var value = result.GetValue(option);
            if (!double.IsFinite(value) || value < 0) return $"{option.Name} must be a finite number >= 0 (0: off), not {value}";
        }
        return null;
    }

    /// <summary>
    /// The U-shaped gradient defence the options ask for; either noise implies the max-norm top-up it builds on. Marvell
    /// stands alone (its noise along the class difference also varies the norms).
    /// </summary>
    public GradientDefence UShapedDefence(ParseResult result)
    {
        var noise = result.GetValue(UShapedNoise);
        var direction = result.GetValue(UShapedDirectionNoise);
        return new GradientDefence
        {
            MaxNorm = result.GetValue(UShapedMaxNorm) || noise > 0 || direction > 0,
            NoiseMultiplier = noise,
            DirectionNoise = direction,
            MarvellPower = result.GetValue(UShapedMarvell)
        };
    }
}
