using System.Collections.Concurrent;
using Azure;
using Azure.Storage.Blobs.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>
/// The function's keys, refused as soon as the operator's record says so: a revoked hospital, or a key id its record no
/// longer lists (retired by `rotate-key --retire`). Key Vault keys are cached for minutes (<see cref="KeyVaultKeyProvider"/>),
/// so disabling the secret alone left a revoked hospital's key working that long; the record
/// (`consortium/hospitals/&lt;id&gt;.json`, which `revoke` writes after retiring the keys) is looked at again at most every
/// <see cref="Recheck"/> per hospital, with its ETag (an unchanged record costs a 304). A hospital without a record (keys
/// placed by hand, tests) is left to the inner provider alone.
/// </summary>
public sealed class RegistryCheckedKeys(IKeyProvider inner, StorageConnection storage, TimeSpan? recheck = null) : IKeyProvider
{
    /// <summary>The longest a revocation waits to take effect on a running instance (plus one storage read).</summary>
    public static readonly TimeSpan DefaultRecheck = TimeSpan.FromSeconds(2);

    // Hospital ids come from messages not yet authenticated: the table stays small whatever they name.
    private const int MaxTracked = 4096;
    private readonly ConcurrentDictionary<string, Seen> seen = new(StringComparer.Ordinal);

    public TimeSpan Recheck { get; } = recheck ?? DefaultRecheck;

    /// <summary>The provider whose keys this one checks.</summary>
    public IKeyProvider Inner => inner;

    public async ValueTask<HospitalKey> GetKeyAsync(string hospitalId, string? keyId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hospitalId);
        if (!StorageNames.IsValidHospitalId(hospitalId))
            throw new ProtocolException(ProtocolRejection.UnknownKey, "the hospital id is not a valid one, so the server holds no key for it");
        var record = await RecordAsync(hospitalId, cancellationToken).ConfigureAwait(false);
        if (record is { IsRevoked: true })
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey,
                $"hospital '{hospitalId}' was revoked at {record.RevokedAt:u}: every key of it is refused");
        }
        var key = await inner.GetKeyAsync(hospitalId, keyId, cancellationToken).ConfigureAwait(false);
        if (record is not null && !record.KeyIds.Contains(key.KeyId, StringComparer.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey,
                $"key '{key.KeyId}' of hospital '{hospitalId}' was retired (the operator's record lists {string.Join(", ", record.KeyIds)})");
        }
        return key;
    }

    private async Task<HospitalRecord?> RecordAsync(string hospitalId, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        if (seen.TryGetValue(hospitalId, out var last) && now - last.CheckedAt < Recheck) return last.Record;
        var blob = storage.GetBlobContainerClient(HospitalRegistry.Container).GetBlobClient(HospitalRegistry.RecordBlob(hospitalId));
        Seen fresh;
        try
        {
            var conditions = last?.ETag is { } etag ? new BlobRequestConditions { IfNoneMatch = etag } : null;
            var response = await blob.DownloadContentAsync(new BlobDownloadOptions { Conditions = conditions }, ct).ConfigureAwait(false);
            fresh = response.GetRawResponse().Status == 304 && last is not null
                ? last with { CheckedAt = now }
                : new Seen(HospitalRecord.Parse(response.Value.Content.ToMemory().Span), response.Value.Details.ETag, now);
        }
        catch (RequestFailedException e) when (e.Status == 304 && last is not null)
        {
            fresh = last with { CheckedAt = now };
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            fresh = new Seen(null, null, now);
        }
        catch (System.Text.Json.JsonException)
        {
            // A record the operator's tool cannot have written: refuse rather than trust keys it may have meant to revoke.
            throw new ProtocolException(ProtocolRejection.UnknownKey, $"the operator's record of hospital '{hospitalId}' is unreadable: its keys are refused");
        }
        if (seen.Count >= MaxTracked && !seen.ContainsKey(hospitalId)) seen.Clear();
        seen[hospitalId] = fresh;
        return fresh.Record;
    }

    private sealed record Seen(HospitalRecord? Record, ETag? ETag, DateTimeOffset CheckedAt);
}
