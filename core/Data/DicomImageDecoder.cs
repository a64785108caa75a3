using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Data;

/// <summary>DICOM intensity window: values outside [Center - Width/2, Center + Width/2] clip, the rest map linearly to [0, 1].</summary>
public sealed record DicomWindow(double Center, double Width)
{
    /// <summary>"center:width", e.g. "40:400" (a CT soft-tissue window in Hounsfield units).</summary>
    public static bool TryParse(string? text, out DicomWindow window)
    {
        window = null!;
        var parts = text?.Split(':', StringSplitOptions.TrimEntries);
        if (parts is not { Length: 2 }
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var center)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var width)
            || !double.IsFinite(center) || !double.IsFinite(width) || width < 1) return false;
        window = new DicomWindow(center, width);
        return true;
    }
}

/// <summary>
/// DICOM through GDCM's C# bindings (Debian's libgdcm-cil; GDCM's own builds elsewhere), loaded when the first DICOM
/// file is met so the project builds and runs without GDCM for anyone who has no DICOM. GDCM decodes every common
/// transfer syntax (implicit/explicit VR, big endian, RLE, JPEG, JPEG-LS, JPEG 2000); this class applies what
/// pydicom and MONAI apply: rescale slope and intercept (modality values such as Hounsfield units), a window (from the
/// configuration, else the file's first, else the image's own range), and inversion of MONOCHROME1 so bright always
/// means dense. Colour images stay RGB (YBR converted by GDCM's codecs).
/// </summary>
public static class DicomImageDecoder
{
    /// <summary>What to install, in one line, when GDCM is absent.</summary>
    public const string InstallHint = "DICOM needs GDCM's C# bindings: on Debian/Ubuntu run `sudo apt-get install libgdcm-cil`; elsewhere install GDCM "
        + "with its C# bindings and set SPLITFN_GDCM_DIR to the folder holding gdcm-sharp.dll";

    /// <summary>Environment variable naming the folder of gdcm-sharp.dll and its native glue library.</summary>
    public const string FolderVariable = "SPLITFN_GDCM_DIR";

    // Debian's and Ubuntu's package folder (libgdcm-cil); other systems set SPLITFN_GDCM_DIR.
    private static readonly string[] KnownFolders = ["/usr/lib/cli/gdcm-sharp-3.0"];

    private static readonly Lazy<Assembly?> Gdcm = new(LoadGdcm);
    private static readonly Lock ReadLock = new();
    private static readonly string[] TraceSwitches = ["WarningOff", "ErrorOff", "DebugOff"];
    private static readonly string[] GlueFiles = ["libgdcmsharpglue.so", "gdcmsharpglue.dll", "libgdcmsharpglue.dylib"];

    /// <summary>True when the file has the DICOM preamble and "DICM" magic at byte 128.</summary>
    public static bool IsDicom(ReadOnlySpan<byte> bytes) => bytes.Length >= 132 && bytes.Slice(128, 4).SequenceEqual("DICM"u8);

    /// <summary>True when GDCM's bindings load on this system.</summary>
    public static bool IsAvailable => Gdcm.Value is not null;

    /// <summary>
    /// Decodes the first frame of a DICOM file; problems are <see cref="UnusableImageException"/>s, a missing GDCM a <see cref="GdcmMissingException"/>.
    /// </summary>
    public static DecodedImage Decode(string path, DicomWindow? window = null)
    {
        var gdcm = Gdcm.Value ?? throw new GdcmMissingException(InstallHint);
        // GDCM's readers share global state (the dictionaries, the trace switches): one file at a time.
        lock (ReadLock)
        {
            return Read(gdcm, path, window);
        }
    }

    /// <summary>Most bytes a file's decoded pixel data (every frame: GDCM decodes them all) may take; the first frame is used.</summary>
    public const long MaxDecodedBytes = 1L << 30;

