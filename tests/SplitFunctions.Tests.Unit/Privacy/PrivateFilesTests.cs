using SplitFunctions.Core.Audit;

namespace SplitFunctions.Tests.Privacy;

/// <summary>Patient-derived files (the audit's pictures, reports) are readable by their owner only.</summary>
public sealed class PrivateFilesTests
{
    [Fact]
    public void Audit_files_are_0600_in_a_0700_folder_whatever_was_there_before()
    {
        if (OperatingSystem.IsWindows()) return; // Unix modes only; Windows ACLs follow the user's profile folder.
        var root = Path.Combine(Path.GetTempPath(), "splitfn-private-" + Guid.NewGuid().ToString("N"));
        try
        {
            var folder = Path.Combine(root, "audit");
            Directory.CreateDirectory(folder);
            File.SetUnixFileMode(folder, (UnixFileMode)0b111_101_101);
            File.WriteAllText(Path.Combine(folder, "audit.png"), "old");
            File.SetUnixFileMode(Path.Combine(folder, "audit.png"), (UnixFileMode)0b110_100_100);

            PrivateFiles.CreateFolder(folder);
            PrivateFiles.WriteAllBytes(Path.Combine(folder, "audit.png"), [1, 2, 3]);
            PrivateFiles.WriteAllText(Path.Combine(folder, "audit.md"), "figures");

            File.GetUnixFileMode(folder).Should().Be((UnixFileMode)0b111_000_000);
            File.GetUnixFileMode(Path.Combine(folder, "audit.png")).Should().Be((UnixFileMode)0b110_000_000);
            File.GetUnixFileMode(Path.Combine(folder, "audit.md")).Should().Be((UnixFileMode)0b110_000_000);
            File.ReadAllBytes(Path.Combine(folder, "audit.png")).Should().Equal(1, 2, 3);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
