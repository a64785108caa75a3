using SplitFunctions.Core.Baselines;

namespace SplitFunctions.Core.Data;

/// <summary>
/// Samples ready for the engine: features row-major (N x prod(SampleShape)), one target per sample
/// (label 0/1 for classification, value for regression).
/// </summary>
public sealed class TrainingSet
{
    public TrainingSet(float[] features, float[] targets, long[] sampleShape)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(sampleShape);
        SampleSize = checked((int)sampleShape.Aggregate(1L, (a, b) => a * b));
        if (SampleSize <= 0 || features.Length != targets.Length * (long)SampleSize)
        {
            throw new ArgumentException($"features hold {features.Length} values, but {targets.Length} samples of shape [{string.Join(",", sampleShape)}] "
                + $"need {targets.Length * (long)SampleSize}");
        }
        Features = features;
        Targets = targets;
        SampleShape = sampleShape;
    }

    public float[] Features { get; }

    public float[] Targets { get; }

    public long[] SampleShape { get; }

    public int SampleSize { get; }

    public int Count => Targets.Length;

    /// <summary>Shape of a batch of <paramref name="size"/> samples: [size, ..SampleShape].</summary>
    public long[] BatchShape(int size) => [size, .. SampleShape];

    /// <summary>Copies the samples at <paramref name="indices"/> into <paramref name="features"/> and <paramref name="targets"/>.</summary>
    public void Gather(ReadOnlySpan<int> indices, Span<float> features, Span<float> targets)
    {
        for (var i = 0; i < indices.Length; i++)
        {
            Features.AsSpan(indices[i] * SampleSize, SampleSize).CopyTo(features.Slice(i * SampleSize, SampleSize));
            targets[i] = Targets[indices[i]];
        }
    }

    /// <summary>A new set holding the samples at <paramref name="indices"/>, in that order.</summary>
    public TrainingSet Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var features = new float[indices.Count * SampleSize];
        var targets = new float[indices.Count];
        Gather(indices is int[] a ? a : [.. indices], features, targets);
        return new TrainingSet(features, targets, SampleShape);
    }

    /// <summary>The sets one after another (the union of hospitals' data, for centralised training).</summary>
    public static TrainingSet Concat(IReadOnlyList<TrainingSet> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0) throw new ArgumentException("nothing to concatenate", nameof(sets));
        var shape = sets[0].SampleShape;
        if (sets.Any(s => !s.SampleShape.SequenceEqual(shape))) throw new ArgumentException("sample shapes differ", nameof(sets));
        return new TrainingSet([.. sets.SelectMany(s => s.Features)], [.. sets.SelectMany(s => s.Targets)], shape);
    }
}
