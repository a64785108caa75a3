using System.Globalization;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>Friedewald's estimate scored on the test rows: all of them, those with TG below 400 mg/dL, and those at or above it.</summary>
public sealed record FriedewaldBaseline(LipidColumns Columns, TestScores All, TestScores? TgBelow400, int RowsTgBelow400, TestScores? TgFrom400,
    int RowsTgFrom400, float[] Predictions);

/// <summary>
/// The data of a study in every form the arms need: each hospital's training set (standardised with its own statistics
/// for tabular data), pooled validation/test sets for the centralised and federated arms, each hospital's view of
/// validation/test, and the hospital files the agents of the split-learning arms read.
/// </summary>
public sealed class StudyMaterial
{
    private readonly ImageStudy? images;
    private readonly TabularStudy? tabular;
    private readonly Standardizer[] hospitalStatistics = [];
    private readonly Standardizer? pooledStatistics;

    private StudyMaterial(ModelDefinition model, ImageStudy study)
    {
        Model = model;
        images = study;
        var count = study.Split.Hospitals.Count;
        imageStatistics = [.. Enumerable.Range(0, count).Select(h => ChannelStatistics.Compute(study.Hospital(h)))];
        var pooled = ChannelStatistics.Compute(study.Pooled.Subset(study.Split.Training));
        Hospitals = [.. Enumerable.Range(0, count).Select(h => ImageStudy.ToTrainingSet(study.Hospital(h), imageStatistics[h]))];
        PooledHospitals = [.. Enumerable.Range(0, count).Select(h => ImageStudy.ToTrainingSet(study.Hospital(h), pooled))];
        Validation = ImageStudy.ToTrainingSet(study.Validation, pooled);
        Test = ImageStudy.ToTrainingSet(study.Test, pooled);
        RawTestTargets = Test.Targets;
    }

    private readonly ChannelStatistics[] imageStatistics = [];

    private StudyMaterial(ModelDefinition model, TabularStudy study)
    {
        Model = model;
        tabular = study;
        var pooledTraining = study.Rows.Subset(study.Split.Training);
        // The operator fixes the target scale in the run manifest (every agent applies it); in this simulation
        // it is the pooled training mean, so scaled targets sit around 1.
        Scaling = new TargetScaling(0, Math.Round(pooledTraining.Targets.Average(t => (double)t)));
        pooledStatistics = Standardizer.Fit(pooledTraining);
        hospitalStatistics = [.. Enumerable.Range(0, study.Split.Hospitals.Count).Select(h => Standardizer.Fit(study.Hospital(h)))];
        Hospitals = [.. Enumerable.Range(0, hospitalStatistics.Length)
            .Select(h => TabularStudy.ToTrainingSet(study.Hospital(h), hospitalStatistics[h], Scaling))];
        PooledHospitals = [.. Enumerable.Range(0, hospitalStatistics.Length)
            .Select(h => TabularStudy.ToTrainingSet(study.Hospital(h), pooledStatistics, Scaling))];
        Validation = TabularStudy.ToTrainingSet(study.ValidationRows, pooledStatistics, Scaling);
        Test = TabularStudy.ToTrainingSet(study.TestRows, pooledStatistics, Scaling);
        RawTestTargets = study.TestRows.Targets;
    }

    public ModelDefinition Model { get; }

    public IReadOnlyList<string> HospitalIds { get; } = ["hospital-a", "hospital-b", "hospital-c"];

    /// <summary>Each hospital's training set as that hospital prepares it.</summary>
    public IReadOnlyList<TrainingSet> Hospitals { get; }

    /// <summary>The hospitals' training sets prepared with pooled statistics (centralised training).</summary>
    public IReadOnlyList<TrainingSet> PooledHospitals { get; }

    public TrainingSet Validation { get; }

    public TrainingSet Test { get; }

    public float[] RawTestTargets { get; }

    public TargetScaling Scaling { get; } = TargetScaling.Identity;

    public bool IsTabular => tabular is not null;

    /// <summary>The split column of the manifest a study writes from official split lists.</summary>
    public const string ManifestSplitColumn = "split";

    public static StudyMaterial Load(StudyOptions options, ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        if (options.Mapping is { } mapping)
        {
            var study = TabularStudy.Load(options.Data, mapping, options.Hospitals, options.Seed);
            if (study.Rows.Count == 0) throw new DataFormatException(options.Data, $"no usable rows: every row was dropped ({study.Validation}). Check the "
                + $"units (mg/dL) and the ranges (--range).");
            return new StudyMaterial(model, study);
        }
        var images = options.Data == "synthetic"
            ? ImageStudy.Synthetic(options.MaxSamples ?? 3000, (int)model.InputShape[1], (int)model.InputShape[2], options.Hospitals, options.Seed)
            : options.ImageManifest is { } manifest
                ? ImageStudy.LoadManifest(manifest, ManifestSplitColumn, options.Classes, (int)model.InputShape[1], (int)model.InputShape[2],
                    options.Hospitals, options.Seed)
            : options.KeepSplits
                ? ImageStudy.LoadPredefined(options.Data, (int)model.InputShape[1], (int)model.InputShape[2], options.Hospitals, options.Seed)
                : ImageStudy.Load(options.Data, (int)model.InputShape[1], (int)model.InputShape[2], options.Hospitals, options.Seed, options.MaxSamples,
                    options.Classes);
        return new StudyMaterial(model, images);
    }

