namespace SplitFunctions.Core.Audit;

/// <summary>
/// Files with patient-derived content (the audit's pictures of test images, its figures, reports embedding them): on Unix
/// written 0600 in folders made 0700, so only the account that runs the tool reads them, whatever its umask.
/// </summary>
public static class PrivateFiles
{
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerFolder = OwnerFile | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates <paramref name="folder"/> as 0700; an existing one is narrowed to 0700 only when it is the tool's own
    /// (<paramref name="narrowExisting"/>), never a folder the user chose that holds other things.
    /// </summary>
    public static void CreateFolder(string folder, bool narrowExisting = true)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
            return;
        }
        var existed = Directory.Exists(folder);
        Directory.CreateDirectory(folder, OwnerFolder);
        if (!existed || narrowExisting) File.SetUnixFileMode(folder, OwnerFolder);
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> as a 0600 file (an existing file is narrowed first).</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerFile;
            if (File.Exists(path)) File.SetUnixFileMode(path, OwnerFile);
        }
        using var stream = new FileStream(path, options);
        stream.Write(bytes);
    }

    /// <summary><see cref="WriteAllBytes"/> for UTF-8 text (no byte order mark).</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));
}
