using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>
/// DICOM decoding in child processes. GDCM is native code that ends its process on some damaged files (an assertion in
/// its file-meta reader, libjpeg's and OpenJPEG's error exits): no managed handler can catch that, so a program that reads
/// hospitals' DICOM decodes each file in a worker, a copy of itself started with <see cref="WorkerArgument"/>. A worker that
/// dies or hangs on a file costs that file only (skipped with the reason); the next file gets a fresh worker.
/// Programs opt in by calling <see cref="RunIfRequested"/> first thing in Main; elsewhere (the unit test host, the
/// benchmarks) DICOM is decoded in-process as before.
/// </summary>
public static class DicomWorker
{
    /// <summary>The hidden first argument that makes a program a DICOM worker.</summary>
    public const string WorkerArgument = "--splitfn-dicom-worker";

    private static DicomWorkerPool? pool;

    /// <summary>The pool DICOM files are decoded by in this process; null where no worker host was registered (decoded in-process).</summary>
    public static DicomWorkerPool? Pool => Volatile.Read(ref pool);

    /// <summary>
    /// Serves as a worker when <paramref name="args"/> asks for it (returns the exit code: Main returns it at once); otherwise
    /// registers this program as the worker host for its own DICOM decoding and returns null.
    /// </summary>
    public static int? RunIfRequested(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args is [WorkerArgument]) return Serve(Console.OpenStandardInput(), Console.OpenStandardOutput());
        if (HostStartInfo() is { } start) Volatile.Write(ref pool, new DicomWorkerPool(start));
        return null;
    }

    /// <summary>Decodes a DICOM file through the worker pool when this process has one, else in-process.</summary>
    public static DecodedImage Decode(string path, DicomWindow? window) =>
        Pool is { } workers ? workers.Decode(path, window) : DicomImageDecoder.Decode(path, window);

    /// <summary>
    /// How to start a copy of the running program as a worker: its apphost directly, or `dotnet program.dll` when started that way;
    /// null when neither is known (a single-file bundle without its path).
    /// </summary>
    public static ProcessStartInfo? HostStartInfo()
    {
        if (Environment.ProcessPath is not { Length: > 0 } host) return null;
        var start = new ProcessStartInfo(host);
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            // `dotnet x.dll`: the first command-line argument is the program's dll.
            var dll = Environment.GetCommandLineArgs()[0];
            if (!dll.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || !File.Exists(dll)) return null;
            start.ArgumentList.Add(dll);
        }
        start.ArgumentList.Add(WorkerArgument);
        return start;
    }

    /// <summary>The worker's loop: a request per file on <paramref name="input"/>, its answer on <paramref name="output"/>, until input ends.</summary>
    public static int Serve(Stream input, Stream output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        // Stdout carries the protocol: anything written through Console goes to stderr instead. Ctrl+C reaches the whole process
        // group; the worker finishes its file and ends when its parent closes the pipe (the parent kills it when it must).
        Console.SetOut(Console.Error);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = true);
        while (DicomWorkerProtocol.ReadRequest(input) is { } request)
        {
            DicomWorkerProtocol.WriteAnswer(output, Answer(request.Path, request.Window));
            output.Flush();
        }
        return 0;
    }

    private static DicomWorkerProtocol.Answer Answer(string path, DicomWindow? window)
    {
        try
        {
            return new(DicomImageDecoder.Decode(path, window), null, false);
        }
        catch (UnusableImageException e)
        {
            return new(null, e.Reason, false);
        }
        catch (GdcmMissingException e)
        {
            return new(null, e.Message, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new(null, $"cannot be read ({e.Message})", false);
        }
    }
}

/// <summary>
/// Long-lived DICOM workers, at most <see cref="Size"/> at once: one per processor, and no more than <see cref="DecodeBudget"/> allows
/// of the largest images (each worker decodes one file at a time). A file whose worker crashes, hangs past the timeout or answers
/// out of protocol is an <see cref="UnusableImageException"/> with the reason; the worker is discarded.
/// </summary>
public sealed class DicomWorkerPool : IDisposable
{
    /// <summary>Longest a worker may take on one file (a 50-megapixel JPEG 2000 decodes in seconds).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    private readonly ProcessStartInfo start;
    private readonly TimeSpan timeout;
    private readonly SemaphoreSlim slots;
    private readonly ConcurrentBag<Worker> idle = [];
    private int disposed;

