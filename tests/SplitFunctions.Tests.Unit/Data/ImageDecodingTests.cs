using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

/// <summary>PNG (every colour type, 8 and 16 bits) and JPEG decoding, the one channel conversion, and damaged files refused with a reason.</summary>
public sealed class ImageDecodingTests
{
    [Theory]
    [InlineData((int)PngKind.Grey, 8, "PNG 8-bit grey", 1)]
    [InlineData((int)PngKind.Grey, 16, "PNG 16-bit grey", 1)]
    [InlineData((int)PngKind.Rgb, 8, "PNG 8-bit RGB", 3)]
    [InlineData((int)PngKind.Rgb, 16, "PNG 16-bit RGB", 3)]
    [InlineData((int)PngKind.Rgba, 8, "PNG 8-bit RGBA", 4)]
    [InlineData((int)PngKind.Rgba, 16, "PNG 16-bit RGBA", 4)]
    [InlineData((int)PngKind.GreyAlpha, 8, "PNG 8-bit grey+alpha", 2)]
    [InlineData((int)PngKind.Palette, 8, "PNG 8-bit palette", 3)]
    public void Png_of_every_colour_type_and_depth_decodes_to_its_values(int kindValue, int depth, string mode, int channels)
    {
        var kind = (PngKind)kindValue;
        var perPixel = kind switch { PngKind.Grey or PngKind.Palette => 1, PngKind.GreyAlpha => 2, PngKind.Rgb => 3, _ => 4 };
        var max = depth == 16 ? 65535 : 255;
        var samples = Enumerable.Range(0, 5 * 3 * perPixel).Select(i => i * 997 % (max + 1)).ToArray();
        var image = RasterImageDecoder.Decode(Png(5, 3, kind, depth, samples));

        image.Mode.Should().Be(mode);
        (image.Width, image.Height, image.Channels).Should().Be((5, 3, channels));
        if (kind == PngKind.Palette)
        {
            // Palette index i is grey (i, i, i).
            image.Pixels.Where((_, i) => i % 3 == 0).Should().Equal(samples.Select(s => s / 255f));
        }
        else
        {
            image.Pixels.Should().Equal(samples.Select(s => s / (float)max));
        }
    }

    [Fact]
    public void Sixteen_bit_png_keeps_values_an_eight_bit_decoder_would_merge()
    {
        // 1000 and 1100 of 65535 are the same 8-bit value (3 or 4); the 16-bit path keeps them apart.
        var image = RasterImageDecoder.Decode(Png(2, 1, PngKind.Grey, 16, [1000, 1100]));
        image.Pixels[0].Should().BeApproximately(1000 / 65535f, 1e-7f);
        image.Pixels[1].Should().BeApproximately(1100 / 65535f, 1e-7f);
    }

    [Fact]
    public void Jpeg_decodes_close_to_what_was_written()
    {
        var picture = ClassPicture(32, 1, seed: 5);
        // stb's writer stores grey as three components; the grey plane comes back within JPEG's loss.
        var image = RasterImageDecoder.Decode(Jpeg(32, 32, 1, picture));
        image.ToPlanes(1).Select((v, i) => Math.Abs((v * 255) - picture[i])).Average().Should().BeLessThan(6);
        RasterImageDecoder.Decode(Jpeg(8, 8, 3, ClassPicture(8, 0, 1, channels: 3))).Mode.Should().Be("JPEG 8-bit RGB");
    }

    [Fact]
    public void Every_colour_mode_converts_to_grey_by_the_same_formula()
    {
        // One colour (R, G, B) = (200, 100, 50) as RGB and as RGBA: the same grey; a grey pixel stays itself.
        var rgb = RasterImageDecoder.Decode(Png(1, 1, PngKind.Rgb, 8, [200, 100, 50])).ToPlanes(1);
        var rgba = RasterImageDecoder.Decode(Png(1, 1, PngKind.Rgba, 8, [200, 100, 50, 17])).ToPlanes(1);
        rgb.Should().Equal(rgba);
        rgb[0].Should().BeApproximately(((0.299f * 200) + (0.587f * 100) + (0.114f * 50)) / 255f, 1e-6f);
        RasterImageDecoder.Decode(Png(1, 1, PngKind.Grey, 8, [77])).ToPlanes(3).Should().Equal(77 / 255f, 77 / 255f, 77 / 255f);
    }

    [Fact]
    public void Damaged_and_foreign_files_are_refused_with_their_reason()
    {
        var png = Png(16, 16, PngKind.Grey, 8, ClassPicture(16, 0, 1));
        var jpeg = Jpeg(16, 16, 1, ClassPicture(16, 0, 1));
        Reason(png[..(png.Length / 2)]).Should().Be("truncated PNG (no IEND chunk at the end)");
        Reason(jpeg[..(jpeg.Length / 2)]).Should().Be("truncated JPEG (no end-of-image marker)");
        Reason("GIF89a not really"u8.ToArray()).Should().Be("not a PNG or JPEG file (unknown signature)");
        var corrupt = (byte[])png.Clone();
        for (var i = 40; i < corrupt.Length - 12; i++) corrupt[i] ^= 0x5A;
        Reason(corrupt).Should().StartWith("damaged PNG");
        ImageFilesReason([]).Should().Be("empty file");
    }

    [Fact]
    public void Large_images_are_box_filtered_then_resized_to_the_model_input()
    {
        // A 1-pixel checkerboard averages to mid-grey; a bilinear resize alone would pick pixels and alias.
        var board = Enumerable.Range(0, 64 * 64).Select(i => ((i / 64) + (i % 64)) % 2 * 255).ToArray();
        var image = RasterImageDecoder.Decode(Png(64, 64, PngKind.Grey, 8, board));
        var prepared = ImageFiles.Prepare(image, 1, 8, 8);
        prepared.Should().HaveCount(64).And.OnlyContain(v => Math.Abs(v - 0.5f) < 1e-5f);
        ImageFiles.Prepare(image, 3, 16, 16).Should().HaveCount(3 * 16 * 16);
    }

    private static string Reason(byte[] bytes)
    {
        try
        {
            RasterImageDecoder.Decode(bytes);
            return "decoded";
        }
        catch (UnusableImageException e)
        {
            return e.Reason;
        }
    }

    private static string ImageFilesReason(byte[] bytes)
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
}
