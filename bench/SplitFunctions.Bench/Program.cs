using SplitFunctions.Bench;

// The dicom benchmark starts copies of this program as DICOM workers.
if (SplitFunctions.Core.Data.DicomWorker.RunIfRequested(args) is { } workerExit) return workerExit;

// Benchmarks print figures and merge their keys into artifacts/bench/results.json (or --results PATH); they never fail on speed.
var benches = new Dictionary<string, Func<string[], Task<int>>>(StringComparer.OrdinalIgnoreCase)
{
    ["engine"] = EngineVsPyTorchBench.RunAsync,
    ["protocol"] = ProtocolOverheadBench.RunAsync,
    ["split"] = VanillaVsCentralizedBench.RunAsync,
    ["temporal"] = TemporalVsCentralizedBench.RunAsync,
    ["temporal-stream"] = TemporalStreamingBench.RunAsync,
    ["busy"] = ServerBusyBench.RunAsync,
    ["scale"] = ScaleBench.RunAsync,
    ["wire"] = WireBytesBench.RunAsync,
    ["memory"] = NativeMemoryBench.RunAsync,
    ["pipeline"] = PipelineAccuracyBench.RunAsync,
    ["images"] = ImageFolderBench.RunAsync,
    ["dicom"] = DicomWorkerBench.RunAsync,
};

if (args.Length > 0 && string.Equals(args[0], "all", StringComparison.OrdinalIgnoreCase))
{
    // Options go to every benchmark; each takes the ones it knows (--smoke, --results, --threads) and ignores the rest.
    foreach (var (name, run) in benches)
    {
        Console.WriteLine($"== {name}");
        var rc = await run(args[1..]);
        if (rc != 0) return rc;
    }
    return 0;
}
if (args.Length == 0 || !benches.TryGetValue(args[0], out var bench))
{
    Console.Error.WriteLine($"usage: splitfn-bench <{string.Join("|", benches.Keys)}|all> [--option value ...] [--smoke] [--results PATH]");
    return 2;
}
return await bench(args[1..]);