    public DicomWorkerPool(ProcessStartInfo start, int? size = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        this.start = start;
        this.timeout = timeout ?? DefaultTimeout;
        Size = size ?? (int)Math.Clamp(Environment.ProcessorCount, 1, DecodeBudget.Pixels / ImageFiles.MaxPixels);
        slots = new SemaphoreSlim(Size, Size);
        // Idle workers end when their input closes; closing it at exit spares them the wait for the parent's death.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    /// <summary>Most workers alive at once.</summary>
    public int Size { get; }

    /// <summary>Workers started so far (tests: one is reused across files, a crashed one replaced).</summary>
    public int Started => Volatile.Read(ref started);

    private int started;

    public DecodedImage Decode(string path, DicomWindow? window)
    {
        ArgumentNullException.ThrowIfNull(path);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) == 1, this);
        slots.Wait();
        Worker? worker = null;
        try
        {
            worker = idle.TryTake(out var waiting) ? waiting : StartWorker();
            var answer = worker.Decode(Path.GetFullPath(path), window, timeout);
            idle.Add(worker);
            worker = null;
            if (answer.GdcmMissing) throw new GdcmMissingException(answer.Reason!);
            return answer.Image ?? throw new UnusableImageException(answer.Reason!);
        }
        finally
        {
            worker?.Dispose();
            slots.Release();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        while (idle.TryTake(out var worker)) worker.Close();
    }

    private Worker StartWorker()
    {
        var info = new ProcessStartInfo(start.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in start.ArgumentList) info.ArgumentList.Add(argument);
        Interlocked.Increment(ref started);
        try
        {
            return new Worker(Process.Start(info) ?? throw new UnusableImageException($"could not start the DICOM decoder {start.FileName}"));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UnusableImageException($"could not start the DICOM decoder {start.FileName} ({e.Message})", e);
        }
    }

    // One worker process; used by one thread at a time (the pool hands it out).
    private sealed class Worker : IDisposable
    {
        private const int MaxStderrLine = 300;
        private readonly Process process;
        private string? lastError;

        public Worker(Process process)
        {
            this.process = process;
            process.ErrorDataReceived += (_, e) =>
            {
                if (string.IsNullOrWhiteSpace(e.Data)) return;
                var line = e.Data.Trim();
                Volatile.Write(ref lastError, line.Length > MaxStderrLine ? line[..MaxStderrLine] + "..." : line);
            };
            process.BeginErrorReadLine();
        }

        public DicomWorkerProtocol.Answer Decode(string path, DicomWindow? window, TimeSpan timeout)
        {
            var timedOut = 0;
            using (new Timer(_ =>
            {
                Interlocked.Exchange(ref timedOut, 1);
                Kill();
            }, null, timeout, Timeout.InfiniteTimeSpan))
            {
                try
                {
                    DicomWorkerProtocol.WriteRequest(process.StandardInput.BaseStream, path, window);
                    process.StandardInput.BaseStream.Flush();
                    if (DicomWorkerProtocol.ReadAnswer(process.StandardOutput.BaseStream) is { } answer) return answer;
                }
                catch (IOException)
                {
                    // The pipe broke: the worker died (or was killed) mid-file.
                }
                catch (InvalidDataException e)
                {
                    Kill();
                    throw new UnusableImageException($"the DICOM decoder answered out of protocol on this file ({e.Message})", e);
                }
            }
            Kill();
            // Until its stderr is drained too, so the reason carries the worker's last line (a few seconds at most, never forever).
            try
            {
                process.WaitForExitAsync().Wait(TimeSpan.FromSeconds(5));
            }
            catch (AggregateException)
            {
            }
            if (Volatile.Read(ref timedOut) == 1)
            {
                throw new UnusableImageException(string.Create(CultureInfo.InvariantCulture,
                    $"the DICOM decoder took over {timeout.TotalSeconds:0} s on this file and was stopped"));
            }
            var why = Volatile.Read(ref lastError) ?? (process.HasExited ? $"exit status {process.ExitCode}" : "no message");
            throw new UnusableImageException($"the DICOM decoder crashed on this file ({why})");
        }

        public void Close()
        {
            try
            {
                process.StandardInput.Close();
            }
            catch (IOException)
            {
            }
            process.Dispose();
        }

        public void Dispose()
        {
            Kill();
            process.Dispose();
        }

        private void Kill()
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
            {
                // Already gone.
            }
        }
    }
}

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
