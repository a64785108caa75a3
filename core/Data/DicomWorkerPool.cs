using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace SplitFunctions.Core.Data;

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
