using System.Diagnostics;
using System.Globalization;

namespace SplitFunctions.Bench;

/// <summary>The process's peak resident memory (Linux VmHWM), resettable through /proc/self/clear_refs.</summary>
internal static class PeakMemory
{
    public static void Reset()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or not allowed: the peak then covers the whole process, which the figures' reader is told by the key.
        }
    }

    public static long PeakBytes()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status")
            .FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) : null;
        if (line is not null) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }
}
