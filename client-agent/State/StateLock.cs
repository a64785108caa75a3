using System.Globalization;

namespace SplitFunctions.ClientAgent.State;

/// <summary>
/// One agent per state folder: an exclusive lock file (FileShare.None; flock on Linux, a share lock on Windows) held for
/// the process's lifetime. The OS drops it when the process dies, so a crash never leaves a stale lock.
/// </summary>
public sealed class StateLock : IDisposable
{
    public const string FileName = "agent.lock";
    private const string OwnerFileName = "agent.lock.owner";

    private readonly FileStream _stream;

    private StateLock(FileStream stream) => _stream = stream;

    public static StateLock Acquire(string stateFolder)
    {
        Directory.CreateDirectory(stateFolder);
        var path = Path.Combine(stateFolder, FileName);
        var owner = Path.Combine(stateFolder, OwnerFileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            var holder = File.Exists(owner) ? File.ReadAllText(owner).Trim() : "unknown process";
            throw new AgentException(ExitCode.StateLocked,
                $"state folder {stateFolder} is in use by another agent ({holder}). Wait for it to finish, or give this agent its own stateFolder; " +
                "two agents must never share one.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new AgentException(ExitCode.Configuration, $"state folder {stateFolder} is not writable by this account: fix its permissions.", e);
        }
        AtomicFile.Write(owner, System.Text.Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId} on {Environment.MachineName}, since {DateTimeOffset.UtcNow:u}")));
        return new StateLock(stream);
    }

    /// <summary>True while some agent holds the lock (probed by trying to take it).</summary>
    public static bool IsHeld(string stateFolder)
    {
        var path = Path.Combine(stateFolder, FileName);
        if (!File.Exists(path)) return false;
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public void Dispose() => _stream.Dispose();
}
