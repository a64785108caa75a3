namespace SplitFunctions.Tests;

/// <summary>The shared real data at ../shared/data beside the repository (never copied into it).</summary>
internal static class SharedData
{
    public static string Folder { get; } = System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot.Path, "..", "shared", "data"));

    public static string PneumoniaMnist => File(System.IO.Path.Combine("pneumoniamnist", "pneumoniamnist_28.npz"));

    public static string Lipids => File(System.IO.Path.Combine("lipids", "nhis_lipids.csv"));

    /// <summary>One small DICOM image per transfer syntax (from pydicom's test files).</summary>
    public static string DicomCodecs => Directory("dicom-codecs");

    /// <summary>100 CT slices with overview.csv (contrast yes/no, age).</summary>
    public static string DicomCt => Directory("dicom-ct");

    private static string Directory(string relative)
    {
        var path = System.IO.Path.Combine(Folder, relative);
        if (!System.IO.Directory.Exists(path))
            throw new InvalidOperationException($"shared test data {path} is missing: these tests need the real files in ../shared/data beside the repository "
                + $"(see ../shared/data/README.md).");
        return path;
    }

    private static string File(string relative)
    {
        var path = System.IO.Path.Combine(Folder, relative);
        if (!System.IO.File.Exists(path))
            throw new InvalidOperationException($"shared test data {path} is missing: these tests need the real files in ../shared/data beside the repository "
                + $"(see ../shared/data/README.md).");
        return path;
    }
}
