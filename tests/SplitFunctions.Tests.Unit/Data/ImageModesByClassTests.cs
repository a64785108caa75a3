using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

/// <summary>COVID-CT's trap: file format and colour mode follow the class. The report shows it, and the network gets one layout.</summary>
public sealed class ImageModesByClassTests
{
    [Fact]
    public void A_mode_found_in_one_class_only_is_named_and_every_image_reaches_the_network_as_grey()
    {
        using var dir = new TempDirectory();
        var root = Path.Combine(dir.Path, "images");
        Directory.CreateDirectory(Path.Combine(root, "covid"));
        Directory.CreateDirectory(Path.Combine(root, "normal"));
        for (var i = 0; i < 6; i++)
        {
            // The same picture: RGBA PNG for one class, grey JPEG for the other.
            var grey = ClassPicture(16, 0, 1);
            File.WriteAllBytes(Path.Combine(root, "covid", $"c{i}.png"), Png(16, 16, PngKind.Rgba, 8, [.. grey.SelectMany(v => new[] { v, v, v, 255 })]));
            File.WriteAllBytes(Path.Combine(root, "normal", $"n{i}.jpg"), Jpeg(16, 16, 1, grey));
        }

        var data = ImageSourceLoader.Load(new ImageSourceOptions { Path = root }, new ImageSplitRule(1, [1], 0, 0.2, 0.2), 1, 16, 16);

        data.Report.ModesByClass["covid"].Should().Equal(new Dictionary<string, int> { ["PNG 8-bit RGBA"] = 6 });
        // (stb's writer stores even a grey JPEG as three components)
        var jpeg = data.Report.ModesByClass["normal"].Should().ContainSingle().Which;
        jpeg.Key.Should().StartWith("JPEG 8-bit");
        jpeg.Value.Should().Be(6);
        data.Report.ToString().Should().Contain($"note: PNG 8-bit RGBA only in covid, {jpeg.Key} only in normal; every image is converted the same way");
        data.Train.SampleShape.Should().Equal(1, 16, 16);
        // One channel for both: the RGBA file (R = G = B, opaque) and the JPEG of the same picture come out alike but for JPEG's rounding.
        var covid = new float[256];
        var normal = new float[256];
        var (covidRow, normalRow) = (Array.IndexOf(data.Train.Targets, 0f), Array.IndexOf(data.Train.Targets, 1f));
        data.Train.Gather([covidRow], covid, new float[1]);
        data.Train.Gather([normalRow], normal, new float[1]);
        covid.Zip(normal, (a, b) => Math.Abs(a - b)).Average().Should().BeLessThan(0.15f);
    }
}
