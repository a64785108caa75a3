using System.Text.Json;
using System.Text.Json.Serialization;

namespace SplitFunctions.Tests.Engine;

/// <summary>A recorded tensor: evenly spaced samples (or all values), sum and largest magnitude.</summary>
internal sealed record SampledTensor(
    [property: JsonPropertyName("shape")] long[] Shape,
    [property: JsonPropertyName("indices")] long[]? Indices,
    [property: JsonPropertyName("values")] double[] Values,
    [property: JsonPropertyName("sum")] double Sum,
    [property: JsonPropertyName("max_abs")] double MaxAbs)
{
    /// <summary>
    /// Asserts ours equals PyTorch's within <paramref name="tolerance"/> relative to the tensor's largest magnitude
    /// (per-element relative error is meaningless for values that cross zero); returns the largest such error seen.
    /// </summary>
    public double ShouldMatch(float[] actual, long[] actualShape, string what, double tolerance)
    {
        actualShape.Should().Equal(Shape, $"{what} shape");
        var scale = Math.Max(MaxAbs, 1e-12);
        var largest = 0.0;
        for (var k = 0; k < Values.Length; k++)
        {
            var index = Indices?[k] ?? k;
            var error = Math.Abs(actual[index] - Values[k]) / scale;
            largest = Math.Max(largest, error);
            error.Should().BeLessThanOrEqualTo(tolerance, $"{what}[{index}]: ours {actual[index]:R}, PyTorch {Values[k]:R}");
        }
        var sum = actual.Sum(v => (double)v);
        Math.Abs(sum - Sum).Should().BeLessThanOrEqualTo(tolerance * scale * Math.Sqrt(actual.Length) + 1e-9, $"{what} sum");
        return largest;
    }
}

internal sealed record GoldenStep(
    [property: JsonPropertyName("client_output")] SampledTensor ClientOutput,
    [property: JsonPropertyName("prediction")] SampledTensor Prediction,
    [property: JsonPropertyName("loss")] double Loss,
    [property: JsonPropertyName("cut_gradient")] SampledTensor CutGradient,
    [property: JsonPropertyName("client_weights")] Dictionary<string, SampledTensor> ClientWeights,
    [property: JsonPropertyName("server_weights")] Dictionary<string, SampledTensor> ServerWeights);

internal sealed record GoldenOptimizer(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("lr")] double LearningRate,
    [property: JsonPropertyName("momentum")] double Momentum,
    [property: JsonPropertyName("weight_decay")] double WeightDecay);

internal sealed record GoldenRun(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("torch_version")] string TorchVersion,
    [property: JsonPropertyName("batch")] int Batch,
    [property: JsonPropertyName("input_shape")] long[] InputShape,
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("optimizer")] GoldenOptimizer Optimizer,
    [property: JsonPropertyName("steps")] GoldenStep[] Steps)
{
    public static string FixturePath(string file) => Path.Combine(AppContext.BaseDirectory, "golden", "fixtures", file);

    public static GoldenRun Load(string model) =>
        JsonSerializer.Deserialize<GoldenRun>(File.ReadAllText(FixturePath(model + ".json")))
        ?? throw new InvalidDataException($"fixture for {model} is empty");
}
