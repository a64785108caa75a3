using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>
/// The worker's pipe format, little endian, each message an int32 length then its body. Request: a window flag byte, its
/// center and width (doubles), the file's full path (UTF-8). Answer: a kind byte (0 image, 1 unusable, 2 GDCM missing);
/// an image is width, height, channels and the mode's byte count (int32s), the mode (UTF-8) and the pixels (float32, the
/// decoder's own values, so results are bit-identical to in-process decoding); otherwise the reason (UTF-8). An answer
/// whose length differs from what its header declares, or beyond <see cref="ImageFiles.MaxPixels"/>, is refused.
/// </summary>
public static class DicomWorkerProtocol
{
    /// <summary>What the worker says about one file.</summary>
    public sealed record Answer(DecodedImage? Image, string? Reason, bool GdcmMissing);

    /// <summary>A file to decode.</summary>
    public sealed record Request(string Path, DicomWindow? Window);

    private const int MaxText = 64 * 1024;
    private const int ImageHeader = 1 + (4 * 4);

    public static void WriteRequest(Stream stream, string path, DicomWindow? window)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(path);
        var name = Encoding.UTF8.GetBytes(path);
        var body = new byte[17 + name.Length];
        body[0] = window is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteDoubleLittleEndian(body.AsSpan(1), window?.Center ?? 0);
        BinaryPrimitives.WriteDoubleLittleEndian(body.AsSpan(9), window?.Width ?? 0);
        name.CopyTo(body, 17);
        WriteLength(stream, body.Length);
        stream.Write(body);
    }

    /// <summary>The next request, or null when the input ended.</summary>
    public static Request? ReadRequest(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (ReadLength(stream, MaxText) is not { } length) return null;
        if (length < 18) throw new InvalidDataException($"a request of {length} bytes");
        var body = new byte[length];
        stream.ReadExactly(body);
        var window = body[0] == 1
            ? new DicomWindow(BinaryPrimitives.ReadDoubleLittleEndian(body.AsSpan(1)), BinaryPrimitives.ReadDoubleLittleEndian(body.AsSpan(9)))
            : null;
        return new Request(Encoding.UTF8.GetString(body, 17, length - 17), window);
    }

    public static void WriteAnswer(Stream stream, Answer answer)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(answer);
        if (answer.Image is not { } image)
        {
            var reason = Encoding.UTF8.GetBytes(answer.Reason ?? "");
            if (reason.Length > MaxText) reason = reason[..MaxText];
            WriteLength(stream, 1 + reason.Length);
            stream.WriteByte(answer.GdcmMissing ? (byte)2 : (byte)1);
            stream.Write(reason);
            return;
        }
        var mode = Encoding.UTF8.GetBytes(image.Mode);
        var pixels = MemoryMarshal.AsBytes(image.Pixels.AsSpan());
        var header = new byte[ImageHeader];
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(1), image.Width);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(5), image.Height);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(9), image.Channels);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(13), mode.Length);
        WriteLength(stream, checked(ImageHeader + mode.Length + pixels.Length));
        stream.Write(header);
        stream.Write(mode);
        stream.Write(pixels);
    }

    /// <summary>The worker's answer, or null when its output ended first (it died); <see cref="InvalidDataException"/> when out of protocol.</summary>
    public static Answer? ReadAnswer(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        const long MaxImage = ImageHeader + MaxText + (ImageFiles.MaxPixels * 3 * sizeof(float));
        if (ReadLength(stream, (int)Math.Min(int.MaxValue, MaxImage)) is not { } length) return null;
        if (length < 1) throw new InvalidDataException("an empty answer");
        var kind = new byte[1];
        if (!Fill(stream, kind)) return null;
        if (kind[0] is 1 or 2)
        {
            if (length - 1 > MaxText) throw new InvalidDataException($"a reason of {length - 1} bytes");
            var reason = new byte[length - 1];
            if (!Fill(stream, reason)) return null;
            var text = Encoding.UTF8.GetString(reason);
            return new Answer(null, text.Length == 0 ? "the DICOM decoder gave no reason" : text, kind[0] == 2);
        }
        if (kind[0] != 0) throw new InvalidDataException($"an answer of kind {kind[0]}");
        var header = new byte[ImageHeader - 1];
        if (!Fill(stream, header)) return null;
        int width = BinaryPrimitives.ReadInt32LittleEndian(header), height = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        int channels = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8)), modeLength = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12));
        if (width <= 0 || height <= 0 || (long)width * height > ImageFiles.MaxPixels || channels is not (1 or 3) || modeLength is < 0 or > MaxText)
            throw new InvalidDataException($"an image header of {width}x{height}x{channels}");
        var declared = ImageHeader + modeLength + ((long)width * height * channels * sizeof(float));
        // Exactly what the header declares: more (or less) is a worker out of step with its parent, never read on.
        if (length != declared) throw new InvalidDataException($"{length} bytes for an image declaring {declared}");
        var mode = new byte[modeLength];
        var pixels = new float[width * height * channels];
        if (!Fill(stream, mode) || !Fill(stream, MemoryMarshal.AsBytes(pixels.AsSpan()))) return null;
        return new Answer(new DecodedImage(width, height, channels, pixels, Encoding.UTF8.GetString(mode)), null, false);
    }

    private static void WriteLength(Stream stream, int length)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, length);
        stream.Write(bytes);
    }

    // Null at a clean end of input (no byte of the length read); a length over max is out of protocol.
    private static int? ReadLength(Stream stream, int max)
    {
        Span<byte> bytes = stackalloc byte[4];
        var got = stream.ReadAtLeast(bytes, 4, throwOnEndOfStream: false);
        if (got == 0) return null;
        if (got < 4) throw new EndOfStreamException("the pipe ended inside a message length");
        var length = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (length < 0 || length > max) throw new InvalidDataException($"a message of {length} bytes (at most {max})");
        return length;
    }

    private static bool Fill(Stream stream, Span<byte> buffer) => stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) == buffer.Length;
}
