using System.Collections.Concurrent;
using System.Security.Cryptography;
using Azure;
using Azure.Security.KeyVault.Secrets;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Keys;

/// <summary>
/// Envelope keys in Azure Key Vault, one secret per (hospital, key id) named as <see cref="KeyVaultKeyNaming"/> says
/// (the names docs/deploy.md tells the operator to create). Readers need the Key Vault Secrets User role. Keys are cached
/// for <see cref="CacheTime"/>; the function wraps this provider in <c>RegistryCheckedKeys</c>, which refuses a revoked
/// hospital's or a retired key within seconds whatever this cache holds.
/// </summary>
public sealed class KeyVaultKeyProvider(SecretClient client) : IKeyProvider
{
    private readonly ConcurrentDictionary<(string Hospital, string? KeyId), (HospitalKey Key, DateTimeOffset Until)> _cache = new();

    /// <summary>How long a key read from Key Vault is used before Key Vault is asked again.</summary>
    public TimeSpan CacheTime { get; init; } = TimeSpan.FromMinutes(5);

    public async ValueTask<HospitalKey> GetKeyAsync(string hospitalId, string? keyId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hospitalId);
        if (_cache.TryGetValue((hospitalId, keyId), out var cached) && cached.Until > DateTimeOffset.UtcNow) return cached.Key;

        var id = keyId ?? await CurrentKeyIdAsync(hospitalId, cancellationToken).ConfigureAwait(false);
        var name = KeyVaultKeyNaming.SecretName(hospitalId, id);
        KeyVaultSecret secret;
        try
        {
            secret = (await client.GetSecretAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey,
                $"Key Vault {client.VaultUri} has no secret '{name}': create the hospital's key as docs/deploy.md (onboarding, step 2) shows, or check the "
                    + $"key id.", e);
        }
        catch (RequestFailedException e) when (e.Status == 403 && e.Message.Contains("disabled", StringComparison.OrdinalIgnoreCase))
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey,
                $"Key Vault secret '{name}' is disabled (rotated out or compromised): the frame is refused; the hospital must seal with its current key.", e);
        }
        var key = KeyVaultKeyNaming.ToKey(hospitalId, id, secret);
        _cache[(hospitalId, keyId)] = (key, DateTimeOffset.UtcNow + CacheTime);
        return key;
    }

    /// <summary>Stores given key bytes (the operator's tool issues the same bytes to the hospital) with the documented name, content type and tags.</summary>
    public async Task<HospitalKey> StoreKeyAsync(string hospitalId, string keyId, byte[] keyBytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keyBytes);
        if (keyBytes.Length != FrameCipher.KeySize) throw new ArgumentException($"Envelope keys are {FrameCipher.KeySize} bytes, got "
            + $"{keyBytes.Length}.", nameof(keyBytes));
        var secret = new KeyVaultSecret(KeyVaultKeyNaming.SecretName(hospitalId, keyId), Convert.ToBase64String(keyBytes));
        secret.Properties.ContentType = KeyVaultKeyNaming.ContentType;
        secret.Properties.Tags["hospital"] = hospitalId;
        secret.Properties.Tags["keyId"] = keyId;
        var key = KeyVaultKeyNaming.ToKey(hospitalId, keyId, (await client.SetSecretAsync(secret, cancellationToken).ConfigureAwait(false)).Value);
        _cache.TryRemove((hospitalId, null), out _);
        return key;
    }

    /// <summary>Disables one key secret (revocation, a retired rotation key); frames under it are refused once the cache expires.</summary>
    public async Task DisableKeyAsync(string hospitalId, string keyId, CancellationToken cancellationToken = default)
    {
        try
        {
            // Updating needs the version, so read the secret's current properties first.
            var properties = (await client.GetSecretAsync(KeyVaultKeyNaming.SecretName(hospitalId, keyId), cancellationToken: cancellationToken)
                .ConfigureAwait(false)).Value.Properties;
            properties.Enabled = false;
            await client.UpdateSecretPropertiesAsync(properties, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // Already gone: nothing left to disable.
        }
        _cache.Clear();
    }

    private async Task<string> CurrentKeyIdAsync(string hospitalId, CancellationToken cancellationToken)
    {
        var secrets = new List<SecretProperties>();
        await foreach (var properties in client.GetPropertiesOfSecretsAsync(cancellationToken).ConfigureAwait(false)) secrets.Add(properties);
        return KeyVaultKeyNaming.CurrentKeyId(hospitalId, secrets)
               ?? throw new ProtocolException(ProtocolRejection.UnknownKey,
                   $"Key Vault {client.VaultUri} has no enabled secret 'hospital-{hospitalId}--<keyId>' with content type '{KeyVaultKeyNaming.ContentType}': "
                       + $"create the hospital's key as docs/deploy.md shows.");
    }
}
