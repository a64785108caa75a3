using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// A CSV cut the paper's way (10% validation, 10% test, the rest 7:2:1), after the loader's validation dropped
/// missing and implausible rows (reported). Features are standardised with statistics of the training rows of whoever
/// trains (pooled for centralised, local for a hospital); targets travel scaled by the run's fixed TargetScaling.
/// </summary>
public sealed class TabularStudy
{
    private TabularStudy(string source, TabularDataset rows, DataSplit split, ColumnMapping mapping)
    {
        Source = source;
        Rows = rows;
        Split = split;
        Mapping = mapping;
    }

    public string Source { get; }

    public TabularDataset Rows { get; }

    public DataSplit Split { get; }

    public ColumnMapping Mapping { get; }

    public DataValidationReport? Validation => Rows.Validation;

    public static TabularStudy Load(string path, ColumnMapping mapping, int hospitals, long seed)
    {
        var rows = CsvTabularLoader.Load(path, mapping);
        return new TabularStudy(path, rows, DataSplit.Create(rows.Count, seed, hospitalWeights: ImageStudy.HospitalWeights(hospitals)), mapping);
    }

    public TabularDataset Hospital(int index) => Rows.Subset(Split.Hospitals[index]);

    public TabularDataset ValidationRows => Rows.Subset(Split.Validation);

    public TabularDataset TestRows => Rows.Subset(Split.Test);

    /// <summary>Engine-ready samples: features standardised with <paramref name="statistics"/>, targets scaled for the wire.</summary>
    public static TrainingSet ToTrainingSet(TabularDataset data, Standardizer statistics, TargetScaling scaling)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(statistics);
        ArgumentNullException.ThrowIfNull(scaling);
        var features = statistics.Transform(data).Features;
        var targets = Array.ConvertAll(data.Targets, scaling.ToWire);
        return new TrainingSet(features, targets, [data.FeatureCount]);
    }

    /// <summary>Writes one hospital's rows as its local CSV (mapped columns, categorical values already encoded).</summary>
    public static void WriteCsv(TabularDataset data, string path)
    {
        ArgumentNullException.ThrowIfNull(data);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var writer = new StreamWriter(path);
        writer.WriteLine(string.Join(',', data.FeatureNames.Append(data.TargetName)));
        for (var i = 0; i < data.Count; i++)
        {
            var row = data.Row(i).ToArray().Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteLine(string.Join(',', row.Append(data.Targets[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        }
    }
}
