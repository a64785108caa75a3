using System.Globalization;

namespace SplitFunctions.ClientAgent.State;

/// <summary>
/// One agent per state folder: an exclusive lock file (FileShare.None; flock on Linux, a share lock on Windows) held for
/// the process's lifetime. The OS drops it when the process dies, so a crash never leaves a stale lock.
/// </summary>
public sealed partial class StateLock : IDisposable
{
    public const string FileName = "agent.lock";
    private const string OwnerFileName = "agent.lock.owner";

    private readonly FileStream _stream;
    private readonly string _ownerPath;

    private StateLock(FileStream stream, string ownerPath)
    {
        _stream = stream;
        _ownerPath = ownerPath;
    }

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
            throw new AgentException(ExitCode.StateLocked,
                $"state folder {stateFolder} is in use by another agent ({DescribeHolder(owner)}). Wait for it to finish, or give this agent its own "
                    + $"stateFolder; " +
                "two agents must never share one.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new AgentException(ExitCode.Configuration, $"state folder {stateFolder} is not writable by this account: fix its permissions.", e);
        }
        AtomicFile.Write(owner, System.Text.Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId} on {Environment.MachineName}, since {DateTimeOffset.UtcNow:u}")));
        return new StateLock(stream, owner);
    }

    /// <summary>
    /// The owner record, only while it names a live process that started before it was written: a holder that has not yet
    /// written its record (or `status` probing the lock) would otherwise be reported as the last agent, long gone.
    /// </summary>
    private static string DescribeHolder(string ownerPath)
    {
        string record;
        try
        {
            record = File.Exists(ownerPath) ? File.ReadAllText(ownerPath).Trim() : "";
        }
        catch (IOException)
        {
            record = "";
        }
        var match = OwnerRecord().Match(record);
        const string Unknown = "this agent cannot tell which process holds it";
        if (!match.Success) return Unknown;
        if (!string.Equals(match.Groups["host"].Value, Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return record + ", on another machine";
        var pid = int.Parse(match.Groups["pid"].Value, CultureInfo.InvariantCulture);
        var since = DateTimeOffset.Parse(match.Groups["since"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            // A reused pid belongs to a process started after the record was written.
            return process.StartTime.ToUniversalTime() <= since.UtcDateTime.AddSeconds(1) ? record : Unknown;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return Unknown;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^pid (?<pid>\d+) on (?<host>\S+), since (?<since>.+)$")]
    private static partial System.Text.RegularExpressions.Regex OwnerRecord();

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

    /// <summary>Removes the owner record while still holding the lock, so no later contender reads it as the holder.</summary>
    public void Dispose()
    {
        try
        {
            File.Delete(_ownerPath);
        }
        catch (IOException)
        {
            // The record is checked against the live process anyway (DescribeHolder).
        }
        _stream.Dispose();
    }
}
