using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Keys;

/// <summary>
/// Envelope keys in a local folder, for development and for hospitals without Key Vault: `&lt;hospital&gt;.&lt;keyid&gt;.key`
/// holds the base64 key, `&lt;hospital&gt;.current` the id new payloads are sealed with. Key files are created owner-only
/// (0600) and refused when group or others can read them, as ssh does with private keys. On Windows the folder's ACL
/// protects them: keep the folder in the service account's profile.
/// </summary>
public sealed class LocalKeyStore : IKeyProvider
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyFolder = OwnerOnlyFile | UnixFileMode.UserExecute;
    private const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                               UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public LocalKeyStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    /// <summary>Path of one key file.</summary>
    public string GetKeyPath(string hospitalId, string keyId) =>
        Path.Combine(Directory, $"{StorageNames.ValidateHospitalId(hospitalId)}.{HospitalKey.ValidateKeyId(keyId)}.key");

    /// <summary>Creates a fresh random key with a new id and makes it the hospital's current key (rotation).</summary>
    public HospitalKey CreateKey(string hospitalId)
    {
        return ImportKey(hospitalId, HospitalKey.NewKeyId(), RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
    }

    /// <summary>Stores a key received from the other side (owner-only) and, by default, makes it current.</summary>
    public HospitalKey ImportKey(string hospitalId, string keyId, ReadOnlySpan<byte> key, bool makeCurrent = true)
    {
        if (key.Length != FrameCipher.KeySize) throw new ArgumentException($"Envelope keys are {FrameCipher.KeySize} bytes, got {key.Length}.", nameof(key));
        var path = GetKeyPath(hospitalId, keyId);
        EnsureDirectory();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnlyFile;
        using (var file = new FileStream(path, options))
        {
            file.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
        }
        if (makeCurrent) SetCurrentKeyId(hospitalId, keyId);
        return new HospitalKey(hospitalId, keyId, key.ToArray());
    }

    /// <summary>Deletes one key file (revocation, a retired rotation key); false when there was none.</summary>
    public bool DeleteKey(string hospitalId, string keyId)
    {
        var path = GetKeyPath(hospitalId, keyId);
        if (!File.Exists(path)) return false;
        File.Delete(path);
        return true;
    }

    /// <summary>The id new payloads of this hospital are sealed with, or null when it has no key yet.</summary>
    public string? GetCurrentKeyId(string hospitalId)
    {
        var path = CurrentPath(hospitalId);
        if (!File.Exists(path)) return null;
        var keyId = File.ReadAllText(path).Trim();
        return HospitalKey.IsValidKeyId(keyId)
            ? keyId
            : throw new KeyStoreException($"{path} does not hold a valid key id ('{keyId}'): write the id of one of the hospital's .key files into it.");
    }

    /// <summary>Points the hospital's current key at an existing key id; the swap is atomic.</summary>
    public void SetCurrentKeyId(string hospitalId, string keyId)
    {
        if (!File.Exists(GetKeyPath(hospitalId, keyId))) throw UnknownKey(hospitalId, keyId);
        var path = CurrentPath(hospitalId);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temp, keyId + "\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Loads a key; a null id loads the current one.</summary>
    public HospitalKey GetKey(string hospitalId, string? keyId = null)
    {
        keyId ??= GetCurrentKeyId(hospitalId) ?? throw new ProtocolException(ProtocolRejection.UnknownKey,
            $"Hospital '{hospitalId}' has no current key in {Directory}: create one (LocalKeyStore.CreateKey) or copy the hospital's key files here.");
        var path = GetKeyPath(hospitalId, keyId);
        if (!File.Exists(path)) throw UnknownKey(hospitalId, keyId);
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & GroupOrOthers) != 0)
            {
                throw new KeyStoreException(
                    $"Key file {path} is accessible to other users (mode {Convert.ToString((int)mode, 8)}): run `chmod 600 {path}` and try again. The key was "
                        + $"not used.");
            }
        }
        byte[] key;
        try
        {
            key = Convert.FromBase64String(File.ReadAllText(path).Trim());
        }
        catch (FormatException e)
        {
            throw new KeyStoreException($"Key file {path} is not base64: restore it from the hospital's key backup.", e);
        }
        return key.Length == FrameCipher.KeySize
            ? new HospitalKey(hospitalId, keyId, key)
            : throw new KeyStoreException($"Key file {path} holds {key.Length} bytes, not {FrameCipher.KeySize}: restore it from the hospital's key backup.");
    }

    public ValueTask<HospitalKey> GetKeyAsync(string hospitalId, string? keyId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(GetKey(hospitalId, keyId));

    private string CurrentPath(string hospitalId) => Path.Combine(Directory, StorageNames.ValidateHospitalId(hospitalId) + ".current");

    private ProtocolException UnknownKey(string hospitalId, string keyId) =>
        new(ProtocolRejection.UnknownKey, $"No key '{keyId}' for hospital '{hospitalId}' in {Directory}: copy that key file from the hospital, or have the "
            + $"agent use a key both sides hold.");

    private void EnsureDirectory()
    {
        if (System.IO.Directory.Exists(Directory)) return;
        if (OperatingSystem.IsWindows()) System.IO.Directory.CreateDirectory(Directory);
        else System.IO.Directory.CreateDirectory(Directory, OwnerOnlyFolder);
    }
}
