using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>
/// What a hospital needs to `splitfn-agent init`: its key, and the init arguments (storage URIs with SAS, or the identity
/// settings). <see cref="InitArguments"/> is the one list both the printed command and `init.rsp` come from, so later
/// onboarding material (e.g. a consortium secret) is added there and reaches both.
/// </summary>
public sealed record OnboardingPackage(HospitalRecord Record, HospitalKey Key, HospitalCredentials? Credentials, IReadOnlyList<string> InitArguments,
    IReadOnlyList<string> RoleAssignments)
{
    /// <summary>Response file the agent reads with `init @init.rsp`: one argument per line.</summary>
    public const string ResponseFile = "init.rsp";

    /// <summary>Key store folder inside the package, named relative to the package folder in <see cref="InitArguments"/>.</summary>
    public const string KeyFolder = "keys";

    /// <summary>
    /// Writes `keys/` (the hospital's copy of its key, owner-only) and `init.rsp` into <paramref name="folder"/> and returns
    /// the response file's path. The agent runs in that folder: `splitfn-agent init @init.rsp --run &lt;run&gt; --data &lt;file&gt;`.
    /// </summary>
    public string WriteTo(string folder)
    {
        Directory.CreateDirectory(folder);
        var keys = new LocalKeyStore(Path.Combine(folder, KeyFolder));
        if (!File.Exists(keys.GetKeyPath(Key.HospitalId, Key.KeyId))) keys.ImportKey(Key.HospitalId, Key.KeyId, Key.Key);
        else keys.SetCurrentKeyId(Key.HospitalId, Key.KeyId);
        var path = Path.Combine(folder, ResponseFile);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        // The SAS in it grants the hospital's access: owner-only, like the key.
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(new FileStream(path, options)))
        {
            foreach (var argument in InitArguments) writer.WriteLine(argument);
        }
        return path;
    }

    /// <summary>The init arguments for a SAS-connected hospital.</summary>
    public static IReadOnlyList<string> SasArguments(string hospitalId, HospitalCredentials credentials, string keyId)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return
        [
            "--hospital", hospitalId,
            "--container-uri", $"{credentials.ContainerUri}?{credentials.ContainerSas}",
            "--features-queue-uri", $"{credentials.FeaturesQueueUri}?{credentials.FeaturesQueueSas}",
            "--replies-queue-uri", $"{credentials.RepliesQueueUri}?{credentials.RepliesQueueSas}",
            "--key-dir", KeyFolder, "--key-id", keyId,
        ];
    }

    /// <summary>The init arguments for an identity-connected hospital (its tenant, app id and certificate file are the hospital's).</summary>
    public static IReadOnlyList<string> IdentityArguments(string hospitalId, StorageConnection storage, string tenantId, string clientId, string certificate,
        string keyId)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return
        [
            "--hospital", hospitalId,
            "--account-name", storage.AccountName,
            "--tenant-id", tenantId, "--client-id", clientId, "--certificate", certificate,
            "--key-dir", KeyFolder, "--key-id", keyId,
        ];
    }
}
