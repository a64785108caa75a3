using System.CommandLine;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Models;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>`splitfn-local experiments`: the paper's comparisons for one dataset in one run.</summary>
public static class ExperimentsCommand
{
    public static readonly string[] AllArms = ["vanilla", "temporal", "single", "centralised", "federated"];

    public static Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "An image archive (.npz with <split>_images/_labels) or a CSV file.", Required = true };
        var name = new Option<string?>("--name") { Description = "Study name: results go to artifacts/experiments/<name>/ (default: the data file's name)." };
        var model = new Option<string?>("--model") { Description = $"Catalog model ({string.Join(", ", ModelCatalog.Names)}); default pneumonia-cnn for images, ldl-mlp for CSV." };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs (rounds for federated averaging); the best epoch on validation is kept. Default: the catalog's." };
        var batch = new Option<int?>("--batch-size") { Description = "Batch size. Default: the catalog's." };
        var lr = new Option<double?>("--lr") { Description = "Learning rate (Adam). Default: the catalog's." };
        var seed = new Option<long>("--seed") { Description = "Seed of the split, the initial weights and the batch order.", DefaultValueFactory = _ => 42 };
        var arms = new Option<string[]>("--arms") { Description = $"Arms to run: {string.Join(", ", AllArms)}.", DefaultValueFactory = _ => AllArms, AllowMultipleArgumentsPerToken = true };
        var maxSamples = new Option<int?>("--max-samples") { Description = "Use at most this many samples (quick runs)." };
        var features = new Option<string[]>("--features") { Description = "CSV: feature columns (default: the NHIS lipids columns).", AllowMultipleArgumentsPerToken = true };
        var target = new Option<string?>("--target") { Description = "CSV: target column (default LDL_chole)." };
        var categorical = new Option<string[]>("--categorical") { Description = "CSV: categorical encodings, e.g. sex=1:0,2:1 (value:code pairs).", AllowMultipleArgumentsPerToken = true };

        var command = new Command("experiments", "Reproduce the paper's comparisons on one dataset: split learning (vanilla, temporal) against each hospital alone, centralised training and federated averaging.")
        {
            data, name, model, epochs, batch, lr, seed, arms, maxSamples, features, target, categorical,
        };
        command.SetAction(async (result, ct) =>
        {
            var path = result.GetValue(data)!;
            if (!path.Exists)
            {
                await Console.Error.WriteLineAsync($"data file '{path.FullName}' does not exist").ConfigureAwait(false);
                return 2;
            }
            var isCsv = path.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase);
            var definition = ModelCatalog.Get(result.GetValue(model) ?? (isCsv ? "ldl-mlp" : "pneumonia-cnn"));
            var chosenArms = result.GetValue(arms)!;
            var unknown = chosenArms.Except(AllArms, StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
            {
                await Console.Error.WriteLineAsync($"unknown arm(s) {string.Join(", ", unknown)}: choose from {string.Join(", ", AllArms)}").ConfigureAwait(false);
                return 2;
            }
            var options = new StudyOptions
            {
                Name = result.GetValue(name) ?? Path.GetFileNameWithoutExtension(path.Name),
                Data = path.FullName,
                Model = definition.Name,
                Epochs = result.GetValue(epochs) ?? definition.Epochs,
                BatchSize = result.GetValue(batch) ?? definition.BatchSize,
                LearningRate = result.GetValue(lr) ?? definition.Optimizer.LearningRate,
                Seed = result.GetValue(seed),
                Hospitals = 3,
                Arms = chosenArms,
                MaxSamples = result.GetValue(maxSamples),
                Mapping = isCsv ? Mapping(result.GetValue(features), result.GetValue(target), result.GetValue(categorical)) : null,
            };
            return await Study.RunAsync(options, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static ColumnMapping Mapping(string[]? features, string? target, string[]? categorical)
    {
        if ((features is null || features.Length == 0) && target is null && (categorical is null || categorical.Length == 0)) return ColumnMapping.NhisLipids;
        var codes = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        foreach (var spec in categorical ?? [])
        {
            var (column, pairs) = (spec[..spec.IndexOf('=', StringComparison.Ordinal)], spec[(spec.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            codes[column] = pairs.Split(',').Select(p => p.Split(':')).ToDictionary(p => p[0], p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);
        }
        return new ColumnMapping(features is { Length: > 0 } ? features : ColumnMapping.NhisLipids.Features, target ?? ColumnMapping.NhisLipids.Target) { Categorical = codes };
    }
}
