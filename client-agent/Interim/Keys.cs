// INTERIM: stands in for core/Protocol (branch `protocol`) until it lands; delete this folder then.
using System.Security.Cryptography;

namespace SplitFunctions.Core.Protocol;

/// <summary>One hospital's key-encryption key.</summary>
public sealed record HospitalKey(string HospitalId, string KeyId, byte[] Key);

/// <summary>Finds a hospital's key by key id.</summary>
public interface IKeyProvider
{
    Task<HospitalKey> GetKeyAsync(string hospitalId, string keyId, CancellationToken cancellationToken = default);
}

/// <summary>Keys as files `&lt;hospital&gt;--&lt;keyId&gt;.key` (base64) readable by the owner only.</summary>
public sealed class LocalKeyStore(string directory) : IKeyProvider
{
    public string Directory { get; } = directory ?? throw new ArgumentNullException(nameof(directory));

    public string KeyFilePath(string hospitalId, string keyId) => Path.Combine(Directory, $"{hospitalId}--{keyId}.key");

    public HospitalKey CreateKey(string hospitalId)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var keyId = "k" + DateTimeOffset.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        var key = RandomNumberGenerator.GetBytes(32);
        var path = KeyFilePath(hospitalId, keyId);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(Convert.ToBase64String(key));
        }
        return new HospitalKey(hospitalId, keyId, key);
    }

    public Task<HospitalKey> GetKeyAsync(string hospitalId, string keyId, CancellationToken cancellationToken = default)
    {
        var path = KeyFilePath(hospitalId, keyId);
        if (!File.Exists(path))
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey, $"no key file for hospital '{hospitalId}' with key id '{keyId}' ({path})");
        }
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            {
                throw new UnauthorizedAccessException($"key file {path} is readable or writable by group or others (mode {mode}); run: chmod 600 {path}");
            }
        }
        byte[] key;
        try
        {
            key = Convert.FromBase64String(File.ReadAllText(path).Trim());
        }
        catch (FormatException e)
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey, $"key file {path} is not base64", e);
        }
        if (key.Length != 32) throw new ProtocolException(ProtocolRejection.UnknownKey, $"key file {path} holds {key.Length} bytes; AES-256 needs 32");
        return Task.FromResult(new HospitalKey(hospitalId, keyId, key));
    }
}
