using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Consortium;

/// <summary>
/// Where the function reads hospital keys (`SplitFunctions__KeyVaultUri` or `SplitFunctions__KeyDirectory`), seen from the operator who fills it.
/// </summary>
public interface IFunctionKeys
{
    /// <summary>Human-readable location, for the tool's output.</summary>
    string Location { get; }

    /// <summary>Stores a key under its id; the function can open frames sealed with it from then on.</summary>
    Task StoreAsync(HospitalKey key, CancellationToken ct = default);

    /// <summary>Makes a key unusable for the function (deleted locally, disabled in Key Vault).</summary>
    Task RetireAsync(string hospitalId, string keyId, CancellationToken ct = default);
}

/// <summary>The function's local key folder (development, Azurite): the same <see cref="LocalKeyStore"/> files it reads.</summary>
public sealed class LocalFunctionKeys(LocalKeyStore store) : IFunctionKeys
{
    public string Location => store.Directory;

    public Task StoreAsync(HospitalKey key, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        store.ImportKey(key.HospitalId, key.KeyId, key.Key);
        return Task.CompletedTask;
    }

    public Task RetireAsync(string hospitalId, string keyId, CancellationToken ct = default)
    {
        store.DeleteKey(hospitalId, keyId);
        return Task.CompletedTask;
    }
}

/// <summary>Azure Key Vault, one secret per key as <see cref="KeyVaultKeyNaming"/> names it.</summary>
public sealed class KeyVaultFunctionKeys(KeyVaultKeyProvider vault, Uri vaultUri) : IFunctionKeys
{
    public string Location => vaultUri.ToString();

    public Task StoreAsync(HospitalKey key, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return vault.StoreKeyAsync(key.HospitalId, key.KeyId, key.Key, ct);
    }

    public Task RetireAsync(string hospitalId, string keyId, CancellationToken ct = default) => vault.DisableKeyAsync(hospitalId, keyId, ct);
}
