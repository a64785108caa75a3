using System.Text.Json;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Why a message was poisoned, as one JSON message on `features-rejections`. The message itself goes to
/// `features-poison` unchanged, the format the Functions host writes there, so an operator can move it back to
/// `features` once the cause is fixed; the record is matched to it by <see cref="Message"/> (docs/architecture.md).
/// </summary>
public sealed record PoisonRecord(string Reason, string MessageId, long DequeueCount, string Host, DateTimeOffset At, string Message)
{
    /// <summary>Longest message text kept in a record (queue messages are at most 64 KiB after base64).</summary>
    public const int MaxMessageChars = 16 * 1024;

    public static PoisonRecord Parse(string json) =>
        JsonSerializer.Deserialize<PoisonRecord>(json, Json) ?? throw new JsonException("poison record is JSON null");

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}
