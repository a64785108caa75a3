using SplitFunctions.Bench;

// Benchmarks print figures and write artifacts/bench/results.json; they never fail on speed.
var benches = new Dictionary<string, Func<string[], Task<int>>>(StringComparer.OrdinalIgnoreCase)
{
    ["engine"] = EngineVsPyTorchBench.RunAsync,
    ["protocol"] = ProtocolOverheadBench.RunAsync,
};

if (args.Length == 0 || !benches.TryGetValue(args[0], out var bench))
{
    Console.Error.WriteLine($"usage: splitfn-bench <{string.Join("|", benches.Keys)}|all> [options]");
    if (args.Length > 0 && args[0] == "all")
    {
        foreach (var (name, run) in benches)
        {
            Console.WriteLine($"== {name}");
            var rc = await run(args[1..]);
            if (rc != 0) return rc;
        }
        return 0;
    }
    return 2;
}
return await bench(args[1..]);
