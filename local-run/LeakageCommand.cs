using System.CommandLine;
using System.Text.Json;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>
/// `splitfn-local leakage`: the label-leakage attacks on a U-shaped PneumoniaMNIST run, without and with the hospital's defence (docs/results.md).
/// </summary>
public static class LeakageCommand
{
    public static Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "PneumoniaMNIST (.npz with <split>_images/_labels).", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Epochs per defence setting; the best on validation is kept.", DefaultValueFactory = _ => 5 };
        var noise = new Option<double[]>("--noise")
        {
            Description = "Noise multipliers to try with max-norm (0 = max-norm "
            + "alone; default 0 1 unless --direction-noise or --marvell is given).",
            DefaultValueFactory = _ => [0.0, 1.0],
            AllowMultipleArgumentsPerToken = true
        };
        var direction = new Option<double[]>("--direction-noise")
        {
            Description = "Direction-noise multipliers to try with max-norm (noise along the "
            + "class-separating direction).",
            DefaultValueFactory = _ => [],
            AllowMultipleArgumentsPerToken = true
        };
        var marvell = new Option<double[]>("--marvell")
        {
            Description = "Marvell power budgets s to try (per-class optimised noise, Li et al. Sec. 4; P = s x squared distance between the "
            + "classes' mean gradients).",
            DefaultValueFactory = _ => [],
            AllowMultipleArgumentsPerToken = true
        };
        var noBaseline = new Option<bool>("--no-baseline") { Description = "Skip the undefended run (when the same seed's baseline is already measured)." };
        var maxSamples = new Option<int?>("--max-samples") { Description = "Use at most this many samples (quick runs)." };
        var seed = new Option<long>("--seed") { Description = "Seed of the split, the initial weights and the batch order.", DefaultValueFactory = _ => 42 };
        var output = new Option<FileInfo?>("--out") { Description = "Also write the results as JSON here." };
        var command = new Command("leakage", "Norm, direction and spectral label-leakage attacks (Li et al., ICLR 2022) on the gradients a U-shaped server "
            + "receives, without and with the hospital's defence.")
        {
            data, epochs, noise, direction, marvell, noBaseline, maxSamples, seed, output,
        };
        command.SetAction((result, ct) =>
        {
            var path = result.GetValue(data)!;
            if (!path.Exists)
            {
                Console.Error.WriteLine($"splitfn-local: data file {path.FullName} does not exist: check --data (exit code {(int)StudyExitCode.Data})");
                return Task.FromResult((int)StudyExitCode.Data);
            }
            List<GradientDefence> defences = result.GetValue(noBaseline) ? [] : [new()];
            // The isotropic-noise defaults run only when no other defence is asked for.
            var others = result.GetValue(direction)!.Length + result.GetValue(marvell)!.Length > 0;
            var noises = result.GetResult(noise) is null or { Implicit: true } && others ? [] : result.GetValue(noise)!;
            defences.AddRange(noises.Select(m => new GradientDefence { MaxNorm = true, NoiseMultiplier = m }));
            defences.AddRange(result.GetValue(direction)!.Select(m => new GradientDefence { MaxNorm = true, DirectionNoise = m }));
            defences.AddRange(result.GetValue(marvell)!.Select(s => new GradientDefence { MarvellPower = s }));
            var results = LabelLeakageStudy.Run(path.FullName, defences, result.GetValue(epochs), result.GetValue(maxSamples), (ulong)result.GetValue(seed),
                Console.WriteLine);
            Console.WriteLine();
            Console.Write(LabelLeakageStudy.ToMarkdown(results));
            if (result.GetValue(output) is { } file) File.WriteAllText(file.FullName, JsonSerializer.Serialize(results, SplitRun.Json));
            return Task.FromResult(0);
        });
        return command;
    }
}