    private static DecodedImage Read(Assembly gdcm, string path, DicomWindow? configured)
    {
        var (sopClass, syntax) = FileMeta(path);
        if (sopClass == MediaDirectoryClass)
            throw new UnusableImageException("a DICOMDIR (the index of a DICOM export, not an image; the images it lists are read from their own files)");
        dynamic reader = Activator.CreateInstance(gdcm.GetType("gdcm.ImageReader", throwOnError: true)!)!;
        try
        {
            reader.SetFileName(path);
            if (!reader.Read()) throw new UnusableImageException(WhyUnreadable(gdcm, path, syntax));
            dynamic image = reader.GetImage();
            int width = Convert.ToInt32(image.GetDimension(0u));
            int height = Convert.ToInt32(image.GetDimension(1u));
            int frames = Convert.ToInt32(image.GetNumberOfDimensions()) >= 3 ? Math.Max(1, Convert.ToInt32(image.GetDimension(2u))) : 1;
            ImageFiles.RequireSize(width, height, "DICOM");
            dynamic format = image.GetPixelFormat();
            int samples = Convert.ToInt32(format.GetSamplesPerPixel());
            int bitsAllocated = Convert.ToInt32(format.GetBitsAllocated());
            int bitsStored = Convert.ToInt32(format.GetBitsStored());
            bool signed = Convert.ToInt32(format.GetPixelRepresentation()) == 1;
            string photometric = ((string)image.GetPhotometricInterpretation().GetString()).Trim();
            int planar = Convert.ToInt32(image.GetPlanarConfiguration());
            double slope = Convert.ToDouble(image.GetSlope());
            double intercept = Convert.ToDouble(image.GetIntercept());
            if (width <= 0 || height <= 0) throw new UnusableImageException("DICOM image without rows or columns");
            if (samples is not (1 or 3)) throw new UnusableImageException($"DICOM with {samples} samples per pixel is not supported (1 or 3)");
            if (bitsAllocated is not (8 or 16 or 32)) throw new UnusableImageException($"DICOM with {bitsAllocated} bits allocated is not supported");
            long length = Convert.ToInt64(image.GetBufferLength());
            var frame = (long)width * height * samples * (bitsAllocated / 8);
            if (length > MaxDecodedBytes)
            {
                throw new UnusableImageException(string.Create(CultureInfo.InvariantCulture, $"DICOM of {frames} frame(s) would decode to "
                    + $"{length / (1024 * 1024)} MiB, over the {MaxDecodedBytes / (1024 * 1024)} MiB the agent decodes per file (export fewer frames)"));
            }
            if (length < frame) throw new UnusableImageException($"DICOM pixel data holds {length} bytes, one frame needs {frame} (truncated?)");
            // GDCM pads a cut uncompressed file with zeros rather than failing: its pixel data cannot be longer than the file.
            bool encapsulated = image.GetTransferSyntax().IsEncapsulated();
            if (!encapsulated && new FileInfo(path).Length < frame)
                throw new UnusableImageException("truncated DICOM (the file is shorter than its pixel data)");
            var buffer = new byte[length];
            if (!image.GetBuffer(buffer))
            {
                throw new UnusableImageException($"GDCM could not decode the pixel data (damaged, or a compression it does not support: transfer syntax "
                    + $"{syntax})");
            }

            var values = Samples(buffer, width * height * samples, bitsAllocated, bitsStored, signed);
            if (samples == 3 && planar == 1) values = Interleave(values, width * height);
            // A multi-frame file (a cine loop, a tomosynthesis stack) gives its first frame: one image per file, as the label is per file.
            var mode = $"DICOM {bitsStored}-bit {photometric}" + (frames > 1 ? $", frame 1 of {frames}" : "");
            if (samples == 3)
            {
                // Colour: RGB scaled by the stored range; JPEG's YBR_FULL(_422) stays YBR after GDCM's codec and is converted here.
                if (photometric.StartsWith("YBR_FULL", StringComparison.Ordinal)) YbrToRgb(values, (1L << bitsStored) - 1);
                var max = (float)((1L << bitsStored) - 1);
                return new DecodedImage(width, height, 3, Array.ConvertAll(values, v => Math.Clamp((float)v / max, 0f, 1f)), mode);
            }
            for (var i = 0; i < values.Length; i++) values[i] = (values[i] * slope) + intercept;
            var w = configured ?? FileWindow(gdcm, reader);
            var (low, high) = w is null ? Range(values) : (w.Center - (w.Width / 2), w.Center + (w.Width / 2));
            var span = high > low ? high - low : 1;
            var pixels = new float[values.Length];
            var invert = photometric == "MONOCHROME1";
            for (var i = 0; i < values.Length; i++)
            {
                var v = (float)Math.Clamp((values[i] - low) / span, 0, 1);
                pixels[i] = invert ? 1f - v : v;
            }
            return new DecodedImage(width, height, 1, pixels, mode + (w is null ? ", own range" : configured is null ? ", file window" : ", set window"));
        }
        catch (Exception e) when (e is Microsoft.CSharp.RuntimeBinder.RuntimeBinderException or ApplicationException or SEHException
            or TargetInvocationException)
        {
            throw new UnusableImageException($"GDCM failed on this file ({e.Message})", e);
        }
        finally
        {
            reader.Dispose();
        }
    }

