using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

/// <summary>Official split lists (COVID-CT's Data-split/ layout) turned into a manifest whose val and test images stay as listed.</summary>
public sealed class SplitListsTests
{
    // COVID-CT's layout: Data-split/<class>/{train,val,test}CT_<class>.txt, one file name a line.
    private static string Lists(string root, IReadOnlyDictionary<string, string[]> lists)
    {
        foreach (var (file, names) in lists)
        {
            var path = Path.Combine(root, file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllLines(path, names);
        }
        return root;
    }

    private static string[] Names(int cls, int from, int to) => [.. Enumerable.Range(from, to - from).Select(i => $"img{i:D4}.{(i % 4 == 1 ? "jpg" : "png")}")];

    [Fact]
    public void Listed_val_and_test_images_stay_in_their_split_and_only_train_images_are_shared()
    {
        using var dir = new TempDirectory();
        // class0 and class1 would collide by file name: the images carry the class in their names, as COVID-CT's do.
        var images = Path.Combine(dir.Path, "Images");
        ClassFolder(images, classes: 2, perClass: 20);
        foreach (var k in new[] { 0, 1 })
        {
            foreach (var file in Directory.GetFiles(Path.Combine(images, $"class{k}")))
                File.Move(file, Path.Combine(Path.GetDirectoryName(file)!, $"c{k}-{Path.GetFileName(file)}"));
        }
        string[] Named(int k, int from, int to) => [.. Names(k, from, to).Select(n => $"c{k}-{n}")];
        var lists = Lists(Path.Combine(dir.Path, "Data-split"), new Dictionary<string, string[]>
        {
            ["A/trainCT_A.txt"] = Named(0, 0, 12),
            ["A/valCT_A.txt"] = Named(0, 12, 15),
            ["A/testCT_A.txt"] = [.. Named(0, 15, 19), "", "c0-gone.png"],
            ["B/trainCT_B.txt"] = Named(1, 0, 10),
            ["B/valCT_B.txt"] = Named(1, 10, 14),
            ["B/testCT_B.txt"] = Named(1, 14, 20),
            ["B/readme.txt"] = ["not a list"],
        });

        var manifest = SplitLists.WriteManifest(images, lists, Path.Combine(dir.Path, "out", "manifest.csv"), ["class1", "class0"]);

        manifest.PerSplit.Should().Equal(new Dictionary<string, int> { ["test"] = 10, ["train"] = 22, ["validation"] = 7 });
        manifest.Unlisted.Should().Be(1, "c0-img0019 is in no list");
        manifest.ListedButMissing.Should().Equal("c0-gone.png");
        manifest.Classes.Should().Equal("class1", "class0");

        var options = new ImageSourceOptions { Path = manifest.Path, SplitColumn = "split", Classes = manifest.Classes };
        var shares = Enumerable.Range(0, 3).Select(h => ImageSourceLoader.Load(options, new ImageSplitRule(5, [7, 2, 1], h), 1, 8, 8)).ToList();
        shares.Sum(s => s.Train.Count).Should().Be(22);
        shares[0].Train.Count.Should().BeGreaterThan(shares[1].Train.Count).And.BeGreaterThan(shares[2].Train.Count);
        shares.Should().OnlyContain(s => s.Validation.Count == 7 && s.Test.Count == 10, "every hospital keeps the official val and test images");
        // class0 was named second: its test images (4 listed) carry label 1, class1's (6) label 0.
        shares[0].Test.Targets.Count(t => t == 1f).Should().Be(4);
        shares[0].Report.Counts["test"].Sum().Should().Be(10);
    }

    [Fact]
    public void A_name_in_two_splits_or_no_list_at_all_is_one_error()
    {
        using var dir = new TempDirectory();
        var images = ClassFolder(Path.Combine(dir.Path, "Images"), classes: 2, perClass: 4);
        var twice = Lists(Path.Combine(dir.Path, "twice"), new Dictionary<string, string[]>
        {
            ["train.txt"] = ["x1.png", "x2.png"],
            ["test.txt"] = ["x2.png"],
        });
        var act = () => SplitLists.Read(twice);
        act.Should().Throw<DataFormatException>().WithMessage("*'x2.png' is listed in both the test and the train lists*");

        var none = Lists(Path.Combine(dir.Path, "none"), new Dictionary<string, string[]> { ["notes.txt"] = ["x"] });
        act = () => SplitLists.Read(none);
        act.Should().Throw<DataFormatException>().WithMessage("*holds no split list: expected .txt files named train*, val* and test**");

        // ClassFolder names its images alike in every class folder: a listed name then matches two images.
        var clash = Lists(Path.Combine(dir.Path, "clash"), new Dictionary<string, string[]> { ["train.txt"] = ["img0000.png"] });
        var write = () => SplitLists.WriteManifest(images, clash, Path.Combine(dir.Path, "m.csv"));
        write.Should().Throw<DataFormatException>().WithMessage("*'img0000.png' matches 2 images*names must be unique*");
    }
}
