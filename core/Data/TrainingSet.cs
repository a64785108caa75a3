using SplitFunctions.Core.Baselines;

namespace SplitFunctions.Core.Data;

/// <summary>
/// Samples ready for the engine: features row-major (N x prod(SampleShape)), one target per sample
/// (label 0/1 for classification, value for regression).
/// </summary>
public sealed class TrainingSet
{
    public TrainingSet(float[] features, float[] targets, long[] sampleShape, int targetWidth = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetWidth);
        TargetWidth = targetWidth;
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(sampleShape);
        SampleSize = checked((int)sampleShape.Aggregate(1L, (a, b) => a * b));
        if (targets.Length % targetWidth != 0) throw new ArgumentException($"{targets.Length} targets are not {targetWidth} per sample");
        var count = targets.Length / targetWidth;
        if (SampleSize <= 0 || features.Length != count * (long)SampleSize)
        {
            throw new ArgumentException($"features hold {features.Length} values, but {count} samples of shape [{string.Join(",", sampleShape)}] "
                + $"need {count * (long)SampleSize}");
        }
        materialised = features;
        Targets = targets;
        SampleShape = sampleShape;
    }

    /// <summary>
    /// Samples read on demand from <paramref name="source"/> (images decoded when a batch needs them, behind a bounded
    /// cache): the set is never held in memory unless <see cref="Features"/> is asked for.
    /// </summary>
    public TrainingSet(ISampleSource source, float[] targets, long[] sampleShape, int targetWidth = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetWidth);
        TargetWidth = targetWidth;
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(sampleShape);
        SampleSize = checked((int)sampleShape.Aggregate(1L, (a, b) => a * b));
        if ((long)source.Count * targetWidth != targets.Length || source.SampleSize != SampleSize)
        {
            throw new ArgumentException($"the source holds {source.Count} samples of {source.SampleSize} values; expected {targets.Length / targetWidth} of "
                + $"{SampleSize}");
        }
        this.source = source;
        Targets = targets;
        SampleShape = sampleShape;
    }

    private readonly ISampleSource? source;
    private float[]? materialised;

    /// <summary>All samples, row-major; a set read on demand reads them all once here (the in-process baselines and studies need them whole).</summary>
    public float[] Features => materialised ??= Materialise();

    /// <summary>True when samples are read on demand rather than held.</summary>
    public bool IsOnDemand => source is not null && materialised is null;

    public float[] Targets { get; }

    public long[] SampleShape { get; }

    public int SampleSize { get; }

    public int Count => Targets.Length / TargetWidth;

    /// <summary>Targets per sample: K labels for multi-label, else 1 (class index, 0/1 or value).</summary>
    public int TargetWidth { get; }

    /// <summary>Shape of a batch of <paramref name="size"/> samples: [size, ..SampleShape].</summary>
    public long[] BatchShape(int size) => [size, .. SampleShape];

    /// <summary>Copies the samples at <paramref name="indices"/> into <paramref name="features"/> and <paramref name="targets"/>.</summary>
    public void Gather(ReadOnlySpan<int> indices, Span<float> features, Span<float> targets)
    {
        for (var i = 0; i < indices.Length; i++)
        {
            var destination = features.Slice(i * SampleSize, SampleSize);
            if (materialised is null) source!.Read(indices[i], destination);
            else materialised.AsSpan(indices[i] * SampleSize, SampleSize).CopyTo(destination);
            Targets.AsSpan(indices[i] * TargetWidth, TargetWidth).CopyTo(targets.Slice(i * TargetWidth, TargetWidth));
        }
    }

    private float[] Materialise()
    {
        var all = new float[(long)Count * SampleSize];
        for (var i = 0; i < Count; i++) source!.Read(i, all.AsSpan(i * SampleSize, SampleSize));
        return all;
    }

    /// <summary>A new set holding the samples at <paramref name="indices"/>, in that order.</summary>
    public TrainingSet Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (materialised is null)
        {
            var rows = indices.ToArray();
            return new TrainingSet(new SampleSubset(source!, rows), [.. rows.SelectMany(i => Targets.AsSpan(i * TargetWidth, TargetWidth).ToArray())],
                SampleShape, TargetWidth);
        }
        var features = new float[indices.Count * SampleSize];
        var targets = new float[indices.Count * TargetWidth];
        Gather(indices is int[] a ? a : [.. indices], features, targets);
        return new TrainingSet(features, targets, SampleShape, TargetWidth);
    }

    /// <summary>The sets one after another (the union of hospitals' data, for centralised training).</summary>
    public static TrainingSet Concat(IReadOnlyList<TrainingSet> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0) throw new ArgumentException("nothing to concatenate", nameof(sets));
        var shape = sets[0].SampleShape;
        if (sets.Any(s => !s.SampleShape.SequenceEqual(shape))) throw new ArgumentException("sample shapes differ", nameof(sets));
        if (sets.Any(s => s.TargetWidth != sets[0].TargetWidth)) throw new ArgumentException("target widths differ", nameof(sets));
        return new TrainingSet([.. sets.SelectMany(s => s.Features)], [.. sets.SelectMany(s => s.Targets)], shape, sets[0].TargetWidth);
    }
}

/// <summary>Samples read one at a time (e.g. images decoded from files on demand).</summary>
public interface ISampleSource
{
    int Count { get; }

    /// <summary>Values per sample.</summary>
    int SampleSize { get; }

    /// <summary>Writes sample <paramref name="index"/> into <paramref name="destination"/> (<see cref="SampleSize"/> values).</summary>
    void Read(int index, Span<float> destination);
}

/// <summary>Some rows of another source, in a given order.</summary>
internal sealed class SampleSubset(ISampleSource inner, int[] rows) : ISampleSource
{
    public int Count => rows.Length;

    public int SampleSize => inner.SampleSize;

    public void Read(int index, Span<float> destination) => inner.Read(rows[index], destination);
}
