using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>
/// DICOM through GDCM on ../shared/data/dicom-codecs: the same MR image in six transfer syntaxes decodes to the same
/// pixels; CT, 12-bit lossy JPEG and RGB (JPEG, RLE) files decode; rescale, window and MONOCHROME1 behave.
/// (scripts/setup.sh installs libgdcm-cil for the test command.)
/// </summary>
public sealed class DicomDecodingTests
{
    private static string File(string name) => Path.Combine(SharedData.DicomCodecs, name);

    [Theory]
    [InlineData("MR_small_implicit.dcm")]
    [InlineData("MR_small_bigendian.dcm")]
    [InlineData("MR_small_RLE.dcm")]
    [InlineData("MR_small_jp2klossless.dcm")]
    [InlineData("MR_small_jpeg_ls_lossless.dcm")]
    public void Every_lossless_transfer_syntax_gives_the_explicit_little_endian_pixels(string name)
    {
        var reference = DicomImageDecoder.Decode(File("MR_small.dcm"));
        var image = DicomImageDecoder.Decode(File(name));
        (image.Width, image.Height, image.Channels).Should().Be((64, 64, 1));
        image.Pixels.Should().Equal(reference.Pixels);
        image.Mode.Should().Be("DICOM 16-bit MONOCHROME2, file window");
        reference.Pixels.Distinct().Count().Should().BeGreaterThan(100, "a real image, not a constant");
    }

    [Theory]
    [InlineData("CT_small.dcm", 128, 128, 1)]
    [InlineData("JPEG-lossy.dcm", 256, 1024, 1)]
    [InlineData("SC_rgb_jpeg_dcmtk.dcm", 100, 100, 3)]
    [InlineData("SC_rgb_rle.dcm", 100, 100, 3)]
    public void Ct_lossy_jpeg_and_colour_files_decode(string name, int width, int height, int channels)
    {
        var image = DicomImageDecoder.Decode(File(name));
        (image.Width, image.Height, image.Channels).Should().Be((width, height, channels));
        image.Pixels.Should().OnlyContain(v => v >= 0 && v <= 1);
        image.Pixels.Max().Should().BeGreaterThan(image.Pixels.Min());
    }

    [Fact]
    public void Rgb_jpeg_and_rgb_rle_of_the_same_picture_agree()
    {
        // pydicom's SC_rgb files hold one picture; JPEG's YBR is converted to RGB, so they differ only by JPEG's loss.
        var jpeg = DicomImageDecoder.Decode(File("SC_rgb_jpeg_dcmtk.dcm"));
        var rle = DicomImageDecoder.Decode(File("SC_rgb_rle.dcm"));
        jpeg.Pixels.Zip(rle.Pixels, (a, b) => Math.Abs(a - b)).Average().Should().BeLessThan(0.02f);
    }

    [Fact]
    public void A_configured_window_clips_hounsfield_units()
    {
        // CT_small has rescale slope 1 and intercept -1024: a window of [0, 1] HU makes almost every pixel 0 or 1.
        var narrow = DicomImageDecoder.Decode(File("CT_small.dcm"), new DicomWindow(0.5, 1));
        narrow.Mode.Should().EndWith("set window");
        narrow.Pixels.Count(v => v is > 0f and < 1f).Should().BeLessThan(narrow.Pixels.Length / 20);
        var wide = DicomImageDecoder.Decode(File("CT_small.dcm"), new DicomWindow(0, 4000));
        wide.Pixels.Distinct().Count().Should().BeGreaterThan(100);
    }

    [Fact]
    public void Monochrome1_is_inverted_so_bright_means_dense()
    {
        using var dir = new TempDirectory();
        var bytes = System.IO.File.ReadAllBytes(File("MR_small.dcm"));
        // Rewrite MONOCHROME2 as MONOCHROME1 (same length) in the header.
        var text = "MONOCHROME2"u8.ToArray();
        var at = bytes.AsSpan().IndexOf(text);
        at.Should().BePositive();
        bytes[at + 10] = (byte)'1';
        var inverted = Path.Combine(dir.Path, "mono1.dcm");
        System.IO.File.WriteAllBytes(inverted, bytes);

        var window = new DicomWindow(500, 1000);
        var normal = DicomImageDecoder.Decode(File("MR_small.dcm"), window);
        var mono1 = DicomImageDecoder.Decode(inverted, window);
        mono1.Mode.Should().StartWith("DICOM 16-bit MONOCHROME1");
        mono1.Pixels.Zip(normal.Pixels, (a, b) => a + b).Should().OnlyContain(s => Math.Abs(s - 1f) < 1e-6f);
    }

    [Fact]
    public void A_truncated_dicom_file_is_skipped_with_a_reason()
    {
        using var dir = new TempDirectory();
        var bytes = System.IO.File.ReadAllBytes(File("CT_small.dcm"));
        var cut = Path.Combine(dir.Path, "cut.dcm");
        System.IO.File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var act = () => ImageFiles.Read(cut);
        act.Should().Throw<UnusableImageException>().Which.Reason.Should().MatchRegex("DICOM|GDCM");
    }

    [Theory]
    [InlineData("40:400", true, 40, 400)]
    [InlineData(" -600 : 1500 ", true, -600, 1500)]
    [InlineData("40", false, 0, 0)]
    [InlineData("40:0", false, 0, 0)]
    [InlineData("a:b", false, 0, 0)]
    public void Windows_parse_as_center_and_width(string text, bool ok, double center, double width)
    {
        DicomWindow.TryParse(text, out var window).Should().Be(ok);
        if (ok) window.Should().Be(new DicomWindow(center, width));
    }
}
