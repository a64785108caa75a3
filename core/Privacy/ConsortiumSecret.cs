using System.Security.Cryptography;
using System.Text;
using SplitFunctions.Core.Audit;

namespace SplitFunctions.Core.Privacy;

/// <summary>A consortium secret file is missing, unreadable or not one.</summary>
public sealed class ConsortiumSecretException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The secret the hospitals of a consortium share at onboarding and the function never receives. The hospitals' initial
/// client weights (and so temporal mode's fixed privacy layer) derive from it, so the server cannot rebuild them from
/// what it holds (manifest, seed, ids, sequence numbers). The run manifest carries only <see cref="Commitment"/>, a
/// keyed hash from which the secret cannot be recovered, so every hospital can check it holds the same secret.
/// </summary>
public sealed class ConsortiumSecret
{
    /// <summary>Bytes of a secret (256 bits).</summary>
    public const int Length = 32;

    private const string FileHeader = "splitfn-consortium-secret-v1";
    private readonly byte[] key;

    private ConsortiumSecret(byte[] key) => this.key = key;

    /// <summary>A fresh secret from the operating system's cryptographically secure generator.</summary>
    public static ConsortiumSecret Create() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>Wraps given bytes (tests, key ceremonies that produced the bytes elsewhere).</summary>
    public static ConsortiumSecret FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length) throw new ConsortiumSecretException($"a consortium secret is {Length} bytes, not {bytes.Length}");
        return new(bytes.ToArray());
    }

    /// <summary>
    /// Hex SHA-256 HMAC of a fixed label under the secret: what the manifest carries. Equal commitments mean equal
    /// secrets; the commitment reveals nothing the server could derive weights from.
    /// </summary>
    public string Commitment => Convert.ToHexStringLower(Derive("commitment"));

    /// <summary>
    /// Seed of the initial client weights of <paramref name="runId"/>: 64 bits of HMAC-SHA256(secret, label | run),
    /// because libtorch's generator takes a 64-bit seed. Different per run, equal at every hospital of the consortium.
    /// </summary>
    public ulong ClientInitSeed(string runId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        return BitConverter.ToUInt64(Derive("client-init|" + runId), 0);
    }

    private byte[] Derive(string label) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("splitfn/" + label + "/v1"));

    /// <summary>Reads a secret file (one header line, one base64 line).</summary>
    public static ConsortiumSecret Load(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConsortiumSecretException($"consortium secret {path} cannot be read ({e.Message})", e);
        }
        if (lines.Length < 2 || lines[0].Trim() != FileHeader)
        {
            throw new ConsortiumSecretException($"{path} is not a consortium secret file (it must start with '{FileHeader}'); create one with `splitfn-agent "
                + $"init --new-consortium-secret` at one hospital and copy it to the others");
        }
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(lines[1].Trim());
        }
        catch (FormatException e)
        {
            throw new ConsortiumSecretException($"consortium secret {path}: the second line is not base64", e);
        }
        if (bytes.Length != Length) throw new ConsortiumSecretException($"consortium secret {path} holds {bytes.Length} bytes; a secret is {Length}");
        return new ConsortiumSecret(bytes);
    }

    /// <summary>Writes the secret readable by its owner only; refuses to overwrite an existing file.</summary>
    public void Save(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var stream = new FileStream(full, options);
        using var writer = new StreamWriter(stream);
        writer.Write($"{FileHeader}\n{Convert.ToBase64String(key)}\n");
    }
}