    private const string MediaDirectoryClass = "1.2.840.10008.1.3.10";

    // Why GDCM's image reader refused a file: no pixel data at all (a report, a presentation state), a transfer syntax GDCM does not know, or damage.
    private static string WhyUnreadable(Assembly gdcm, string path, string syntax)
    {
        dynamic plain = Activator.CreateInstance(gdcm.GetType("gdcm.Reader", throwOnError: true)!)!;
        try
        {
            plain.SetFileName(path);
            if (!plain.Read()) return $"not a readable DICOM file (GDCM could not parse it: damaged or truncated; transfer syntax {syntax})";
            dynamic pixelTag = Activator.CreateInstance(gdcm.GetType("gdcm.Tag", throwOnError: true)!, (ushort)0x7FE0, (ushort)0x0010)!;
            if (!plain.GetFile().GetDataSet().FindDataElement(pixelTag)) return "DICOM without pixel data (not an image: a report, a list or a state)";
            return $"GDCM cannot read this DICOM image (transfer syntax {syntax}: a compression it does not support, or damaged image attributes)";
        }
        finally
        {
            plain.Dispose();
        }
    }

    // The file meta group (explicit VR little endian after "DICM"): media storage SOP class and transfer syntax UIDs, read before GDCM parses.
    private static (string SopClass, string Syntax) FileMeta(string path)
    {
        var head = new byte[4096];
        int got;
        using (var stream = File.OpenRead(path)) got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        string sopClass = "", syntax = "unknown";
        for (var i = 132; i + 8 <= got;)
        {
            var group = BitConverter.ToUInt16(head, i);
            var element = BitConverter.ToUInt16(head, i + 2);
            if (group != 2) break;
            var vr = System.Text.Encoding.ASCII.GetString(head, i + 4, 2);
            var longForm = vr is "OB" or "OW" or "OF" or "SQ" or "UT" or "UN";
            var length = longForm ? (long)BitConverter.ToUInt32(head, i + 8) : BitConverter.ToUInt16(head, i + 6);
            var start = i + (longForm ? 12 : 8);
            if (start + length > got) break;
            var text = System.Text.Encoding.ASCII.GetString(head, start, (int)length).TrimEnd('\0', ' ');
            if (element == 0x0002) sopClass = text;
            if (element == 0x0010) syntax = text;
            i = start + (int)length;
        }
        return (sopClass, syntax);
    }

    private static DicomWindow? FileWindow(Assembly gdcm, dynamic reader)
    {
        dynamic filter = Activator.CreateInstance(gdcm.GetType("gdcm.StringFilter", throwOnError: true)!)!;
        try
        {
            filter.SetFile(reader.GetFile());
            var tagType = gdcm.GetType("gdcm.Tag", throwOnError: true)!;
            string Value(ushort element) => ((string)filter.ToString((dynamic)Activator.CreateInstance(tagType, (ushort)0x0028, element)!) ?? "").Trim();
            // Multi-valued windows ("40\\400"): the first is the modality's preferred one (as pydicom's apply_voi_lut).
            var text = $"{Value(0x1050).Split('\\')[0]}:{Value(0x1051).Split('\\')[0]}";
            return DicomWindow.TryParse(text, out var window) ? window : null;
        }
        finally
        {
            filter.Dispose();
        }
    }

