using System.Buffers.Binary;
using System.Text;

namespace SplitFunctions.Tests;

/// <summary>
/// Writes small DICOM Part 10 files for tests (explicit VR little endian file meta, then the data set in the transfer
/// syntax named): the odd cases a PACS export holds (multi-frame, YBR colour, signed pixels, odd rescale and window
/// values, no pixel data, a DICOMDIR, a compression GDCM does not decode) without committing binary samples.
/// </summary>
internal sealed class TestDicom
{
    public const string ExplicitLittle = "1.2.840.10008.1.2.1";
    public const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";
    public const string CtImage = "1.2.840.10008.5.1.4.1.1.2";
    public const string MediaDirectory = "1.2.840.10008.1.3.10";

    private readonly List<(uint Tag, string Vr, byte[] Value)> elements = [];

    public string TransferSyntax { get; init; } = ExplicitLittle;

    public string SopClass { get; init; } = CtImage;

    /// <summary>A grey or colour image's header: size, samples, bits, photometric interpretation, signedness, frames.</summary>
    public static TestDicom Image(int width, int height, int samples = 1, int bits = 16, string photometric = "MONOCHROME2", bool signed = false,
        int frames = 1, string transferSyntax = ExplicitLittle)
    {
        var dicom = new TestDicom { TransferSyntax = transferSyntax };
        dicom.Add(0x00280002, "US", samples);
        dicom.Add(0x00280004, "CS", photometric);
        if (samples == 3) dicom.Add(0x00280006, "US", 0);
        if (frames > 1) dicom.Add(0x00280008, "IS", frames.ToString(System.Globalization.CultureInfo.InvariantCulture));
        dicom.Add(0x00280010, "US", height);
        dicom.Add(0x00280011, "US", width);
        dicom.Add(0x00280100, "US", bits);
        dicom.Add(0x00280101, "US", bits);
        dicom.Add(0x00280102, "US", bits - 1);
        dicom.Add(0x00280103, "US", signed ? 1 : 0);
        return dicom;
    }

    public TestDicom Add(uint tag, string vr, string value) => Add(tag, vr, Encoding.ASCII.GetBytes(value));

    public TestDicom Add(uint tag, string vr, int value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)value);
        return Add(tag, vr, bytes);
    }

    public TestDicom Add(uint tag, string vr, byte[] value)
    {
        elements.RemoveAll(e => e.Tag == tag);
        elements.Add((tag, vr, value));
        return this;
    }

    /// <summary>Native (uncompressed) pixel data: 16-bit samples little endian, or bytes for 8 bits.</summary>
    public TestDicom Pixels16(IEnumerable<int> samples) =>
        Add(0x7FE00010, "OW", [.. samples.SelectMany(s => new[] { (byte)s, (byte)(s >> 8) })]);

    public TestDicom Pixels8(IEnumerable<int> samples) => Add(0x7FE00010, "OB", [.. samples.Select(s => (byte)s)]);

    public byte[] ToBytes()
    {
        using var file = new MemoryStream();
        file.Write(new byte[128]);
        file.Write("DICM"u8);
        var meta = new MemoryStream();
        WriteElement(meta, 0x00020001, "OB", [0, 1]);
        WriteElement(meta, 0x00020002, "UI", Uid(SopClass));
        WriteElement(meta, 0x00020003, "UI", Uid("1.2.3.4.5.6.7"));
        WriteElement(meta, 0x00020010, "UI", Uid(TransferSyntax));
        var length = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)meta.Length);
        WriteElement(file, 0x00020000, "UL", length);
        meta.WriteTo(file);
        WriteElement(file, 0x00080016, "UI", Uid(SopClass));
        WriteElement(file, 0x00080018, "UI", Uid("1.2.3.4.5.6.7"));
        foreach (var (tag, vr, value) in elements.OrderBy(e => e.Tag))
        {
            if (tag == 0x7FE00010 && vr == "OB*") WriteEncapsulated(file, value);
            else WriteElement(file, tag, vr, vr is "UI" ? Uid(Encoding.ASCII.GetString(value)) : value);
        }
        return file.ToArray();
    }

    /// <summary>Encapsulated pixel data (a compressed transfer syntax): an empty offset table and one fragment.</summary>
    public TestDicom Encapsulated(byte[] fragment) => Add(0x7FE00010, "OB*", fragment);

    public void Save(string path) => File.WriteAllBytes(path, ToBytes());

    private static byte[] Uid(string uid) => Encoding.ASCII.GetBytes(uid.Length % 2 == 0 ? uid : uid + "\0");

    private static void WriteEncapsulated(Stream stream, byte[] fragment)
    {
        Tag(stream, 0x7FE00010);
        stream.Write("OB\0\0"u8);
        stream.Write([0xFF, 0xFF, 0xFF, 0xFF]);
        Item(stream, 0xFFFEE000, []);
        Item(stream, 0xFFFEE000, fragment.Length % 2 == 0 ? fragment : [.. fragment, 0]);
        Item(stream, 0xFFFEE0DD, []);
    }

    private static void Item(Stream stream, uint tag, byte[] value)
    {
        Tag(stream, tag);
        var length = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)value.Length);
        stream.Write(length);
        stream.Write(value);
    }

    private static void Tag(Stream stream, uint tag)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)tag);
        stream.Write(bytes);
    }

    private static void WriteElement(Stream stream, uint tag, string vr, byte[] value)
    {
        if (value.Length % 2 == 1) value = [.. value, vr is "UI" or "OB" ? (byte)0 : (byte)' '];
        Tag(stream, tag);
        stream.Write(Encoding.ASCII.GetBytes(vr));
        if (vr is "OB" or "OW" or "OF" or "SQ" or "UT" or "UN")
        {
            stream.Write([0, 0]);
            var length = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)value.Length);
            stream.Write(length);
        }
        else
        {
            var length = new byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)value.Length);
            stream.Write(length);
        }
        stream.Write(value);
    }
}
