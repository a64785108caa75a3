using System.Text.Json;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>`splitfn-local experiments --data &lt;image folder&gt;`: a hospital-style folder of PNG/JPEG class subfolders feeds the local studies.</summary>
public sealed class ImageFolderExperimentsTests
{
    [Fact]
    public async Task Experiments_run_on_a_folder_of_class_subfolders()
    {
        using var dir = new TempDirectory();
        var images = TestImages.ClassFolder(dir.File("images"), classes: 2, perClass: 60, size: 28);

        var (code, log) = await LocalRunProcess.RunAsync(["experiments", "--data", images, "--name", "folder", "--epochs", "2", "--batch-size", "16",
            "--arms", "centralised"], TimeSpan.FromMinutes(5), workingDirectory: dir.Path);
        code.Should().Be(0, log);

        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(dir.Path, "artifacts", "experiments", "folder", "results.json")));
        var arm = results.RootElement.GetProperty("arms").EnumerateArray().Single();
        arm.GetProperty("arm").GetString().Should().Be("centralised");
        arm.GetProperty("test").GetProperty("classification").GetProperty("rocAuc").GetDouble().Should().BeGreaterThan(0.8, "quadrant pictures separate");
    }
}