    private static (double Low, double High) Range(double[] values)
    {
        double low = double.MaxValue, high = double.MinValue;
        foreach (var v in values)
        {
            if (v < low) low = v;
            if (v > high) high = v;
        }
        return (low, high);
    }

    // GDCM hands pixel data back little endian whatever the transfer syntax; values keep only their stored bits.
    private static double[] Samples(byte[] buffer, int count, int bitsAllocated, int bitsStored, bool signed)
    {
        var values = new double[count];
        var shift = bitsAllocated - bitsStored;
        for (var i = 0; i < count; i++)
        {
            long raw = bitsAllocated switch
            {
                8 => buffer[i],
                16 => BitConverter.ToUInt16(buffer, i * 2),
                _ => BitConverter.ToUInt32(buffer, i * 4),
            };
            if (signed)
            {
                // Sign-extend from the stored bit count (a 12-bit signed value in a 16-bit word).
                raw = (raw << (64 - bitsStored)) >> (64 - bitsStored);
            }
            else if (shift > 0)
            {
                raw &= (1L << bitsStored) - 1;
            }
            values[i] = raw;
        }
        return values;
    }

    // ITU-R BT.601 full range, as pydicom's convert_color_space("YBR_FULL", "RGB").
    private static void YbrToRgb(double[] values, long max)
    {
        var half = (max + 1) / 2.0;
        for (var i = 0; i + 2 < values.Length; i += 3)
        {
            var (y, cb, cr) = (values[i], values[i + 1] - half, values[i + 2] - half);
            values[i] = Math.Clamp(y + (1.402 * cr), 0, max);
            values[i + 1] = Math.Clamp(y - (0.344136 * cb) - (0.714136 * cr), 0, max);
            values[i + 2] = Math.Clamp(y + (1.772 * cb), 0, max);
        }
    }

    private static double[] Interleave(double[] planar, int plane)
    {
        var result = new double[planar.Length];
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                result[(p * 3) + c] = planar[(c * plane) + p];
        return result;
    }

    private static Assembly? LoadGdcm()
    {
        var folders = Environment.GetEnvironmentVariable(FolderVariable) is { Length: > 0 } configured ? [configured, .. KnownFolders] : KnownFolders;
        foreach (var folder in folders)
        {
            var managed = Path.Combine(folder, "gdcm-sharp.dll");
            if (!File.Exists(managed)) continue;
            try
            {
                var assembly = Assembly.LoadFrom(managed);
                // The bindings P/Invoke "gdcmsharpglue", installed beside them rather than on the loader's path.
                NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
                {
                    if (!name.Contains("gdcmsharpglue", StringComparison.Ordinal)) return IntPtr.Zero;
                    foreach (var file in GlueFiles)
                    {
                        if (NativeLibrary.TryLoad(Path.Combine(folder, file), out var handle)) return handle;
                    }
                    return IntPtr.Zero;
                });
                // GDCM prints its own warnings and retries (12-bit JPEG, spacing) to stderr; problems are reported by this class instead.
                var trace = assembly.GetType("gdcm.Trace", throwOnError: true)!;
                foreach (var off in TraceSwitches)
                    trace.GetMethod(off, BindingFlags.Public | BindingFlags.Static)!.Invoke(null, null);
                return assembly;
            }
            catch (Exception e) when (e is FileLoadException or BadImageFormatException or DllNotFoundException or TypeLoadException
                or TargetInvocationException or EntryPointNotFoundException)
            {
                continue;
            }
        }
        return null;
    }
}

/// <summary>GDCM's C# bindings are not installed: the message says what to install.</summary>
public sealed class GdcmMissingException(string message) : Exception(message);
