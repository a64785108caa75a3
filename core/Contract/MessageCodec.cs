using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// Queue messages as versioned JSON with strict validation: size first (before any parsing), then the version, then
/// the shape (no unknown, missing, duplicate or mistyped fields), then the rules of each field.
/// </summary>
public static class MessageCodec
{
    /// <summary>The message version this build writes and reads (2: frame messages carry `mac`, replies `answers`).</summary>
    public const int CurrentVersion = 2;

    /// <summary>Largest serialized message: base64 (the queue trigger's encoding) makes it 64 KiB, the queue's limit.</summary>
    public const int MaxMessageBytes = 48 * 1024;

    /// <summary>
    /// Largest sealed frame carried inside a message (<see cref="RunMessage.Inline"/>): its base64url (46,422 characters)
    /// leaves more than 2.5 KiB of the <see cref="MaxMessageBytes"/> for the other fields at their longest.
    /// </summary>
    public const int MaxInlineBytes = 34 * 1024;

    /// <summary>Largest sealed payload a message may announce.</summary>
    public const long MaxPayloadBytes = 512L * 1024 * 1024;

    /// <summary>Longest blob name accepted in a message.</summary>
    public const int MaxBlobNameLength = 256;

    /// <summary>Longest rejection reason.</summary>
    public const int MaxReasonLength = 2048;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 4, AllowDuplicateProperties = false };

    public static string Serialize(FrameMessage message) => Serialize(Validate(message), ProtocolJsonContext.Default.FrameMessage);

    public static string Serialize(ReplyMessage message) => Serialize(Validate(message), ProtocolJsonContext.Default.ReplyMessage);

    /// <summary>Parses and validates a frame message; throws <see cref="ProtocolException"/> with the precise reason.</summary>
    public static FrameMessage ParseFrame(string json) => Validate(Parse(json, ProtocolJsonContext.Default.FrameMessage));

    /// <summary>Parses and validates a reply message; throws <see cref="ProtocolException"/> with the precise reason.</summary>
    public static ReplyMessage ParseReply(string json) => Validate(Parse(json, ProtocolJsonContext.Default.ReplyMessage));

    /// <summary>Checks every field rule of an outgoing or parsed frame message.</summary>
    public static FrameMessage Validate(FrameMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        ValidateCommon(m.Version, m.RunId, m.HospitalId, m.Sequence);
        if (m.ReplyQueue != StorageNames.RepliesQueue(m.HospitalId))
            throw Malformed($"replyQueue is '{m.ReplyQueue}' but hospital '{m.HospitalId}' is answered only on '{StorageNames.RepliesQueue(m.HospitalId)}'.");
        if (m.Epoch < 0 || m.Batch < 0) throw Malformed("epoch and batch must be 0 or more.");
        if (!HospitalKey.IsValidKeyId(m.KeyId)) throw Malformed($"keyId '{m.KeyId}' is not a valid key id (1-{HospitalKey.MaxKeyIdLength} lowercase letters, "
            + $"digits and hyphens); every message names the key its MAC is made under.");
        RequireHex(m.Mac, "mac", "the MAC proving the message's hospital (MessageAuthentication.Sign)");
        if (m.Kind == FrameKind.Done)
        {
            RequireNoPayload(m.Blob, m.Length, m.Sha256, null, "done");
            RequireNoInline(m.Inline, "done");
            if (m.ChunkCount is not >= 0) throw Malformed("a 'done' message needs chunkCount (0 or more): the number of chunks the hospital uploaded.");
        }
        else
        {
            ValidatePayload(m.Blob, m.Length, m.Sha256, m.KeyId, StorageNames.FeaturesFolder, m.RunId);
            if (m.ChunkCount is not null) throw Malformed("chunkCount belongs only on a 'done' message.");
            // Chunks and U-shaped legs are read again later from their blobs (epochs, the backward leg): only frames read
            // once (`evaluate`) or written back by the server before its journal names them (`train`) may travel inline.
            if (m.Kind is not (FrameKind.Train or FrameKind.Evaluate)) RequireNoInline(m.Inline, m.Kind.ToString().ToLowerInvariant());
            ValidateInline(m.Inline, m.Length);
        }
        return m;
    }

    /// <summary>Checks every field rule of an outgoing or parsed reply message.</summary>
    public static ReplyMessage Validate(ReplyMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        ValidateCommon(m.Version, m.RunId, m.HospitalId, m.Sequence);
        if (m.Loss is { } loss && !double.IsFinite(loss)) throw Malformed("loss must be a finite number.");
        RequireHex(m.Answers, "answers", "the MAC of the message this reply answers");
        if (m.Model?.Problem() is { } problem) throw Malformed(problem);
        // Predictions name the model that made them; a `notready` reply says how far it is; U-shaped outputs name it when
        // they answer an evaluation (a training leg's outputs do not). No other kind carries a model.
        if (m.Model is null && m.Kind is ReplyKind.Predictions or ReplyKind.NotReady)
            throw Malformed($"a '{m.Kind.ToString().ToLowerInvariant()}' reply must name the server model it speaks of (model).");
        if (m.Model is not null && m.Kind is not (ReplyKind.Predictions or ReplyKind.NotReady or ReplyKind.Outputs))
            throw Malformed("model belongs only on 'predictions', 'outputs' and 'notready' replies.");
        // Optional to the codec (the agent refuses a reply without it: MessageAuthentication.VerifyReply).
        if (m.Mac is not null) RequireHex(m.Mac, "mac", "the MAC proving the reply came from the server");
        switch (m.Kind)
        {
            case ReplyKind.Gradients or ReplyKind.Predictions or ReplyKind.Outputs:
                ValidatePayload(m.Blob, m.Length, m.Sha256, m.KeyId, StorageNames.ReplyFolder(m.Kind), m.RunId);
                ValidateInline(m.Inline, m.Length);
                if (m.Reason is not null) throw Malformed("reason belongs only on a 'rejected' reply.");
                break;
            case ReplyKind.NotReady:
                RequireNoPayload(m.Blob, m.Length, m.Sha256, m.KeyId, "notready");
                RequireNoInline(m.Inline, "notready");
                if (m.Reason is not null || m.Loss is not null) throw Malformed("a 'notready' reply carries only the model's progress (no reason, no loss).");
                break;
            case ReplyKind.Rejected:
                RequireNoPayload(m.Blob, m.Length, m.Sha256, m.KeyId, "rejected");
                RequireNoInline(m.Inline, "rejected");
                if (string.IsNullOrWhiteSpace(m.Reason) || m.Reason.Length > MaxReasonLength)
                    throw Malformed($"a 'rejected' reply needs a reason of 1-{MaxReasonLength} characters.");
                break;
            default:
                RequireNoPayload(m.Blob, m.Length, m.Sha256, m.KeyId, "accepted");
                RequireNoInline(m.Inline, "accepted");
                if (m.Reason is not null) throw Malformed("reason belongs only on a 'rejected' reply.");
                break;
        }
        return m;
    }

    /// <summary>
    /// The sealed bytes a message carries inline (<see cref="RunMessage.Inline"/>), or null when it names a blob only.
    /// The announced length is checked against <see cref="MaxInlineBytes"/> and the text's length before anything is
    /// decoded, and the bytes decoded must be exactly that many; the caller then checks the seal digest and opens the
    /// envelope as for a blob (<see cref="SecureFrameCodec"/>).
    /// </summary>
    public static byte[]? InlineBytes(RunMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return InlineBytes(message.Inline, message.Length);
    }

    /// <summary><see cref="InlineBytes(RunMessage)"/> from the message's `inline` text and announced length.</summary>
    public static byte[]? InlineBytes(string? inline, long length)
    {
        if (inline is null) return null;
        ValidateInline(inline, length);
        var bytes = GC.AllocateUninitializedArray<byte>((int)length);
        return System.Buffers.Text.Base64Url.TryDecodeFromChars(inline, bytes, out var written) && written == bytes.Length
            ? bytes
            : throw Malformed($"inline is not the base64url of {length} bytes.");
    }

    /// <summary>
    /// The `inline` text of sealed bytes: base64url without padding (RFC 4648, section 5), whose alphabet JSON writes as
    /// is (the serializer escapes standard base64's '+', six characters for one).
    /// </summary>
    public static string InlineText(ReadOnlySpan<byte> sealedBytes) => System.Buffers.Text.Base64Url.EncodeToString(sealedBytes);

    /// <summary>Characters of the unpadded base64url of <paramref name="bytes"/> bytes.</summary>
    public static long Base64Length(long bytes) => (4 * bytes + 2) / 3;

    /// <summary>A model version as compact JSON (kept with a stored answer, so a repeated request is answered with the same version).</summary>
    public static string SerializeModel(ModelVersion model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return JsonSerializer.Serialize(model, ProtocolJsonContext.Default.ModelVersion);
    }

    /// <summary>Reads what <see cref="SerializeModel"/> wrote; throws <see cref="ProtocolException"/> when it is not a valid model version.</summary>
    public static ModelVersion ParseModel(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var model = JsonSerializer.Deserialize(json, ProtocolJsonContext.Default.ModelVersion) ?? throw Malformed("the model version is null.");
            return model.Problem() is { } problem ? throw Malformed(problem) : model;
        }
        catch (JsonException e)
        {
            throw new ProtocolException(ProtocolRejection.Malformed, $"The model version is not valid SplitFunctions JSON: {e.Message}", e);
        }
    }

    private static string Serialize<T>(T message, JsonTypeInfo<T> type)
    {
        var json = JsonSerializer.Serialize(message, type);
        var bytes = Encoding.UTF8.GetByteCount(json);
        return bytes <= MaxMessageBytes
            ? json
            : throw new ProtocolException(ProtocolRejection.MessageTooLarge, $"The message is {bytes} bytes; queue messages are limited to {MaxMessageBytes}: "
                + $"put large content in the blob.");
    }

    private static T Parse<T>(string json, JsonTypeInfo<T> type)
    {
        ArgumentNullException.ThrowIfNull(json);
        // Size before parsing: UTF-8 never has fewer bytes than UTF-16 code units, so the cheap check goes first.
        if (json.Length > MaxMessageBytes || Encoding.UTF8.GetByteCount(json) > MaxMessageBytes)
        {
            throw new ProtocolException(ProtocolRejection.MessageTooLarge,
                $"The queue message is larger than {MaxMessageBytes} bytes and was not parsed: SplitFunctions messages are small JSON documents that point at "
                    + $"blobs. Check what the sender puts on the queue.");
        }
        try
        {
            using var document = JsonDocument.Parse(json, DocumentOptions);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Malformed("a message is one JSON object.");
            if (!root.TryGetProperty("v", out var version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v))
                throw Malformed("the version field 'v' (an integer) is missing.");
            if (v != CurrentVersion)
            {
                throw new ProtocolException(ProtocolRejection.UnknownVersion,
                    $"Queue message version {v} is not supported; this build reads version {CurrentVersion}" +
                    (v == 1 ? " (version 1 messages carry no MAC proving their hospital)" : "") +
                    ". Run the same SplitFunctions release at the hospital and in the cloud.");
            }
            return root.Deserialize(type) ?? throw Malformed("the message is null.");
        }
        catch (JsonException e)
        {
            throw new ProtocolException(ProtocolRejection.Malformed, $"The queue message is not valid SplitFunctions JSON: {e.Message}", e);
        }
    }

    private static void ValidateCommon(int version, string runId, string hospitalId, long sequence)
    {
        if (version != CurrentVersion) throw new ProtocolException(ProtocolRejection.UnknownVersion, $"Queue message version {version} is not supported; this "
            + $"build writes and reads version {CurrentVersion}.");
        if (!StorageNames.IsValidRunId(runId)) throw Malformed($"run '{runId}' is not a valid run id (1-63 lowercase letters, digits and single hyphens).");
        if (!StorageNames.IsValidHospitalId(hospitalId))
            throw Malformed($"hospital '{hospitalId}' is not a valid hospital id (1-{StorageNames.MaxHospitalIdLength} lowercase letters, digits and single "
                + $"hyphens).");
        if (sequence < 0) throw Malformed($"seq is {sequence}; sequence numbers start at 0.");
    }

    private static void ValidatePayload(string? blob, long length, string? sha256, string? keyId, string folder, string runId)
    {
        var prefix = folder + "/" + runId + "/";
        if (blob is null || blob.Length > MaxBlobNameLength || !blob.StartsWith(prefix, StringComparison.Ordinal) || blob.Length == prefix.Length ||
            blob.Contains("..", StringComparison.Ordinal) || blob.Contains("//", StringComparison.Ordinal) || !blob.All(IsBlobNameChar))
        {
            throw Malformed($"blob '{blob}' must be a name under '{prefix}' of at most {MaxBlobNameLength} lowercase letters, digits and '/._-'.");
        }
        if (length is <= 0 or > MaxPayloadBytes) throw Malformed($"length is {length}; a payload is 1-{MaxPayloadBytes} bytes.");
        if (sha256 is null || sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            throw Malformed($"sha256 '{sha256}' must be 64 lowercase hex digits.");
        if (!HospitalKey.IsValidKeyId(keyId)) throw Malformed($"keyId '{keyId}' is not a valid key id (1-{HospitalKey.MaxKeyIdLength} lowercase letters, "
            + $"digits and hyphens).");
    }

    private static void RequireNoPayload(string? blob, long length, string? sha256, string? keyId, string kind)
    {
        if (blob is not null || length != 0 || sha256 is not null || keyId is not null)
            throw Malformed($"a '{kind}' message carries no payload: blob{(kind == "done" ? " and sha256" : ", sha256 and keyId")} must be absent and length "
                + $"0.");
    }

    // Size only (the text's length against the announced length and the inline limit): the bytes are decoded by
    // InlineBytes, when the frame is read, after the MAC is verified.
    private static void ValidateInline(string? inline, long length)
    {
        if (inline is null) return;
        if (length is <= 0 or > MaxInlineBytes)
            throw new ProtocolException(ProtocolRejection.Oversized, $"The queue message is invalid: an inline frame is 1-{MaxInlineBytes} bytes; this "
                + $"one announces {length}. Larger frames travel as blobs.");
        if (inline.Length != Base64Length(length))
            throw Malformed($"inline holds {inline.Length} characters; the base64 of the announced {length} bytes has {Base64Length(length)}.");
        // The alphabet too: the MAC's canonical text relies on no field holding a line break.
        if (inline.AsSpan().ContainsAnyExcept(Base64UrlAlphabet)) throw Malformed("inline must be unpadded base64url (A-Z, a-z, 0-9, '-', '_').");
    }

    private static readonly System.Buffers.SearchValues<char> Base64UrlAlphabet =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    private static void RequireNoInline(string? inline, string kind)
    {
        if (inline is not null) throw Malformed($"a '{kind}' message cannot carry its frame inline.");
    }

    private static void RequireHex(string? value, string field, string what)
    {
        if (value is not { Length: MessageAuthentication.MacHexLength } || !value.All(char.IsAsciiHexDigitLower))
            throw Malformed($"{field} must be {MessageAuthentication.MacHexLength} lowercase hex digits: {what}.");
    }

    private static bool IsBlobNameChar(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '/' or '.' or '_' or '-';

    private static ProtocolException Malformed(string detail) => new(ProtocolRejection.Malformed, "The queue message is invalid: " + detail);
}

/// <summary>Reads an enum only from its lowercase name (never a number) and writes it the same way.</summary>
internal sealed class StrictEnumConverter<TEnum> : JsonConverter<TEnum>
    where TEnum : struct, Enum
{
    private static readonly Dictionary<string, TEnum> ByName = Enum.GetValues<TEnum>()
        .ToDictionary(v => v.ToString().ToLowerInvariant(), StringComparer.Ordinal);

    public override TEnum Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var name = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return name is not null && ByName.TryGetValue(name, out var value)
            ? value
            : throw new JsonException(string.Create(CultureInfo.InvariantCulture, $"kind must be one of "
                + $"{string.Join(", ", ByName.Keys.Select(k => '"' + k + '"'))}."));
    }

    public override void Write(Utf8JsonWriter writer, TEnum value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString().ToLowerInvariant());
}

/// <summary>Source-generated serializers for the queue messages: strict on input, compact on output.</summary>
[JsonSourceGenerationOptions(
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(FrameMessage))]
[JsonSerializable(typeof(ReplyMessage))]
[JsonSerializable(typeof(ModelVersion))]
internal sealed partial class ProtocolJsonContext : JsonSerializerContext;
