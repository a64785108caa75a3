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

    [Fact]
    public async Task Official_split_lists_keep_their_val_and_test_images_and_seeds_are_summarised()
    {
        using var dir = new TempDirectory();
        var images = TestImages.ClassFolder(dir.File("images"), classes: 2, perClass: 40, size: 28);
        // The images of both classes share names (img0000.png ...): give them class-unique names, as COVID-CT's are.
        foreach (var k in new[] { 0, 1 })
        {
            foreach (var file in Directory.GetFiles(Path.Combine(images, $"class{k}")))
                File.Move(file, Path.Combine(Path.GetDirectoryName(file)!, $"c{k}-{Path.GetFileName(file)}"));
        }
        var lists = Directory.CreateDirectory(dir.File("Data-split")).FullName;
        string[] Names(int k, int from, int to) =>
            [.. Enumerable.Range(from, to - from).Select(i => $"c{k}-img{i:D4}.{(i % 4 == 1 ? "jpg" : "png")}")];
        foreach (var k in new[] { 0, 1 })
        {
            await File.WriteAllLinesAsync(Path.Combine(lists, $"trainCT_{k}.txt"), Names(k, 0, 28));
            await File.WriteAllLinesAsync(Path.Combine(lists, $"valCT_{k}.txt"), Names(k, 28, 33));
            await File.WriteAllLinesAsync(Path.Combine(lists, $"testCT_{k}.txt"), Names(k, 33, 40));
        }

        var (code, log) = await LocalRunProcess.RunAsync(["experiments", "--data", images, "--split-lists", lists, "--classes", "class1,class0", "--name",
            "listed", "--epochs", "2", "--batch-size", "16", "--arms", "centralised", "single", "--seeds", "1", "2"], TimeSpan.FromMinutes(8),
            workingDirectory: dir.Path);
        code.Should().Be(0, log);

        var study = Path.Combine(dir.Path, "artifacts", "experiments", "listed");
        log.Should().Contain("14 test, 56 train, 10 validation; 0 image(s) in no list left out");
        foreach (var seed in new[] { 1, 2 })
        {
            using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, $"seed-{seed}", "results.json")));
            var split = results.RootElement.GetProperty("split");
            split.GetProperty("validation").GetInt32().Should().Be(10, "the listed validation images, whatever the seed");
            split.GetProperty("test").GetInt32().Should().Be(14);
            split.GetProperty("hospitals").EnumerateArray().Sum(h => h.GetProperty("samples").GetInt32()).Should().Be(56);
        }
        var manifest = await File.ReadAllLinesAsync(Path.Combine(study, "seed-1", "manifest.csv"));
        manifest[0].Should().Be("path,label,split");
        manifest.Count(l => l.EndsWith(",test", StringComparison.Ordinal) && l.Contains("c0-img0035", StringComparison.Ordinal)).Should().Be(1);

        using var summary = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "summary.json")));
        var centralised = summary.RootElement.GetProperty("arms").EnumerateArray().Single(a => a.GetProperty("arm").GetString() == "centralised");
        centralised.GetProperty("seeds").EnumerateArray().Select(s => s.GetInt64()).Should().Equal(1, 2);
        centralised.GetProperty("rocAuc").GetArrayLength().Should().Be(2);
        (await File.ReadAllTextAsync(Path.Combine(study, "summary.md"))).Should().Contain("| centralised | 1, 2 |");
    }
}
