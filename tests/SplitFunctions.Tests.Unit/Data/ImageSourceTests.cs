using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

/// <summary>Image folders and manifests: listing, labels, skipped files, splits by patient, on-demand decoding with a bounded cache, the report.</summary>
public sealed class ImageSourceTests
{
    private static readonly ImageSplitRule OneHospital = new(Seed: 3, Weights: [1], Index: 0, ValidationFraction: 0.2, TestFraction: 0.2);

    [Fact]
    public void A_class_folder_loads_every_mode_and_normalises_with_training_statistics()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 20);
        var data = ImageSourceLoader.Load(new ImageSourceOptions { Path = root }, OneHospital, 1, 16, 16);

        (data.Train.Count + data.Validation.Count + data.Test.Count).Should().Be(40);
        data.Validation.Count.Should().Be(8);
        data.Train.SampleShape.Should().Equal(1, 16, 16);
        data.Train.Targets.Should().Contain(0f).And.Contain(1f).And.OnlyContain(t => t == 0f || t == 1f);
        data.Train.IsOnDemand.Should().BeTrue();
        // Normalised with the training split's own mean and deviation.
        var train = data.Train.Features;
        train.Average(v => (double)v).Should().BeApproximately(0, 1e-3);
        Math.Sqrt(train.Average(v => (double)v * v)).Should().BeApproximately(1, 1e-2);

        data.Report.Modes.Keys.Should().BeEquivalentTo("PNG 8-bit grey", "JPEG 8-bit RGB", "PNG 16-bit grey", "PNG 8-bit RGBA");
        data.Report.Classes.Should().Equal("class0", "class1");
        data.Report.Counts["train"].Sum().Should().Be(data.Train.Count);
        data.Report.Smallest.Should().Be((32, 32));
        data.Report.Largest.Should().Be((48, 48));
        data.Report.ToString().Should().Contain("40 usable image(s) of 40 file(s) listed, 0 skipped");
    }

    [Fact]
    public void Unreadable_truncated_and_foreign_files_are_skipped_and_counted_with_their_reason()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 8);
        var png = File.ReadAllBytes(Path.Combine(root, "class0", "img0000.png"));
        File.WriteAllBytes(Path.Combine(root, "class0", "cut.png"), png[..(png.Length / 2)]);
        File.WriteAllBytes(Path.Combine(root, "class1", "fake.jpg"), "not an image"u8.ToArray());
        File.WriteAllText(Path.Combine(root, "class1", "notes.txt"), "hello");
        File.WriteAllText(Path.Combine(root, "README.md"), "hello");

        var data = ImageSourceLoader.Load(new ImageSourceOptions { Path = root }, OneHospital, 1, 8, 8);
        data.Report.Usable.Should().Be(16);
        data.Report.Listed.Should().Be(20);
        data.Report.SkipReasons.Should().BeEquivalentTo(new[]
        {
            ("truncated PNG (no IEND chunk at the end)", 1),
            ("not a PNG or JPEG file (unknown signature)", 1),
            ("unsupported file type '.txt'", 1),
            ("not inside a class subfolder", 1),
        });
        data.Report.ToString().Should().Contain("skipped 1: truncated PNG");
    }

    [Fact]
    public void A_source_with_no_usable_image_is_one_error_naming_the_reasons()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.Path, "a"));
        Directory.CreateDirectory(Path.Combine(dir.Path, "b"));
        File.WriteAllText(Path.Combine(dir.Path, "a", "x.png"), "not a png");
        var act = () => ImageSourceLoader.Load(new ImageSourceOptions { Path = dir.Path }, OneHospital, 1, 8, 8);
        act.Should().Throw<DataFormatException>().WithMessage("*no usable image (1 files listed; 1 not a PNG or JPEG file (unknown signature))*");

        var one = () => ImageSourceLoader.Load(new ImageSourceOptions { Path = Path.Combine(dir.Path, "a") }, OneHospital, 1, 8, 8);
        one.Should().Throw<DataFormatException>().WithMessage("*found 0 class subfolder(s)*at least two*");
        var missing = () => ImageSourceLoader.Load(new ImageSourceOptions { Path = Path.Combine(dir.Path, "nowhere") }, OneHospital, 1, 8, 8);
        missing.Should().Throw<DataFormatException>().WithMessage("*neither a folder nor a manifest file exists*");
    }

    [Fact]
    public void A_manifest_with_split_and_patient_columns_keeps_patients_whole()
    {
        using var dir = new TempDirectory();
        var lines = new List<string> { "file\tdiagnosis\tpatient\tpartition" };
        for (var i = 0; i < 30; i++)
        {
            var cls = i % 3;
            var name = $"p{i / 2}_{i % 2}.png";
            File.WriteAllBytes(Path.Combine(dir.Path, name), Png(12, 12, PngKind.Grey, 8, ClassPicture(12, cls, i)));
            var split = (i / 2) % 5 == 0 ? "test" : (i / 2) % 5 == 1 ? "val" : "train";
            lines.Add($"{name}\t{new[] { "normal", "viral", "bacterial" }[cls]}\tpatient{i / 2}\t{split}");
        }
        lines.Add("missing.png\tnormal\tpatient99\ttrain");
        File.WriteAllBytes(Path.Combine(dir.Path, "extra.png"), Png(12, 12, PngKind.Grey, 8, ClassPicture(12, 0, 77)));
        lines.Add("extra.png\tfungal\tpatient99\ttest");
        lines.Add("p0_0.png\tviral\tpatient0\ttest");
        var manifest = Path.Combine(dir.Path, "labels.tsv");
        File.WriteAllLines(manifest, lines);
        var options = new ImageSourceOptions
        {
            Path = manifest,
            PathColumn = "file",
            LabelColumns = ["diagnosis"],
            GroupColumn = "patient",
            SplitColumn = "partition",
            Classes = ["normal", "viral", "bacterial"],
        };

        var shares = Enumerable.Range(0, 2).Select(h => ImageSourceLoader.Load(options, OneHospital with { Weights = [1, 1], Index = h }, 1, 8, 8)).ToList();
        shares[0].Test.Count.Should().Be(6);
        shares[0].Validation.Count.Should().Be(6);
        (shares[0].Train.Count + shares[1].Train.Count).Should().Be(18);
        shares[0].Train.Targets.Should().Contain(2f, "classes are numbered in the configured order");
        shares[0].Report.SkipReasons.Should().BeEquivalentTo(new[] { ("file not found", 1), ("label 'fungal' is not a class (normal, viral, bacterial)", 1),
            ("listed again with another label (first at manifest line 2)", 1) });

        // The two hospitals' training patients never meet: each patient's two images land together.
        var report = shares[0].Report.ToString();
        report.Should().Contain("train (other hospitals)");

        File.WriteAllBytes(Path.Combine(dir.Path, "p1_9.png"), Png(12, 12, PngKind.Grey, 8, ClassPicture(12, 0, 78)));
        File.AppendAllLines(manifest, ["p1_9.png\tnormal\tpatient1\ttest"]);
        var straddle = () => ImageSourceLoader.Load(options, OneHospital, 1, 8, 8);
        straddle.Should().Throw<DataFormatException>().WithMessage("*patient 'patient1' has images in*a patient's images must all be in one split*");
    }

    [Fact]
    public void Without_a_split_column_patients_are_drawn_whole_into_one_split()
    {
        var entries = Enumerable.Range(0, 200).Select(i => new ImageEntry($"f{i}", [i % 2], null, $"patient{i / 4}")).ToList();
        var (train, validation, test, _) = ImageSourceLoader.Split(entries, new ImageSplitRule(9, [1], 0, 0.1, 0.1), "x");
        string Patient(int row) => entries[row].Group!;
        var sets = new[] { train, validation, test }.Select(rows => rows.Select(Patient).ToHashSet()).ToList();
        sets[0].Should().NotIntersectWith(sets[1]).And.NotIntersectWith(sets[2]);
        sets[1].Should().NotIntersectWith(sets[2]);
        (train.Length + validation.Length + test.Length).Should().Be(200);
        validation.Length.Should().Be(20, "10% of 50 patients, 4 images each");
    }

    [Fact]
    public void Byte_identical_images_in_different_splits_are_flagged()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 20);
        // The same file twice under different names: with 40% held out, some copy lands outside train.
        var original = File.ReadAllBytes(Path.Combine(root, "class0", "img0000.png"));
        for (var i = 0; i < 6; i++) File.WriteAllBytes(Path.Combine(root, "class0", $"copy{i}.png"), original);
        var report = ImageSourceLoader.Report(new ImageSourceOptions { Path = root }, OneHospital);
        report.CrossSplitDuplicates.Should().ContainSingle().Which.Should().HaveCount(7);
        report.ToString().Should().Contain("WARNING: 1 set(s) of byte-identical images sit in different splits");
    }

    [Fact]
    public void On_demand_samples_decode_again_past_the_cache_and_hold_at_most_its_capacity()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 10);
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order().ToArray();
        var stats = new ChannelStatistics([0f], [1f]);
        // Room for 5 images of 1x16x16 floats.
        var samples = new ImageSamples(files, 1, 16, 16, stats, null, 5 * 16 * 16 * sizeof(float));
        samples.Capacity.Should().Be(5);
        var buffer = new float[16 * 16];
        for (var epoch = 0; epoch < 2; epoch++)
            for (var i = 0; i < files.Length; i++) samples.Read(i, buffer);
        samples.Decoded.Should().Be(40, "20 images, twice: the cache holds 5");
        for (var i = 0; i < 3; i++) samples.Read(files.Length - 1, buffer);
        samples.Decoded.Should().Be(40, "the last image read is cached");

        var set = new TrainingSet(samples, new float[files.Length], [1, 16, 16]);
        var batch = new float[2 * 256];
        var targets = new float[2];
        set.Gather([3, 7], batch, targets);
        batch.AsSpan(0, 256).ToArray().Should().Equal(ImageFiles.Prepare(ImageFiles.Read(files[3]), 1, 16, 16));
    }

    [Fact]
    public void A_whole_folder_loads_into_memory_for_the_local_studies()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 3, perClass: 4);
        var (images, report, _) = ImageSourceLoader.LoadAll(new ImageSourceOptions { Path = root }, 1, 16, 16);
        (images.Count, images.Channels, images.Height, images.Width).Should().Be((12, 1, 16, 16));
        images.Labels.Should().Equal(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2);
        images.Images.Should().OnlyContain(v => v >= 0 && v <= 1);
        report.Usable.Should().Be(12);
    }

    [Fact]
    public void A_manifest_of_dicom_files_keyed_by_file_name_reads_labels_from_its_csv()
    {
        var options = new ImageSourceOptions
        {
            Path = Path.Combine(SharedData.DicomCt, "overview.csv"),
            ImageRoot = Path.Combine(SharedData.DicomCt, "dicom_dir"),
            PathColumn = "dicom_name",
            LabelColumns = ["Contrast"],
            Window = new DicomWindow(40, 400),
        };
        var data = ImageSourceLoader.Load(options, new ImageSplitRule(1, [1], 0, 0.1, 0.1), 1, 32, 32);
        data.Report.Usable.Should().Be(100);
        data.Report.Classes.Should().Equal("0", "1");
        data.Report.Modes.Keys.Should().OnlyContain(m => m.StartsWith("DICOM", StringComparison.Ordinal) && m.EndsWith("set window", StringComparison.Ordinal));
        var counts = data.Report.Counts.Values.Aggregate(new int[2], (a, c) => [a[0] + c[0], a[1] + c[1]]);
        counts.Should().Equal(50, 50);
        // File names carry the label (CONTRAST_1): the CSV's True/False agree with them.
        var labelled = data.Train.Targets;
        labelled.Should().Contain(0f).And.Contain(1f);
    }
}
