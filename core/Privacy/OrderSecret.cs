using System.Security.Cryptography;
using System.Text;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// The hospital's own secret for the order in which it sends its samples (training batches, validation and evaluation
/// passes, temporal chunks). Created once from the operating system's CSPRNG in the agent's state folder (owner-only),
/// never sent, shared with no one: not even the other hospitals hold it. Orders derived from the manifest seed and the
/// hospital id were known to the server, which could then link each patient's views across epochs and average the
/// noise away (issue 29); these orders are not. Every order is a keyed function of (run, purpose, pass), so a restarted
/// agent reproduces the order of the epoch it resumes exactly.
/// </summary>
public sealed class OrderSecret
{
    /// <summary>Bytes of the secret (256 bits).</summary>
    public const int Length = 32;

    /// <summary>The file in the state folder.</summary>
    public const string FileName = "order.secret";

    private const string FileHeader = "splitfn-order-secret-v1";
    private readonly byte[] key;

    private OrderSecret(byte[] key) => this.key = key;

    /// <summary>A fresh secret (tests; agents use <see cref="LoadOrCreate"/>).</summary>
    public static OrderSecret Create() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>
    /// The secret in <paramref name="stateFolder"/>, created there on first use. The file is written whole under a
    /// temporary name and then moved into place without overwriting, so a crash never leaves half a secret and a
    /// secret once used is never replaced (the orders of a run in progress depend on it).
    /// </summary>
    public static OrderSecret LoadOrCreate(string stateFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateFolder);
        var path = Path.Combine(stateFolder, FileName);
        if (File.Exists(path)) return Load(path);
        Directory.CreateDirectory(stateFolder);
        var secret = Create();
        var temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(Encoding.ASCII.GetBytes($"{FileHeader}\n{Convert.ToBase64String(secret.key)}\n"));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: false);
            return secret;
        }
        catch (IOException) when (File.Exists(path))
        {
            return Load(path); // another start created it first: use that one
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Reads the secret file; a damaged one is an <see cref="InvalidDataException"/> naming the file.</summary>
    public static OrderSecret Load(string path)
    {
        var lines = File.ReadAllLines(path);
        byte[]? bytes = null;
        if (lines.Length >= 2 && lines[0].Trim() == FileHeader)
        {
            try
            {
                bytes = Convert.FromBase64String(lines[1].Trim());
            }
            catch (FormatException)
            {
                bytes = null;
            }
        }
        if (bytes is not { Length: Length })
        {
            throw new InvalidDataException($"{path} is not this hospital's order secret (damaged or replaced); restore it from the state folder's backup, "
                + "or move the state folder aside to start afresh");
        }
        return new OrderSecret(bytes);
    }

    /// <summary>
    /// 32 bytes for item <paramref name="item"/> of <paramref name="purpose"/> in pass <paramref name="pass"/> of
    /// <paramref name="runId"/>: HMAC-SHA256(secret, label), e.g. a training image's augmentation in an epoch
    /// (core/Data ImageAugmentation). The server, which never holds the secret, cannot compute them.
    /// </summary>
    public byte[] Derive(string runId, string purpose, long pass, long item)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        var label = Encoding.UTF8.GetBytes(FormattableString.Invariant($"splitfn/draw/v1|{runId}|{purpose}|{pass}|{item}"));
        return HMACSHA256.HashData(key, label);
    }

    /// <summary>
    /// The permutation of 0..count-1 this hospital uses for <paramref name="purpose"/> ("train", "validation", ...)
    /// in pass <paramref name="pass"/> of <paramref name="runId"/>: a keyed shuffle under HMAC-SHA256(secret, label).
    /// </summary>
    public int[] Order(int count, string runId, string purpose, long pass)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        var label = Encoding.UTF8.GetBytes(FormattableString.Invariant($"splitfn/order/v1|{runId}|{purpose}|{pass}"));
        return BatchOrder.Shuffle(count, HMACSHA256.HashData(key, label));
    }
}
