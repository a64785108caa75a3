using System.IO.Compression;
using System.Text;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>.npy/.npz reading: every supported dtype round-trips, every bad file names itself and the fix.</summary>
public sealed class NpyReaderTests
{
    [Fact]
    public void SupportedDTypes_RoundTrip()
    {
        using var dir = new TempDirectory();
        var floats = NpyArray.FromFloats([1.5f, -2f, 3.25f, 0f, 7f, 8f], 2, 3);
        var longs = NpyArray.FromInt64s([0, 1, 1, 0], 4, 1);
        var bytes = NpyArray.FromBytes([0, 128, 255], 3);
        var doubles = new NpyArray(NpyDType.Float64, [2], [.. BitConverter.GetBytes(0.5), .. BitConverter.GetBytes(-4.0)]);
        NpzWriter.Write(dir.File("a.npz"), [new("f", floats), new("l", longs), new("b", bytes), new("d", doubles)]);

        var all = NpzReader.ReadAll(dir.File("a.npz"));
        all.Keys.Should().BeEquivalentTo("f", "l", "b", "d");
        all["f"].Shape.Should().Equal(2, 3);
        all["f"].ToFloats().Should().Equal(1.5f, -2f, 3.25f, 0f, 7f, 8f);
        all["l"].DType.Should().Be(NpyDType.Int64);
        all["l"].ToInt64s().Should().Equal(0, 1, 1, 0);
        all["b"].ToFloats().Should().Equal(0f, 128f, 255f);
        all["b"].Shape.Should().Equal(3);
        all["d"].ToFloats().Should().Equal(0.5f, -4f);
    }

    [Fact]
    public void NpyFile_IsReadDirectly()
    {
        using var dir = new TempDirectory();
        NpyWriter.Write(dir.File("x.npy"), NpyArray.FromFloats([1, 2, 3, 4], 1, 2, 2));
        var x = NpyReader.Read(dir.File("x.npy"));
        x.Shape.Should().Equal(1, 2, 2);
        x.ToFloats().Should().Equal(1, 2, 3, 4);
    }

    [Fact]
    public void MissingFile_NamesThePath()
    {
        var act = () => NpzReader.Open("/nonexistent/data.npz");
        act.Should().Throw<DataFormatException>().WithMessage("/nonexistent/data.npz: file not found*--data*");
    }

    [Fact]
    public void NotAZip_SaysHowToSaveAnNpz()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("fake.npz"), "sex,age\nMale,35\n");
        var act = () => NpzReader.Open(dir.File("fake.npz"));
        act.Should().Throw<DataFormatException>().WithMessage("*fake.npz: not an .npz archive*numpy.savez*");
    }

    [Fact]
    public void NotAnNpy_SaysSo()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("x.npy"), "hello world, not numpy");
        var act = () => NpyReader.Read(dir.File("x.npy"));
        act.Should().Throw<DataFormatException>().WithMessage("*x.npy: not a NumPy .npy array*");
    }

    [Fact]
    public void UnsupportedDType_ListsTheSupportedOnes()
    {
        using var dir = new TempDirectory();
        WriteRawNpy(dir.File("c.npy"), "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", new byte[16]);
        var act = () => NpyReader.Read(dir.File("c.npy"));
        act.Should().Throw<DataFormatException>().WithMessage("*c.npy: unsupported dtype '<c8'*uint8, int32, int64, float32, float64*astype*");
        WriteRawNpy(dir.File("be.npy"), "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", new byte[8]);
        var bigEndian = () => NpyReader.Read(dir.File("be.npy"));
        bigEndian.Should().Throw<DataFormatException>().WithMessage("*unsupported dtype '>f4'*");
    }

    [Fact]
    public void FortranOrder_SaysHowToMakeItContiguous()
    {
        using var dir = new TempDirectory();
        WriteRawNpy(dir.File("f.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new byte[16]);
        var act = () => NpyReader.Read(dir.File("f.npy"));
        act.Should().Throw<DataFormatException>().WithMessage("*f.npy: *Fortran order*numpy.ascontiguousarray*");
    }

    [Fact]
    public void TruncatedData_IsReportedWithTheExpectedSize()
    {
        using var dir = new TempDirectory();
        WriteRawNpy(dir.File("t.npy"), "{'descr': '|u1', 'fortran_order': False, 'shape': (10, 28, 28), }", new byte[1000]);
        var act = () => NpyReader.Read(dir.File("t.npy"));
        act.Should().Throw<DataFormatException>().WithMessage("*t.npy: truncated*7840 elements*(10, 28, 28)*");
    }

    [Fact]
    public void TruncatedArchiveMember_NamesArchiveAndMember()
    {
        using var dir = new TempDirectory();
        using (var zip = ZipFile.Open(dir.File("cut.npz"), ZipArchiveMode.Create))
        using (var member = zip.CreateEntry("train_images.npy").Open())
            WriteRawNpy(member, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2, 2), }", new byte[5]);
        using var npz = NpzReader.Open(dir.File("cut.npz"));
        var act = () => npz.Read("train_images");
        act.Should().Throw<DataFormatException>().WithMessage("*cut.npz:train_images: truncated*");
    }

    [Fact]
    public void MissingMember_ListsWhatTheArchiveHolds()
    {
        using var dir = new TempDirectory();
        NpzWriter.Write(dir.File("a.npz"), [new("images", NpyArray.FromBytes([1], 1))]);
        using var npz = NpzReader.Open(dir.File("a.npz"));
        var act = () => npz.Read("train_images");
        act.Should().Throw<DataFormatException>().WithMessage("*a.npz: has no array 'train_images'; it holds: images*");
    }

    private static void WriteRawNpy(string path, string dict, byte[] data)
    {
        using var stream = File.Create(path);
        WriteRawNpy(stream, dict, data);
    }

    private static void WriteRawNpy(Stream stream, string dict, byte[] data)
    {
        var header = dict + "\n";
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0]);
        stream.Write(Encoding.Latin1.GetBytes(header));
        stream.Write(data);
    }
    [Theory]
    [InlineData("(1073741824, 1073741824)", "'<f8'", "more than one buffer")]
    [InlineData("(1000, 1000)", "'<f4'", "truncated")]
    public void A_header_declaring_a_huge_shape_is_refused_before_any_allocation(string shape, string dtype, string expected)
    {
        // The probe: an .npz whose .npy declares (2^30, 2^30) float64 crashed the agent with an OverflowException
        // and its stack trace; a small file declaring a large shape allocated the whole buffer before finding it short.
        var header = $"{{'descr': {dtype}, 'fortran_order': False, 'shape': {shape}, }}";
        header = header.PadRight(118) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0 };
        bytes.AddRange(System.Text.Encoding.Latin1.GetBytes(header));
        bytes.AddRange(new byte[64]);
        using var dir = new TempDirectory();
        var npz = dir.File("huge.npz");
        using (var zip = System.IO.Compression.ZipFile.Open(npz, System.IO.Compression.ZipArchiveMode.Create))
        {
            using var entry = zip.CreateEntry("x.npy").Open();
            entry.Write([.. bytes]);
        }
        var read = () => NpzReader.ReadAll(npz);
        read.Should().Throw<DataFormatException>().Which.Message.Should().Contain("huge.npz").And.Contain(expected);
        var npy = dir.File("huge.npy");
        File.WriteAllBytes(npy, [.. bytes]);
        var direct = () => NpyReader.Read(npy);
        direct.Should().Throw<DataFormatException>().Which.Message.Should().Contain(expected);
    }
}
