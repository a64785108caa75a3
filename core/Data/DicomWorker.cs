using System.Diagnostics;
using System.Runtime.InteropServices;

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
