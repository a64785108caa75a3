using System.Text.Json.Nodes;
using SplitFunctions.Bench;

namespace SplitFunctions.Tests.Bench;

/// <summary>
/// Every benchmark runs with --smoke (tiny sizes, about a second of work) and writes its key to a results file in a
/// temporary folder, so the benchmarks cannot rot. Speed is never asserted.
/// </summary>
public sealed class BenchSmokeTests
{
    [Theory]
    [InlineData("split", "vanilla_vs_centralized")]
    [InlineData("temporal", "temporal_vs_centralized")]
    [InlineData("temporal-stream", "temporal_streaming")]
    [InlineData("busy", "server_busy_fraction_3h")]
    [InlineData("scale", "scale")]
    [InlineData("wire", "wire_bytes_per_sample_ratio_fp32,wire_bytes_per_sample_ratio_fp16,wire_bytes_per_sample_ratio_bf16,wire_bytes_per_sample_ratio_int8,"
        + "wire_bytes_per_sample_ratio_narrow_fp32,wire_bytes_per_sample_ratio_narrow_fp16,wire_bytes_per_sample_ratio_narrow_int8")]
    [InlineData("protocol", "protocol_overhead_ratio")]
    [InlineData("engine", "engine_vs_pytorch")]
    [InlineData("memory", "native_rss")]
    [InlineData("images", "image_folder")]
    [InlineData("pipeline", "pipelined_auc_delta")]
    [InlineData("dicom", "dicom_worker")]
    public async Task Benchmark_writes_its_keys_to_the_results_file(string bench, string keys)
    {
        using var folder = new TempDirectory();
        var results = System.IO.Path.Combine(folder.Path, "results.json");

        var rc = await Run(bench, ["--smoke", "--results", results]);

        rc.Should().Be(0);
        var root = JsonNode.Parse(await File.ReadAllTextAsync(results))!.AsObject();
        foreach (var key in keys.Split(','))
        {
            root.Should().ContainKey(key);
            root[key]!["machine_cores"]!.GetValue<int>().Should().Be(Environment.ProcessorCount);
        }
        // The markdown table beside it has a row per key.
        var table = await File.ReadAllTextAsync(System.IO.Path.ChangeExtension(results, ".md"));
        foreach (var key in keys.Split(',')) table.Should().Contain($"| `{key}` |");
    }

    private static Task<int> Run(string bench, string[] args) => bench switch
    {
        "split" => VanillaVsCentralizedBench.RunAsync(args),
        "temporal" => TemporalVsCentralizedBench.RunAsync(args),
        "temporal-stream" => TemporalStreamingBench.RunAsync(args),
        "busy" => ServerBusyBench.RunAsync(args),
        "scale" => ScaleBench.RunAsync(args),
        "wire" => WireBytesBench.RunAsync(args),
        "protocol" => ProtocolOverheadBench.RunAsync(args),
        "engine" => EngineVsPyTorchBench.RunAsync(args),
        "memory" => NativeMemoryBench.RunAsync(args),
        "images" => ImageFolderBench.RunAsync(args),
        "pipeline" => PipelineAccuracyBench.RunAsync(args),
        "dicom" => DicomWorkerBench.RunAsync(args),
        _ => throw new ArgumentException(bench),
    };
}
