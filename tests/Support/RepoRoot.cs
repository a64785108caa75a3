namespace SplitFunctions.Tests;

/// <summary>The repository root: the first folder above the test binaries holding SplitFunctions.sln.</summary>
internal static class RepoRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "SplitFunctions.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find SplitFunctions.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>A scratch folder deleted at the end of a test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => System.IO.Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "splitfn-test-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
