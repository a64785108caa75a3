using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Commands;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// `splitfn-agent init` (in process, no storage contacted) on a hospital's odd and hostile files: the data report names what
/// was skipped and why; a source with nothing usable, or one class only, is one line and the data exit code; --augmentation
/// writes data.augmentation, a bad one is one usage line.
/// </summary>
public sealed class AgentInitImagesTests
{
    private static async Task<(int Code, string Output, string Error, string Config)> Init(TempDirectory dir, params string[] data)
    {
        var config = dir.File($"{Guid.NewGuid():N}.json");
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AgentCli.InvokeAsync(["init", "--config", config, "--hospital", "hospital-a", "--run", "run-files", "--connection-string",
            "UseDevelopmentStorage=true", "--key-dir", dir.File("keys"), "--state", dir.File("state"), .. data], output, error);
        return (code, output.ToString(), error.ToString(), config);
    }

    [Fact]
    public async Task A_folder_of_odd_and_hostile_files_inits_with_a_report_of_what_was_skipped_and_why()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(dir.File("images"), classes: 2, perClass: 6, size: 16);
        File.WriteAllBytes(Path.Combine(root, "class0", "bomb.png"), PngDeclaring(60_000, 60_000));
        File.WriteAllBytes(Path.Combine(root, "class0", "zero.png"), []);
        File.WriteAllText(Path.Combine(root, "class1", "text.png"), "not an image");
        File.WriteAllBytes(Path.Combine(root, "class1", ".DS_Store"), [0, 0, 0, 1]);
        Directory.CreateDirectory(Path.Combine(root, "__MACOSX"));
        Directory.CreateSymbolicLink(Path.Combine(root, "class1", "loop"), root);
        new TestDicom { SopClass = TestDicom.MediaDirectory }.Add(0x00041130, "CS", "EXPORT").Save(Path.Combine(root, "class1", "DICOMDIR"));
        File.WriteAllBytes(Path.Combine(root, "class1", "CT 1.DCM"), TestDicom.Image(8, 8, frames: 2).Pixels16(Enumerable.Range(0, 128)).ToBytes());

        var (code, output, error, config) = await Init(dir, "--data", root, "--augmentation", "no-flip,rotation=5");
        code.Should().Be(0, error);
        output.Should().ContainAll("13 usable image(s) of 20 file(s) listed, 7 skipped", "PNG declares 60000x60000 pixels, over the 50 megapixels",
            "skipped 1: empty file", "skipped 1: hidden or system file (OS metadata)", "skipped 1: a DICOMDIR", "DICOM 16-bit MONOCHROME2, frame 1 of 2",
            "skipped 1: folder link to a folder already read");
        var augmentation = JsonNode.Parse(File.ReadAllText(config))!["data"]!["augmentation"]!;
        augmentation["horizontalFlip"]!.GetValue<bool>().Should().BeFalse();
        augmentation["maxRotationDegrees"]!.GetValue<double>().Should().Be(5);
    }

    [Fact]
    public async Task Nothing_usable_one_class_alone_or_a_bad_augmentation_is_one_line_and_its_exit_code()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("bombs/a"));
        Directory.CreateDirectory(dir.File("bombs/b"));
        File.WriteAllBytes(dir.File("bombs/a/1.png"), PngDeclaring(50_000, 50_000));
        File.WriteAllBytes(dir.File("bombs/b/2.png"), PngDeclaring(1_000_000, 1_000));
        var oneClass = ClassFolder(dir.File("one"), classes: 2, perClass: 3, size: 8);
        foreach (var file in Directory.GetFiles(Path.Combine(oneClass, "class1"))) File.Delete(file);
        var fine = ClassFolder(dir.File("fine"), classes: 2, perClass: 2, size: 8);

        var cases = new (string[] Arguments, int Code, string Text)[]
        {
            (["--data", dir.File("bombs")], 4, "no usable image (2 files listed; 1 PNG declares 50000x50000 pixels, over the 50 megapixels"),
            (["--data", oneClass], 4, "every usable image is class 'class0' (3 images): a classifier needs images of at least two classes"),
            (["--data", fine, "--augmentation", "spin=3"], 2, "--augmentation: augmentation 'spin=3' is not flip, no-flip"),
            (["--data", fine, "--augmentation", "rotation=90"], 2, "maxRotationDegrees must be 0 to 45, is 90"),
        };
        foreach (var (arguments, expected, text) in cases)
        {
            var (code, _, error, _) = await Init(dir, arguments);
            code.Should().Be(expected, error);
            var lines = error.Trim().Split('\n');
            lines.Should().HaveCount(2, error);
            lines[0].Should().Contain(text);
            lines[1].Should().StartWith($"exit code {expected} ");
        }
    }
}