    public double Share(int hospital) => Hospitals[hospital].Count / (double)Hospitals.Sum(h => h.Count);

    /// <summary>Validation as hospital <paramref name="hospital"/> sees it (its own feature statistics).</summary>
    public TrainingSet HospitalValidation(int hospital) => tabular is null
        ? ImageStudy.ToTrainingSet(images!.Validation, imageStatistics[hospital])
        : TabularStudy.ToTrainingSet(tabular.ValidationRows, hospitalStatistics[hospital], Scaling);

    public TrainingSet HospitalTest(int hospital) => tabular is null
        ? ImageStudy.ToTrainingSet(images!.Test, imageStatistics[hospital])
        : TabularStudy.ToTrainingSet(tabular.TestRows, hospitalStatistics[hospital], Scaling);

    /// <summary>Scores wire-scale predictions on the test split, on the original scale.</summary>
    public TestScores ScoreTest(float[] predictions)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        // As the agent does: back to the target's units, negative values clipped at 0 (log(1 + y) needs y > -1).
        var original = Model.Task == TaskKind.Regression ? Array.ConvertAll(predictions, p => Math.Max(0f, Scaling.FromWire(p))) : predictions;
        return TestScores.Of(Model.Task, original, RawTestTargets);
    }

    /// <summary>Writes hospital <paramref name="hospital"/>'s local data file (what its agent reads) and returns its path.</summary>
    public string WriteHospitalFile(int hospital, string folder)
    {
        if (images is not null) return images.WriteHospitalArchive(hospital, Path.Combine(folder, "data.npz"));
        var study = tabular!;
        TabularStudy.WriteCsv(study.Hospital(hospital), Path.Combine(folder, "train.csv"));
        TabularStudy.WriteCsv(study.ValidationRows, Path.Combine(folder, "validation.csv"));
        TabularStudy.WriteCsv(study.TestRows, Path.Combine(folder, "test.csv"));
        return Path.Combine(folder, "train.csv");
    }

    /// <summary>
    /// Friedewald's LDL = TC - HDL - TG/5 on the test rows, whenever the mapping has total cholesterol, HDL and
    /// triglyceride columns (named with --lipids or found by their usual names); rows with TG >= 400 are scored apart.
    /// </summary>
    public FriedewaldBaseline? FriedewaldBaseline()
    {
        if (tabular?.Mapping.LipidColumns is not { } lipids) return null;
        var test = tabular.TestRows;
        var tc = test.Column(lipids.TotalCholesterol);
        var hdl = test.Column(lipids.Hdl);
        var tg = test.Column(lipids.Triglycerides);
        var predicted = Friedewald.Ldl(tc, hdl, tg);
        // MSLE needs predictions above -1 mg/dL; Friedewald can go negative, clamp at 1 as labs report it.
        var clamped = Array.ConvertAll(predicted, p => Math.Max(1f, p));
        var applicable = Enumerable.Range(0, test.Count).Where(i => Friedewald.IsApplicable(tg[i])).ToArray();
        var high = Enumerable.Range(0, test.Count).Where(i => !Friedewald.IsApplicable(tg[i])).ToArray();
        TestScores? Score(int[] rows) => rows.Length == 0 ? null
            : new TestScores(null, RegressionMetrics.Score(rows.Select(i => test.Targets[i]).ToArray(), rows.Select(i => clamped[i]).ToArray()));
        var all = new TestScores(null, RegressionMetrics.Score(test.Targets, clamped));
        return new FriedewaldBaseline(lipids, all, Score(applicable), applicable.Length, Score(high), high.Length, clamped);
    }

    public string Describe()
    {
        var shares = string.Join(" / ", Hospitals.Select((h, i) => $"{HospitalIds[i]} {h.Count}"));
        var text = $"split: validation {Validation.Count}, test {Test.Count}, hospitals {shares}";
        if (tabular?.Validation is { } report) text += $"\nrows: {report.TotalRows} read, {report.DroppedRows} dropped ({report})";
        if (IsTabular) text += string.Create(CultureInfo.InvariantCulture, $"\ntarget scaling on the wire: (y - {Scaling.Offset}) / {Scaling.Scale}");
        return text;
    }
}
