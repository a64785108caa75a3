using System.Diagnostics;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Bench;

/// <summary>
/// dicom_worker: the cost of decoding DICOM in child processes (issue 30: GDCM ends its process on some damaged files). The
/// shared CT slices (../shared/data/dicom-ct, 100 slices of 512x512, 16-bit) decoded `--rounds` times each way in one run:
/// in-process (GDCM in the benchmark's own process, one file at a time as its readers share state), through one worker
/// (the agent's path on one thread: a request and the decoded floats over pipes), and through the pool on as many
/// threads as it has workers (the agent's first pass decodes in parallel). Worker start-up is outside the timed loops
/// (one warm-up file); results are compared bit for bit.
/// </summary>
public static class DicomWorkerBench
{
    public static Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var rounds = options.GetInt("rounds", 3, 1);
        var folder = options.Get("folder", Path.Combine(RepoPaths.Root, "..", "shared", "data", "dicom-ct"));
        var files = Directory.GetFiles(folder, "*.dcm", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        if (options.Smoke) files = files[..Math.Min(files.Length, 5)];
        if (files.Length == 0)
        {
            Console.Error.WriteLine($"dicom: no DICOM files under {folder}");
            return Task.FromResult(2);
        }
        // This benchmark's own dll as the worker (`dotnet splitfn-bench.dll --splitfn-dicom-worker`), also when the smoke test runs it in its host.
        var host = new ProcessStartInfo(Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet");
        host.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "splitfn-bench.dll"));
        host.ArgumentList.Add(DicomWorker.WorkerArgument);
        using var single = new DicomWorkerPool(host, size: 1);
        using var pool = new DicomWorkerPool(host);
        DicomImageDecoder.Decode(files[0]);
        single.Decode(files[0], null);
        Parallel.For(0, pool.Size, _ => pool.Decode(files[0], null));

        double Rate(Action<string> decode, bool parallel)
        {
            var clock = Stopwatch.StartNew();
            for (var r = 0; r < rounds; r++)
            {
                if (parallel) Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = pool.Size }, decode);
                else foreach (var file in files) decode(file);
            }
            return rounds * files.Length / clock.Elapsed.TotalSeconds;
        }
        var inProcess = Rate(f => DicomImageDecoder.Decode(f), parallel: false);
        var oneWorker = Rate(f => single.Decode(f, null), parallel: false);
        var workers = Rate(f => pool.Decode(f, null), parallel: true);
        var identical = files.All(f => Same(single.Decode(f, null), DicomImageDecoder.Decode(f)));
        Console.WriteLine($"  DICOM decode, {files.Length} files x {rounds}: in-process {inProcess:F1} images/s; one worker {oneWorker:F1} images/s "
            + $"({oneWorker / inProcess:P0} of in-process); pool of {pool.Size} workers {workers:F1} images/s; bit-identical: {identical}; "
            + $"{Environment.ProcessorCount} cores");
        var result = new JsonObject
        {
            // The table's figure: one worker's speed as a fraction of in-process decoding.
            ["ratio"] = Math.Round(oneWorker / inProcess, 3),
            ["files"] = files.Length,
            ["rounds"] = rounds,
            ["in_process_images_per_s"] = Math.Round(inProcess, 1),
            ["one_worker_images_per_s"] = Math.Round(oneWorker, 1),
            ["pool_images_per_s"] = Math.Round(workers, 1),
            ["pool_workers"] = pool.Size,
            ["bit_identical"] = identical,
        };
        BenchResults.Merge("dicom_worker", result, options.ResultsPath);
        return Task.FromResult(identical ? 0 : 1);
    }

    private static bool Same(DecodedImage a, DecodedImage b) =>
        (a.Width, a.Height, a.Channels, a.Mode) == (b.Width, b.Height, b.Channels, b.Mode)
        && System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Pixels.AsSpan())
            .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Pixels.AsSpan()));
}
