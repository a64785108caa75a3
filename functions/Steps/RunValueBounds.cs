using System.Globalization;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// The bounds a run derives for what hospitals send, checked before anything reaches the optimizer (issue 31, item 2),
/// beside the absolute <see cref="TrainingFrames.MaxMagnitude"/>:
/// <list type="bullet">
/// <item>With privacy.clipNorm C, every sample of activations is clipped to L2 norm C at the hospital and then gets Gaussian
/// noise sigma x C per value, so a sample's norm stays below C (1 + sigma (sqrt(d) + 10)) (the Gaussian norm passes
/// sqrt(d) + t with probability below exp(-t^2/2), 1e-22 at t = 10), widened by the int8 quantisation's error. A sample
/// beyond it was not released by the agent. The insider cannot move this bound: it comes from the manifest.</item>
/// <item>Otherwise (activations without a clip norm, U-shaped output gradients), a frame's largest magnitude may be at most
/// <see cref="Factor"/> times the median of the last <see cref="Window"/> accepted frames' largest magnitudes (never below
/// <see cref="Floor"/>), once <see cref="Warmup"/> frames were seen. An insider can game it only by being most of the
/// window (a median moves only when more than half the frames move it), and then only by a factor of <see cref="Factor"/>
/// per window of frames; the absolute bound still caps every value, so the model's sums stay far inside fp32.</item>
/// </list>
/// Held in memory with the run (a restarted instance warms up again under the absolute bound).
/// </summary>
public sealed class RunValueBounds(RunManifest manifest, long[] cutShape)
{
    /// <summary>How far above the typical frame a frame's largest value may be.</summary>
    public const double Factor = 100;

    /// <summary>Frames the typical magnitude is the median of.</summary>
    public const int Window = 64;

    /// <summary>Frames seen before the running bound applies.</summary>
    public const int Warmup = 8;

    /// <summary>The running bound never falls below this (all-zero frames would otherwise refuse any change).</summary>
    public const double Floor = 1;

    private readonly RunningScale activations = new();
    private readonly RunningScale gradients = new();

    /// <summary>The largest L2 norm a released sample may have, or null without a clip norm.</summary>
    public double? SampleNormBound { get; } = NormBound(manifest, cutShape);

    /// <summary>
    /// Activations (any frame of the cut's shape): the absolute bound, then the clip norm's or the running one, in one pass
    /// over the values (a frame is several MiB; each pass reads all of it again).
    /// </summary>
    public void RequireActivations(DecodedTensor tensor, string what)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var largest = Scan(tensor, what, SampleNormBound);
        if (SampleNormBound is null) activations.Require(largest, what);
    }

    /// <summary>Output gradients (U-shaped backward legs): the absolute bound, then the running one, in one pass.</summary>
    public void RequireGradient(DecodedTensor tensor, string what)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        gradients.Require(Scan(tensor, what, null), what);
    }

    // Every value within TrainingFrames.MaxMagnitude and, with a bound, every sample's (row's) L2 norm within it; returns the
    // largest magnitude. An absolute violation anywhere is reported before a norm violation, as the separate checks did.
    private double Scan(DecodedTensor tensor, string what, double? normBound)
    {
        var values = tensor.Values;
        // Rows are samples; a tensor whose values do not split into its first dimension (checked against the cut elsewhere)
        // is still scanned whole for the absolute bound.
        var rows = tensor.Shape.Length == 0 || tensor.Shape[0] <= 0 || values.Length % tensor.Shape[0] != 0 ? 1 : (int)tensor.Shape[0];
        var width = values.Length / rows;
        double largest = 0;
        (int Row, double Norm)? overNorm = null;
        for (var r = 0; r < rows; r++)
        {
            double sum = 0;
            var row = values.AsSpan(r * width, width);
            for (var i = 0; i < row.Length; i++)
            {
                var magnitude = Math.Abs(row[i]);
                if (!(magnitude <= TrainingFrames.MaxMagnitude)) throw TrainingFrames.OutOfRange(what, r * width + i, row[i]);
                largest = Math.Max(largest, magnitude);
                sum += (double)row[i] * row[i];
            }
            if (normBound is { } bound && overNorm is null && !(Math.Sqrt(sum) <= bound)) overNorm = (r, Math.Sqrt(sum));
        }
        if (overNorm is { } over)
        {
            throw new ProtocolException(ProtocolRejection.OutOfBounds, string.Create(CultureInfo.InvariantCulture,
                $"{what} sample {over.Row} has L2 norm {over.Norm:G4}, beyond the {normBound:G4} a sample clipped to privacy.clipNorm "
                    + $"{manifest.Privacy.ClipNorm:G4} with its noise can reach: the agent did not release it; nothing was applied"));
        }
        return largest;
    }

    private static double? NormBound(RunManifest manifest, long[] cutShape)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(cutShape);
        var c = manifest.Privacy.ClipNorm;
        if (!(c > 0)) return null;
        var d = cutShape.Aggregate(1.0, (a, b) => a * b);
        var noise = manifest.Privacy.NoiseSigma * (Math.Sqrt(d) + 10);
        // QInt8: each value is off by at most half a step of its slice's range (at most twice its largest magnitude) over 255 steps.
        var quantisation = manifest.FeatureType == ElementType.QInt8 ? 1 + Math.Sqrt(d) / 127 : 1;
        return c * (1 + noise) * quantisation * 1.01 + 1e-6;
    }

    /// <summary>The median of the last frames' largest magnitudes, and the check against it.</summary>
    private sealed class RunningScale
    {
        private readonly Queue<double> recent = new();

        public void Require(double largest, string what)
        {
            lock (recent)
            {
                if (recent.Count >= Warmup)
                {
                    var median = recent.Order().ElementAt(recent.Count / 2);
                    var limit = Math.Max(Floor, Factor * median);
                    if (largest > limit)
                    {
                        throw new ProtocolException(ProtocolRejection.OutOfBounds, string.Create(CultureInfo.InvariantCulture,
                            $"{what} reach {largest:G4}, more than {Factor:G0} times the {median:G4} typical of this run's last {recent.Count} frames: "
                                + $"the model at the hospital diverged or the frame was crafted; nothing was applied"));
                    }
                }
                recent.Enqueue(largest);
                if (recent.Count > Window) recent.Dequeue();
            }
        }
    }
}
