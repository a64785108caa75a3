namespace SplitFunctions.Core.Data;

/// <summary>
/// The paper's protocol: a seeded shuffle, 10% validation and 10% test held out, the rest split across hospitals
/// in given proportions (7:2:1 for three). Index lists refer to rows of the one source dataset.
/// </summary>
public sealed record DataSplit(int[] Validation, int[] Test, IReadOnlyList<int[]> Hospitals)
{
    /// <summary>The paper's hospital proportions.</summary>
    public static IReadOnlyList<double> PaperHospitalWeights { get; } = [7, 2, 1];

    /// <summary>All hospitals' training rows together (centralised training).</summary>
    public int[] Training => [.. Hospitals.SelectMany(h => h)];

    /// <summary>Splits <paramref name="count"/> rows; the same arguments always give the same split.</summary>
    public static DataSplit Create(int count, long seed, double validationFraction = 0.1, double testFraction = 0.1,
        IReadOnlyList<double>? hospitalWeights = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (validationFraction < 0 || testFraction < 0 || validationFraction + testFraction >= 1)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), "validation and test fractions must be non-negative and leave rows for training");
        var weights = hospitalWeights ?? PaperHospitalWeights;
        if (weights.Count == 0 || weights.Any(w => w < 0 || !double.IsFinite(w)) || weights.Sum() <= 0)
            throw new ArgumentException("hospital weights must be non-negative with a positive sum", nameof(hospitalWeights));

        var order = SeededRandom.Permutation(count, seed);
        var validation = (int)Math.Round(count * validationFraction, MidpointRounding.AwayFromZero);
        var test = (int)Math.Round(count * testFraction, MidpointRounding.AwayFromZero);
        var sizes = Apportion(count - validation - test, weights);

        var hospitals = new int[sizes.Length][];
        var start = validation + test;
        for (var h = 0; h < sizes.Length; h++)
        {
            hospitals[h] = order[start..(start + sizes[h])];
            start += sizes[h];
        }
        return new DataSplit(order[..validation], order[validation..(validation + test)], hospitals);
    }

    /// <summary>
    /// The splits an archive already has (MedMNIST's official train/val/test), pooled in the order train, val, test:
    /// rows [0, train) are shuffled with <paramref name="seed"/> and shared across hospitals by weight, the next
    /// <paramref name="validation"/> rows are the validation split and the <paramref name="test"/> after them the test split.
    /// </summary>
    public static DataSplit Predefined(int train, int validation, int test, long seed, IReadOnlyList<double>? hospitalWeights = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(train);
        ArgumentOutOfRangeException.ThrowIfNegative(validation);
        ArgumentOutOfRangeException.ThrowIfNegative(test);
        var weights = hospitalWeights ?? PaperHospitalWeights;
        if (weights.Count == 0 || weights.Any(w => w < 0 || !double.IsFinite(w)) || weights.Sum() <= 0)
            throw new ArgumentException("hospital weights must be non-negative with a positive sum", nameof(hospitalWeights));
        var order = SeededRandom.Permutation(train, seed);
        var sizes = Apportion(train, weights);
        var hospitals = new int[sizes.Length][];
        var start = 0;
        for (var h = 0; h < sizes.Length; h++)
        {
            hospitals[h] = order[start..(start + sizes[h])];
            start += sizes[h];
        }
        return new DataSplit([.. Enumerable.Range(train, validation)], [.. Enumerable.Range(train + validation, test)], hospitals);
    }

    /// <summary>
    /// The rows [offset, offset + fraction) of a seeded shuffle of <paramref name="count"/> rows: one machine simulates
    /// a hospital holding that share of a file; hospitals given the same seed and adjacent offsets never share a row.
    /// </summary>
    public static int[] Partition(int count, double fraction, long seed, double offset = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (fraction is <= 0 or > 1 || offset < 0 || offset + fraction > 1 + 1e-9)
            throw new ArgumentOutOfRangeException(nameof(fraction), $"a partition needs 0 < fraction <= 1 and offset + fraction <= 1 (got fraction "
                + $"{fraction}, offset {offset})");
        var order = SeededRandom.Permutation(count, seed);
        // Rounding both ends (not the length) keeps adjacent partitions exactly adjacent.
        var begin = (int)Math.Round(count * offset, MidpointRounding.AwayFromZero);
        var end = Math.Min(count, (int)Math.Round(count * (offset + fraction), MidpointRounding.AwayFromZero));
        return order[begin..end];
    }

    // Largest-remainder apportionment: sizes follow the weights as closely as whole rows allow and sum exactly.
    private static int[] Apportion(int total, IReadOnlyList<double> weights)
    {
        var sum = weights.Sum();
        var exact = weights.Select(w => total * w / sum).ToArray();
        var sizes = exact.Select(e => (int)Math.Floor(e)).ToArray();
        var left = total - sizes.Sum();
        foreach (var i in Enumerable.Range(0, sizes.Length).OrderByDescending(i => exact[i] - sizes[i]).ThenBy(i => i).Take(left))
            sizes[i]++;
        return sizes;
    }
}
