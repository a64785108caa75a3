using System.Text.Json;
using System.Text.Json.Serialization;

namespace SplitFunctions.Core.Consortium;

/// <summary>How a hospital's agent authenticates to storage.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<HospitalAccessKind>))]
public enum HospitalAccessKind
{
    /// <summary>SAS URIs minted by the operator (accounts with shared key access: Azurite, test accounts).</summary>
    Sas,

    /// <summary>The hospital's own Microsoft Entra service principal with role assignments on its container and queues.</summary>
    Identity,
}

/// <summary>
/// The operator's record of one hospital, at `consortium/hospitals/&lt;id&gt;.json`: how it connects, its key ids and
/// whether it is revoked. The operator's tool writes it; the function reads only whether a hospital is revoked and which key
/// ids it lists (<see cref="RegistryCheckedKeys"/>); agents never read it.
/// </summary>
public sealed record HospitalRecord
{
    public required string HospitalId { get; init; }
    public required HospitalAccessKind Access { get; init; }
    /// <summary>Object id of the hospital's service principal (identity access).</summary>
    public string? PrincipalId { get; init; }
    /// <summary>Key ids in the order they were issued; the last is current.</summary>
    public List<string> KeyIds { get; init; } = [];
    public DateTimeOffset AddedAt { get; init; }
    /// <summary>Expiry of the SAS last issued (SAS access).</summary>
    public DateTimeOffset? SasExpiresOn { get; init; }
    public DateTimeOffset? RevokedAt { get; init; }

    [JsonIgnore]
    public bool IsRevoked => RevokedAt is not null;

    [JsonIgnore]
    public string? CurrentKeyId => KeyIds.Count > 0 ? KeyIds[^1] : null;

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static HospitalRecord Parse(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<HospitalRecord>(json, Json) ?? throw new JsonException("hospital record is JSON null");

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
}
