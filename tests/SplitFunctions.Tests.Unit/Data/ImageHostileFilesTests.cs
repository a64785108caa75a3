using System.Buffers.Binary;
using System.IO.Hashing;
using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

/// <summary>
/// A hospital's real files, odd or hostile, as an outside check would feed them: each decodes correctly or is skipped
/// with its reason, never a crash and never an allocation the header did not justify. Files are generated here.
/// </summary>
public sealed class ImageHostileFilesTests
{
    private static readonly ImageSplitRule OneHospital = new(Seed: 3, Weights: [1], Index: 0, ValidationFraction: 0.2, TestFraction: 0.2);

    [Theory]
    [InlineData(50_000, 50_000)]
    [InlineData(100_000, 1_000)]
    [InlineData(16_000_000, 16)]
    public void A_png_declaring_a_huge_size_is_refused_from_its_header(int width, int height)
    {
        var bomb = PngDeclaring(width, height);
        bomb.Length.Should().BeLessThan(100);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        Reason(bomb).Should().Contain("megapixels").And.Contain($"{width}x{height}");
        (GC.GetTotalAllocatedBytes(precise: true) - before).Should().BeLessThan(1 << 20, "refused before decoding");
    }

    [Fact]
    public void A_jpeg_declaring_a_huge_size_is_refused_from_its_header()
    {
        var jpeg = Jpeg(8, 8, 1, ClassPicture(8, 0, 1));
        var sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 60_000);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 60_000);
        Reason(jpeg).Should().Contain("megapixels").And.Contain("60000x60000");
    }

    [Fact]
    public async Task A_named_pipe_or_device_is_skipped_unopened_never_waited_on()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 3, size: 8);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(root, "class0", "pipe.png"), Path.Combine(root, "class1", "1.2.3")]))
            mkfifo.WaitForExit();
        File.CreateSymbolicLink(Path.Combine(root, "class1", "null.jpg"), "/dev/null");
        // Nothing waits on a pipe: a hang fails here after a minute instead of stalling the suite.
        var report = await Task.Run(() => ImageSourceLoader.Report(new ImageSourceOptions { Path = root }, OneHospital)).WaitAsync(TimeSpan.FromSeconds(60));
        report.Usable.Should().Be(6);
        report.SkipReasons.Should().BeEquivalentTo(new[] { ("empty file", 2), ("unsupported file type '.3'", 1) });
    }

    [Fact]
    public void A_multi_label_manifest_skips_rows_whose_flags_are_not_zero_or_one()
    {
        using var dir = new TempDirectory();
        for (var i = 0; i < 6; i++) File.WriteAllBytes(dir.File($"{i}.png"), Png(8, 8, PngKind.Grey, 8, ClassPicture(8, i % 2, i)));
        File.WriteAllLines(dir.File("labels.csv"), ["path,effusion,nodule", "0.png,1,1", "1.png,0,0", "2.png,yes,no", "3.png,,1", "4.png,2,0", "5.png,1,0"]);
        var report = ImageSourceLoader.Report(new ImageSourceOptions
        {
            Path = dir.File("labels.csv"),
            LabelColumns = ["effusion", "nodule"],
            LabelKind = ImageLabelKind.MultiLabel,
        }, OneHospital);
        report.Usable.Should().Be(4);
        report.Classes.Should().Equal("effusion", "nodule");
        report.SkipReasons.Should().BeEquivalentTo(new[]
        {
            ("label '' in column 'effusion' is not 0/1 (or true/false, yes/no)", 1),
            ("label '2' in column 'effusion' is not 0/1 (or true/false, yes/no)", 1),
        });
    }

    [Theory]
    [InlineData("png")]
    [InlineData("png16")]
    [InlineData("jpeg")]
    [InlineData("progressive")]
    public void Randomly_damaged_files_decode_or_are_refused_with_a_reason_never_another_failure(string kind)
    {
        // A small fuzz with a fixed seed: bytes flipped, runs zeroed, the file cut; every outcome is an image or a reason.
        byte[] original = kind switch
        {
            "png" => Png(24, 16, PngKind.Rgba, 8, ClassPicture(24, 1, 3, channels: 4).Take(24 * 16 * 4).ToArray()),
            "png16" => Png(16, 16, PngKind.Grey, 16, ClassPicture(16, 1, 3, max: 65535)),
            "jpeg" => Jpeg(24, 24, 3, ClassPicture(24, 1, 3, channels: 3)),
            _ => File.ReadAllBytes(Path.Combine(SharedData.Folder, "covid-ct", "Images", "CT_NonCOVID", "42.jpg")),
        };
        var random = new Random(7);
        var outcomes = new Dictionary<string, int>();
        for (var round = 0; round < 300; round++)
        {
            var bytes = (byte[])original.Clone();
            var start = random.Next(8, bytes.Length);
            switch (round % 3)
            {
                case 0:
                    for (var k = 0; k < 1 + random.Next(8); k++) bytes[random.Next(8, bytes.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    Array.Clear(bytes, start, Math.Min(bytes.Length - start, 1 + random.Next(64)));
                    break;
                default:
                    bytes = [.. bytes[..start], .. bytes[^12..]];
                    break;
            }
            var outcome = Reason(bytes);
            outcomes[outcome == "decoded" ? "decoded" : "refused"] = outcomes.GetValueOrDefault(outcome == "decoded" ? "decoded" : "refused") + 1;
        }
        outcomes.Values.Sum().Should().Be(300);
    }

    [Fact]
    public void One_pixel_and_very_wide_images_reach_the_network_input()
    {
        var dot = RasterImageDecoder.Decode(Png(1, 1, PngKind.Grey, 8, [51]));
        ImageFiles.Prepare(dot, 1, 8, 8).Should().HaveCount(64).And.OnlyContain(v => Math.Abs(v - 0.2f) < 1e-6f);

        var wide = RasterImageDecoder.Decode(Png(20_000, 10, PngKind.Grey, 8, [.. Enumerable.Range(0, 200_000).Select(i => i % 20_000 < 10_000 ? 0 : 255)]));
        var prepared = ImageFiles.Prepare(wide, 3, 16, 16);
        prepared.Should().HaveCount(3 * 256).And.OnlyContain(v => v >= 0 && v <= 1);
        // Left half black, right half white, whatever the reduction.
        prepared[0].Should().Be(0f);
        prepared[15].Should().Be(1f);
    }

    [Fact]
    public void Palette_with_transparency_and_sixteen_bit_grey_alpha_decode()
    {
        var palette = WithChunk(Png(2, 1, PngKind.Palette, 8, [10, 200]), "tRNS", [255, 0]);
        var image = RasterImageDecoder.Decode(palette);
        image.Channels.Should().Be(4);
        image.ToPlanes(1).Should().Equal([10 / 255f, 200 / 255f], (a, b) => Math.Abs(a - b) < 1e-6f);

        var greyAlpha = RasterImageDecoder.Decode(Png(2, 1, PngKind.GreyAlpha, 16, [1000, 65535, 60000, 0]));
        greyAlpha.Mode.Should().Be("PNG 16-bit grey+alpha");
        greyAlpha.ToPlanes(1).Should().Equal(1000 / 65535f, 60000 / 65535f);
    }

    [Theory]
    [InlineData(1, 8, 4, "left")]
    [InlineData(3, 8, 4, "right")]
    [InlineData(6, 4, 8, "top")]
    [InlineData(8, 4, 8, "bottom")]
    public void Exif_orientation_turns_the_jpeg_as_a_viewer_shows_it(int orientation, int width, int height, string white)
    {
        // 8x4 stored, left half white: orientation 6 means "turn 90 degrees clockwise to view".
        var stored = Enumerable.Range(0, 32).Select(i => i % 8 < 4 ? 255 : 0).ToArray();
        var image = RasterImageDecoder.Decode(WithExifOrientation(Jpeg(8, 4, 1, stored), orientation));
        (image.Width, image.Height).Should().Be((width, height));
        var grey = image.ToPlanes(1);
        float Mean(Func<int, int, bool> where) =>
            Enumerable.Range(0, grey.Length).Where(i => where(i % width, i / width)).Average(i => grey[i]);
        Func<int, int, bool> region = white switch
        {
            "left" => (x, _) => x < width / 2,
            "right" => (x, _) => x >= width / 2,
            "top" => (_, y) => y < height / 2,
            _ => (_, y) => y >= height / 2,
        };
        Mean(region).Should().BeGreaterThan(0.8f);
        Mean((x, y) => !region(x, y)).Should().BeLessThan(0.2f);
        if (orientation != 1) image.Mode.Should().EndWith($"EXIF orientation {orientation}");
    }

    [Fact]
    public void A_cmyk_jpeg_decodes_to_rgb()
    {
        // Adobe's inverted CMYK: 255 is no ink, so (255, 0, 0, 255) is full magenta and yellow: red; K = 128 greys everything.
        var image = RasterImageDecoder.Decode(CmykJpeg([(255, 0, 0, 255), (255, 255, 255, 128)]));
        (image.Width, image.Height, image.Channels).Should().Be((16, 8, 3));
        image.Mode.Should().Be("JPEG 8-bit RGB");
        int[] Rgb(int x) => [.. image.Pixels.Skip(x * 3).Take(3).Select(v => (int)Math.Round(v * 255))];
        Rgb(0).Should().Equal([255, 0, 0], (a, b) => Math.Abs(a - b) <= 2);
        Rgb(12).Should().Equal([128, 128, 128], (a, b) => Math.Abs(a - b) <= 2);
    }

    [Fact]
    public void A_progressive_adobe_jpeg_from_the_covid_ct_set_decodes()
    {
        var file = Path.Combine(SharedData.Folder, "covid-ct", "Images", "CT_NonCOVID", "39%3.jpg");
        var bytes = File.ReadAllBytes(file);
        bytes.AsSpan().IndexOf([(byte)0xFF, (byte)0xC2]).Should().BePositive("a progressive (SOF2) JPEG");
        var image = ImageFiles.Decode(file, bytes);
        image.Mode.Should().StartWith("JPEG 8-bit");
        image.Pixels.Max().Should().BeGreaterThan(image.Pixels.Min());
    }

    [Fact]
    public void Os_junk_hidden_files_and_symlink_loops_neither_become_classes_nor_hang()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 4);
        var png = File.ReadAllBytes(Path.Combine(root, "class0", "img0000.png"));
        Directory.CreateDirectory(Path.Combine(root, "__MACOSX", "class0"));
        File.WriteAllBytes(Path.Combine(root, "__MACOSX", "class0", "._img0000.png"), [0, 5, 22, 7, 0, 2, 0, 0]);
        Directory.CreateDirectory(Path.Combine(root, ".ipynb_checkpoints"));
        File.WriteAllBytes(Path.Combine(root, ".ipynb_checkpoints", "img.png"), png);
        File.WriteAllBytes(Path.Combine(root, ".DS_Store"), [0, 0, 0, 1]);
        File.WriteAllBytes(Path.Combine(root, "class0", ".DS_Store"), [0, 0, 0, 1]);
        File.WriteAllBytes(Path.Combine(root, "class0", "._img0001.png"), [0, 5, 22, 7]);
        File.WriteAllBytes(Path.Combine(root, "class1", "Thumbs.db"), [0xD0, 0xCF]);
        File.WriteAllBytes(Path.Combine(root, "class1", "desktop.ini"), "[x]"u8.ToArray());
        // A folder linking to itself and to its parent, a dangling link, and a link to a real image (kept).
        Directory.CreateSymbolicLink(Path.Combine(root, "class0", "loop"), Path.Combine(root, "class0"));
        Directory.CreateSymbolicLink(Path.Combine(root, "class1", "up"), root);
        File.CreateSymbolicLink(Path.Combine(root, "class1", "gone.png"), Path.Combine(dir.Path, "nowhere.png"));
        File.CreateSymbolicLink(Path.Combine(root, "class1", "linked.png"), Path.Combine(root, "class0", "img0000.png"));

        var data = ImageSourceLoader.Load(new ImageSourceOptions { Path = root }, OneHospital, 1, 8, 8);
        data.Report.Classes.Should().Equal("class0", "class1");
        data.Report.Usable.Should().Be(9);
        var reasons = data.Report.SkipReasons.ToDictionary(r => r.Reason, r => r.Count);
        reasons.Should().ContainKey("hidden or system file (OS metadata)").WhoseValue.Should().Be(5);
        reasons.Should().ContainKey("hidden or system folder (OS metadata, not a class)").WhoseValue.Should().Be(2);
        reasons.Keys.Should().Contain(r => r.StartsWith("cannot be read", StringComparison.Ordinal), "the dangling link");
        reasons.Should().ContainKey("folder link to a folder already read (a symbolic link loop or a second path to the same images)")
            .WhoseValue.Should().Be(2);
    }

    [Fact]
    public void Unicode_and_spaced_names_upper_case_extensions_and_misnamed_files_are_read_by_content()
    {
        using var dir = new TempDirectory();
        var a = Directory.CreateDirectory(Path.Combine(dir.Path, "pneumonía sí")).FullName;
        var b = Directory.CreateDirectory(Path.Combine(dir.Path, "normal 正常")).FullName;
        var png = Png(12, 12, PngKind.Grey, 8, ClassPicture(12, 0, 1));
        File.WriteAllBytes(Path.Combine(a, "ïmage 01 é.PNG"), png);
        File.WriteAllBytes(Path.Combine(a, "really a png.jpg"), png);
        File.WriteAllBytes(Path.Combine(a, "X.JPEG"), Jpeg(12, 12, 1, ClassPicture(12, 0, 2)));
        File.WriteAllBytes(Path.Combine(b, "scan.DCM"), TestDicom.Image(4, 4).Pixels16(Enumerable.Range(0, 16)).ToBytes());
        File.WriteAllBytes(Path.Combine(b, "1.2.840.113619.2.55"), TestDicom.Image(4, 4).Pixels16(Enumerable.Range(0, 16)).ToBytes());
        File.WriteAllText(Path.Combine(b, "notes.png"), "this is text");
        File.WriteAllBytes(Path.Combine(b, "empty.png"), []);

        var report = ImageSourceLoader.Report(new ImageSourceOptions { Path = dir.Path }, OneHospital);
        report.Classes.Should().Equal("normal 正常", "pneumonía sí");
        report.Usable.Should().Be(5);
        report.SkipReasons.Should().BeEquivalentTo(new[] { ("not a PNG or JPEG file (unknown signature)", 1), ("empty file", 1) });
    }

    [Fact]
    public void Empty_and_single_image_classes_load_but_one_class_alone_is_one_error()
    {
        using var dir = new TempDirectory();
        var root = ClassFolder(Path.Combine(dir.Path, "images"), classes: 2, perClass: 6);
        Directory.CreateDirectory(Path.Combine(root, "class2"));
        Directory.CreateDirectory(Path.Combine(root, "class3"));
        File.Copy(Path.Combine(root, "class0", "img0000.png"), Path.Combine(root, "class3", "only.png"));
        var report = ImageSourceLoader.Report(new ImageSourceOptions { Path = root }, OneHospital);
        report.Classes.Should().Equal("class0", "class1", "class2", "class3");
        report.Counts.Values.Sum(c => c[2]).Should().Be(0);
        report.Counts.Values.Sum(c => c[3]).Should().Be(1);

        foreach (var file in Directory.GetFiles(Path.Combine(root, "class1"))) File.Delete(file);
        Directory.Delete(Path.Combine(root, "class2"));
        Directory.Delete(Path.Combine(root, "class3"), recursive: true);
        var act = () => ImageSourceLoader.Load(new ImageSourceOptions { Path = root }, OneHospital, 1, 8, 8);
        act.Should().Throw<DataFormatException>().WithMessage("*every usable image is class 'class0'*at least two classes*");
    }

    [Fact]
    public void A_messy_manifest_is_read_and_its_bad_rows_skipped_with_their_line()
    {
        using var dir = new TempDirectory();
        var images = Directory.CreateDirectory(Path.Combine(dir.Path, "data", "img")).FullName;
        for (var i = 0; i < 8; i++) File.WriteAllBytes(Path.Combine(images, $"a, b {i}.png"), Png(8, 8, PngKind.Grey, 8, ClassPicture(8, i % 2, i)));
        var outside = Path.Combine(dir.Path, "secret.png");
        File.WriteAllBytes(outside, Png(8, 8, PngKind.Grey, 8, ClassPicture(8, 0, 99)));
        var lines = new List<string> { "path,label" };
        for (var i = 0; i < 6; i++) lines.Add($"\"img/a, b {i}.png\",{(i % 2 == 0 ? "normal" : "covid")}");
        lines.Add("\"img/a, b 0.png\",normal");
        lines.Add("\"img/a, b 1.png\",normal");
        lines.Add("\"img/a, b 6.png\",");
        lines.Add("../secret.png,normal");
        lines.Add($"{outside},normal");
        lines.Add("\"img/a, b 7.png\",normal;covid");
        var manifest = Path.Combine(dir.Path, "data", "labels.csv");
        // A spreadsheet's export: UTF-8 with a byte-order mark, Windows line ends.
        File.WriteAllText(manifest, string.Join("\r\n", lines) + "\r\n", new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));

        var report = ImageSourceLoader.Report(new ImageSourceOptions { Path = manifest, Classes = ["normal", "covid"] }, OneHospital);
        // The absolute path is read where it is (SplitLists writes such manifests); the relative one climbing out is refused.
        report.Usable.Should().Be(7);
        report.SkipReasons.Should().BeEquivalentTo(new[]
        {
            ("listed again (first at manifest line 2)", 1),
            ("listed again with another label (first at manifest line 3)", 1),
            ("label '' is not a class (normal, covid)", 1),
            ("relative path leaves the image folder (data.images.imageRoot)", 1),
            ("label 'normal;covid' is not a class (normal, covid)", 1),
        });
    }

    [Fact]
    public void A_class_seen_only_in_the_test_rows_is_skipped_when_classes_are_named_and_counted_as_a_class_otherwise()
    {
        using var dir = new TempDirectory();
        var lines = new List<string> { "path\tlabel\tsplit" };
        for (var i = 0; i < 12; i++)
        {
            File.WriteAllBytes(dir.File($"{i}.png"), Png(8, 8, PngKind.Grey, 8, ClassPicture(8, i % 2, i)));
            lines.Add($"{i}.png\t{(i % 2 == 0 ? "normal" : "covid")}\t{(i < 8 ? "train" : i < 10 ? "val" : "test")}");
        }
        File.WriteAllBytes(dir.File("new.png"), Png(8, 8, PngKind.Grey, 8, ClassPicture(8, 0, 99)));
        lines.Add("new.png\tcovid-omicron\ttest");
        File.WriteAllLines(dir.File("labels.tsv"), lines);
        var options = new ImageSourceOptions { Path = dir.File("labels.tsv"), SplitColumn = "split", Classes = ["normal", "covid"] };

        var named = ImageSourceLoader.Report(options, OneHospital);
        named.Usable.Should().Be(12);
        named.SkipReasons.Should().Equal([("label 'covid-omicron' is not a class (normal, covid)", 1)]);
        // Unnamed, it is a third class: a binary run then stops with one line (found 3 classes, the network takes 2).
        var found = ImageSourceLoader.Report(options with { Classes = null }, OneHospital);
        found.Classes.Should().Equal("covid", "covid-omicron", "normal");
        found.Counts["train"][1].Should().Be(0);
        found.Counts["test"][1].Should().Be(1);
    }

    [Fact]
    public void A_multi_frame_dicom_gives_its_first_frame_and_says_so()
    {
        using var dir = new TempDirectory();
        var frames = Enumerable.Range(0, 3).SelectMany(f => Enumerable.Repeat(f * 100, 16).Select((v, i) => v + i));
        var path = dir.File("multi.dcm");
        TestDicom.Image(4, 4, frames: 3).Pixels16(frames).Save(path);
        var image = ImageFiles.Read(path);
        image.Mode.Should().Contain("frame 1 of 3");
        image.Pixels.Should().Equal(Enumerable.Range(0, 16).Select(i => i / 15f));
    }

    [Theory]
    [InlineData("RGB")]
    [InlineData("YBR_FULL")]
    [InlineData("YBR_FULL_422")]
    public void Colour_dicom_in_rgb_and_ybr_gives_the_same_colours(string photometric)
    {
        using var dir = new TempDirectory();
        // Two pixels: pure red then pure green (4 x 1, pairs share chroma in 4:2:2, so pixels 0-1 red, 2-3 green).
        (int R, int G, int B)[] rgb = [(255, 0, 0), (255, 0, 0), (0, 255, 0), (0, 255, 0)];
        static (int Y, int Cb, int Cr) Ybr((int R, int G, int B) c) => ((int)Math.Round((0.299 * c.R) + (0.587 * c.G) + (0.114 * c.B)),
            Math.Min(255, (int)Math.Round(128 - (0.168736 * c.R) - (0.331264 * c.G) + (0.5 * c.B))),
            Math.Min(255, (int)Math.Round(128 + (0.5 * c.R) - (0.418688 * c.G) - (0.081312 * c.B))));
        int[] samples = photometric switch
        {
            "RGB" => [.. rgb.SelectMany(c => new[] { c.R, c.G, c.B })],
            "YBR_FULL" => [.. rgb.Select(Ybr).SelectMany(c => new[] { c.Y, c.Cb, c.Cr })],
            // 4:2:2: Y0 Y1 Cb Cr for each pair of pixels.
            _ => [.. rgb.Chunk(2).SelectMany(p => new[] { Ybr(p[0]).Y, Ybr(p[1]).Y, Ybr(p[0]).Cb, Ybr(p[0]).Cr })],
        };
        var path = dir.File("colour.dcm");
        TestDicom.Image(4, 1, samples: 3, bits: 8, photometric: photometric).Pixels8(samples).Save(path);
        var image = ImageFiles.Read(path);
        image.Channels.Should().Be(3);
        image.Pixels.Select(v => (int)Math.Round(v * 255)).Should().Equal(rgb.SelectMany(c => new[] { c.R, c.G, c.B }), (a, b) => Math.Abs(a - b) <= 2);
    }

    [Fact]
    public void Signed_pixels_odd_rescale_and_multi_valued_windows_follow_the_standard()
    {
        using var dir = new TempDirectory();
        var values = new[] { -1000, -500, 0, 500 };
        DecodedImage Read(string name, Action<TestDicom> edit)
        {
            var dicom = TestDicom.Image(4, 1, signed: true).Pixels16(values);
            edit(dicom);
            dicom.Save(dir.File(name));
            return ImageFiles.Read(dir.File(name));
        }

        // No rescale: the signed values themselves, scaled by their own range.
        Read("plain.dcm", _ => { }).Pixels.Should().Equal(0f, 1 / 3f, 2 / 3f, 1f);
        // A zero slope (invalid: every value would be the intercept) is read as 1 by GDCM, so the image keeps its contrast.
        var zero = Read("zero.dcm", d => d.Add(0x00281053, "DS", "0").Add(0x00281052, "DS", "-1024"));
        zero.Pixels.Should().Equal(0f, 1 / 3f, 2 / 3f, 1f);
        // A slope of 2 with the file's window in modality units: -1000 x 2 = -2000 clips low, 500 x 2 = 1000 sits at the top.
        var scaled = Read("slope.dcm", d => d.Add(0x00281053, "DS", "2").Add(0x00281052, "DS", "0").Add(0x00281050, "DS", "0")
            .Add(0x00281051, "DS", "2000"));
        scaled.Pixels.Should().Equal(0f, 0f, 0.5f, 1f);
        // Two windows ("center1\center2"): the first, as pydicom's apply_voi_lut.
        var window = Read("window.dcm", d => d.Add(0x00281050, "DS", "0\\300").Add(0x00281051, "DS", "1000\\3000"));
        window.Mode.Should().EndWith("file window");
        window.Pixels.Should().Equal(0f, 0f, 0.5f, 1f);
    }

    [Fact]
    public void Dicom_without_pixels_a_dicomdir_and_an_undecodable_compression_are_skipped_with_their_reason()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("a"));
        Directory.CreateDirectory(dir.File("b"));
        TestDicom.Image(4, 4).Pixels16(Enumerable.Range(0, 16)).Save(dir.File("a/good.dcm"));
        TestDicom.Image(4, 4).Pixels16(Enumerable.Range(0, 16)).Save(dir.File("b/good.dcm"));
        TestDicom.Image(4, 4).Save(dir.File("a/header-only.dcm"));
        new TestDicom { SopClass = TestDicom.MediaDirectory }.Add(0x00041130, "CS", "EXPORT").Save(dir.File("a/DICOMDIR"));
        // HTJ2K (2023), which GDCM 3.0 does not decode.
        TestDicom.Image(4, 4, transferSyntax: "1.2.840.10008.1.2.4.201").Encapsulated([0xFF, 0x4F, 0xFF, 0x51, 1, 2, 3, 4]).Save(dir.File("a/htj2k.dcm"));
        // A JPEG 2000 file whose code stream is garbage.
        TestDicom.Image(4, 4, transferSyntax: "1.2.840.10008.1.2.4.90").Encapsulated([1, 2, 3, 4, 5, 6, 7, 8]).Save(dir.File("a/bad-j2k.dcm"));
        TestDicom.Image(65_535, 65_535).Pixels16([1, 2]).Save(dir.File("b/huge.dcm"));

        var report = ImageSourceLoader.Report(new ImageSourceOptions { Path = dir.Path }, OneHospital);
        report.Usable.Should().Be(2);
        var reasons = report.Skipped.ToDictionary(s => Path.GetFileName(s.Path), s => s.Reason);
        reasons["header-only.dcm"].Should().Contain("without pixel data");
        reasons["DICOMDIR"].Should().Contain("DICOMDIR");
        reasons["htj2k.dcm"].Should().Contain("1.2.840.10008.1.2.4.201");
        reasons["bad-j2k.dcm"].Should().Contain("could not decode");
        reasons["huge.dcm"].Should().Contain("megapixels");
    }

    private static string Reason(byte[] bytes)
    {
        try
        {
            ImageFiles.Decode("x", bytes);
            return "decoded";
        }
        catch (UnusableImageException e)
        {
            return e.Reason;
        }
    }

    // Inserts a chunk just before IDAT (tRNS must follow PLTE and precede IDAT).
    private static byte[] WithChunk(byte[] png, string type, byte[] data)
    {
        var idat = png.AsSpan().IndexOf("IDAT"u8) - 4;
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        typed.CopyTo(chunk, 4);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32.HashToUInt32(typed));
        return [.. png[..idat], .. chunk, .. png[idat..]];
    }

    // An APP1 Exif segment (little-endian TIFF, one IFD entry: Orientation) right after the JPEG's start-of-image marker.
    private static byte[] WithExifOrientation(byte[] jpeg, int orientation)
    {
        byte[] tiff = [(byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0, 0, 0, 0, 0];
        byte[] exif = [.. "Exif\0\0"u8, .. tiff];
        var segment = new byte[4 + exif.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(exif.Length + 2));
        exif.CopyTo(segment, 4);
        return [.. jpeg[..2], .. segment, .. jpeg[2..]];
    }
}
