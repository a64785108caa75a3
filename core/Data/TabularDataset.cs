namespace SplitFunctions.Core.Data;

/// <summary>Rows of numeric features (row-major) with one numeric target each, and the report of what was dropped to get them.</summary>
public sealed class TabularDataset
{
    public TabularDataset(float[] features, float[] targets, IReadOnlyList<string> featureNames, string targetName, DataValidationReport? validation = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(featureNames);
        if (featureNames.Count == 0 || features.Length != (long)targets.Length * featureNames.Count)
            throw new ArgumentException($"{features.Length} feature values are not {targets.Length} rows of {featureNames.Count} features", nameof(features));
        Features = features;
        Targets = targets;
        FeatureNames = featureNames;
        TargetName = targetName;
        Validation = validation;
    }

    public float[] Features { get; }
    public float[] Targets { get; }
    public IReadOnlyList<string> FeatureNames { get; }
    public string TargetName { get; }

    /// <summary>What the loader dropped, when this dataset came from a file.</summary>
    public DataValidationReport? Validation { get; }

    public int Count => Targets.Length;
    public int FeatureCount => FeatureNames.Count;

    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);

    /// <summary>The values of one feature column, e.g. for a classical baseline.</summary>
    public float[] Column(string name)
    {
        var c = FeatureNames.ToList().IndexOf(name);
        if (c < 0) throw new ArgumentException($"no feature '{name}'; features: {string.Join(", ", FeatureNames)}", nameof(name));
        var values = new float[Count];
        for (var i = 0; i < Count; i++) values[i] = Features[i * FeatureCount + c];
        return values;
    }

    public TabularDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var features = new float[indices.Count * FeatureCount];
        var targets = new float[indices.Count];
        for (var i = 0; i < indices.Count; i++)
        {
            var j = indices[i];
            if ((uint)j >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {j} is outside 0..{Count - 1}");
            Row(j).CopyTo(features.AsSpan(i * FeatureCount));
            targets[i] = Targets[j];
        }
        return new TabularDataset(features, targets, FeatureNames, TargetName);
    }

    /// <summary>The same rows with other feature values (e.g. standardised).</summary>
    public TabularDataset WithFeatures(float[] features) => new(features, Targets, FeatureNames, TargetName, Validation);
}
