using System.IO.Compression;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// A saved PyTorch state (a zip archive) as its entries' names and contents: two saves of the same state differ in
/// the entries' modification times (two-second resolution), so comparing the bytes whole fails across a second boundary.
/// </summary>
internal static class SavedState
{
    public static IReadOnlyList<(string Name, byte[] Content)> Entries(byte[] saved)
    {
        using var archive = new ZipArchive(new MemoryStream(saved), ZipArchiveMode.Read);
        return [.. archive.Entries.Select(e =>
        {
            using var content = new MemoryStream();
            using (var stream = e.Open()) stream.CopyTo(content);
            return (e.FullName, content.ToArray());
        })];
    }
}
