using System.Text.Json;
using SplitFunctions.Core.Consortium;

namespace SplitFunctions.Core.Runs;

/// <summary>
/// What an agent publishes about itself at `h-&lt;hospital&gt;/progress/&lt;run&gt;.json` after each epoch, for the operator's
/// `run status`: epochs done, the mean train loss and the validation score computed at the hospital. Aggregates only.
/// </summary>
public sealed record HospitalProgress(string HospitalId, string RunId, int EpochsDone, double? MeanTrainLoss, string? ValidationMetric,
    double? ValidationValue, long NextSequence, DateTimeOffset UpdatedAt)
{
    public static string Blob(string runId) => $"progress/{runId}.json";

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static HospitalProgress? TryParse(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize<HospitalProgress>(json, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static readonly JsonSerializerOptions Json =
        new(JsonSerializerDefaults.Web) { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
}
