using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using StbImageWriteSharp;

namespace SplitFunctions.Bench;

/// <summary>
/// image_folder: the agent reading a folder of generated 512x512 JPEGs for a 224x224 network (issue 30, item 2). The
/// folder is written at run time into a temporary folder (deleted after): a few distinct pictures per class, each file
/// made byte-unique by a JPEG comment, so writing 10,000 costs seconds. For each image count (`--compare`, then
/// `--images`) a child process does what the agent does with such a folder: ImageSourceLoader.Load (every file decoded
/// once for the report, the duplicate check and the training statistics), then `--steps` client-layer training steps
/// (forward, a dL/dA applied, optimizer step) on batches decoded on demand through the bounded cache (`--cache-mib`,
/// smaller than the images the steps touch, so it evicts). Figures per count: the child's peak RSS (VmHWM from
/// /proc/self/status), the first pass's images/s and the training samples/s; then, apart, decode+resize images/s
/// (one thread, as the training loop decodes) against the client layer's forward/backward samples/s on samples already in
/// memory: the smaller is the bottleneck. `--model` (default: a one-block CNN at 224x224, the COVID-CT network's first
/// block; mura-vgg19 for MURA's two 64-channel convolutions), `--batch 16`.
/// </summary>
public static class ImageFolderBench
{
    private const int Classes = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var images = options.GetInt("images", 10_000, 40);
        var compare = options.GetInt("compare", 2_500, 20);
        var size = options.GetInt("size", 512, 64);
        var steps = options.GetInt("steps", 40, 3);
        var batch = options.GetInt("batch", 16, 4);
        var cacheMib = options.GetInt("cache-mib", 64, 1);
        var modelName = options.Get("model", BenchModel.Name);
        if (options.Get("side", "") == "train")
            return Train(options.Get("folder", ""), Model(modelName, options.Smoke), steps, batch, cacheMib);

        var folder = Path.Combine(Path.GetTempPath(), $"splitfn-bench-images-{Guid.NewGuid():N}");
        var results = new JsonObject { ["model"] = modelName, ["image_size"] = size, ["steps"] = steps, ["batch"] = batch, ["cache_mib"] = cacheMib };
        try
        {
            var written = 0;
            foreach (var count in new[] { compare, images }.Distinct().Order())
            {
                var clock = Stopwatch.StartNew();
                var bytes = Generate(folder, written, count, size);
                written = count;
                Console.WriteLine($"  {count} images of {size}x{size} in {folder}: {bytes / 1048576.0:F0} MiB, generated in {clock.Elapsed.TotalSeconds:F1} s");
                string[] arguments = ["--side", "train", "--folder", folder, "--model", modelName, "--steps", Text(steps), "--batch", Text(batch),
                    "--cache-mib", Text(cacheMib)];
                var child = await Child(options.Smoke ? [.. arguments, "--smoke"] : arguments).ConfigureAwait(false);
                if (child is null) return 1;
                child["folder_mib"] = Math.Round(bytes / 1048576.0, 1);
                results[$"images_{count}"] = child;
            }
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        var small = results[$"images_{compare}"]!.AsObject();
        var large = results[$"images_{images}"]!.AsObject();
        var peakSmall = small["peak_rss_mib"]!.GetValue<double>();
        var peakLarge = large["peak_rss_mib"]!.GetValue<double>();
        results["peak_rss_ratio"] = Math.Round(peakLarge / peakSmall, 3);
        results["images_ratio"] = Math.Round(images / (double)compare, 3);
        var decode = large["decode_resize_images_per_s"]!.GetValue<double>();
        var client = large["client_samples_per_s"]!.GetValue<double>();
        results["bottleneck"] = decode < client ? "decode+resize" : "client layer";
        Console.WriteLine($"image_folder: peak RSS {peakSmall:F0} MiB at {compare} images, {peakLarge:F0} MiB at {images} ({images / (double)compare:F1}x the "
            + $"images, {peakLarge / peakSmall:F2}x the memory); training {large["train_samples_per_s"]} samples/s; decode+resize {decode:F1} images/s vs "
            + $"client forward/backward {client:F1} samples/s: the bottleneck is {results["bottleneck"]}");
        BenchResults.Merge("image_folder", results, options.ResultsPath);
        return 0;
    }

    /// <summary>The default network: the COVID-CT network's first block (conv 1->32, ReLU, max pool) at 224x224; a pooled linear head on the server.</summary>
    public static ModelDefinition BenchModel { get; } = new(
        Name: "cnn-224",
        Description: "one conv block at 224x224 at the hospital (the COVID-CT network's first block), a pooled linear head",
        Task: TaskKind.Classification,
        InputShape: [1, 224, 224],
        ClientLayers: [new Conv2d(1, 32, 3, Padding: 1), new ReLU(), new MaxPool2d(2)],
        ServerLayers: [new AdaptiveAvgPool2d(1), new Flatten(), new Linear(32, 1), new Sigmoid()],
        Loss: LossKind.BinaryCrossEntropy,
        BatchSize: 16,
        Epochs: 1,
        Optimizer: OptimizerSettings.Adam(1e-3));

    // --smoke: the same network at 32x32 so the smoke test stays short; its figures mean nothing.
    private static ModelDefinition Model(string name, bool smoke)
    {
        var model = name == BenchModel.Name ? BenchModel : ModelCatalog.Get(name);
        return smoke && model == BenchModel ? model with { InputShape = [1, 32, 32] } : model;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    // Images [from, to) of the folder: class k's pictures differ in a bright disc's place; a COM segment makes every file unique.
    private static long Generate(string folder, int from, int to, int size)
    {
        const int Pictures = 8;
        var templates = new byte[Classes][][];
        for (var k = 0; k < Classes; k++)
        {
            Directory.CreateDirectory(Path.Combine(folder, $"class{k}"));
            templates[k] = [.. Enumerable.Range(0, Pictures).Select(p => Jpeg(Picture(size, k, p), size))];
        }
        long bytes = 0;
        for (var i = 0; i < to; i++)
        {
            var k = i % Classes;
            var template = templates[k][i / Classes % Pictures];
            if (i >= from)
            {
                var comment = System.Text.Encoding.ASCII.GetBytes(Text(i));
                var file = new byte[template.Length + 4 + comment.Length];
                template.AsSpan(0, 2).CopyTo(file); // SOI
                file[2] = 0xFF;
                file[3] = 0xFE; // COM, length includes its own two bytes
                file[4] = (byte)((comment.Length + 2) >> 8);
                file[5] = (byte)(comment.Length + 2);
                comment.CopyTo(file.AsSpan(6));
                template.AsSpan(2).CopyTo(file.AsSpan(6 + comment.Length));
                File.WriteAllBytes(Path.Combine(folder, $"class{k}", $"img{i:D6}.jpg"), file);
            }
            bytes += template.Length + 4 + Text(i).Length;
        }
        return bytes;
    }

    private static byte[] Picture(int size, int cls, int seed)
    {
        var random = new Random((cls * 1000) + seed);
        var pixels = new byte[size * size];
        var (cx, cy) = (size * (cls == 0 ? 0.3 : 0.7), size * (0.3 + (0.05 * seed)));
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var disc = ((x - cx) * (x - cx)) + ((y - cy) * (y - cy)) < size * size / 36.0 ? 120 : 0;
                pixels[(y * size) + x] = (byte)Math.Clamp(40 + (x * 60 / size) + disc + random.Next(16), 0, 255);
            }
        }
        return pixels;
    }

    private static byte[] Jpeg(byte[] grey, int size)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WriteJpg(grey, size, size, ColorComponents.Grey, stream, 90);
        return stream.ToArray();
    }

    // The child: what the agent does with the folder, in this process alone, so its peak RSS is this count's.
    private static int Train(string folder, ModelDefinition model, int steps, int batch, int cacheMib)
    {
        var (height, width) = ((int)model.InputShape[1], (int)model.InputShape[2]);
        var clock = Stopwatch.StartNew();
        var source = new ImageSourceOptions { Path = folder, CacheMegabytes = cacheMib };
        var data = ImageSourceLoader.Load(source, new ImageSplitRule(1, [1], 0), 1, height, width);
        var loadSeconds = clock.Elapsed.TotalSeconds;
        var listed = data.Report.Usable;
        var rssAfterLoad = Rss();
        Console.WriteLine($"  {listed} images: first pass (decode, hash, statistics) {loadSeconds:F1} s, {listed / loadSeconds:F1} images/s; RSS "
            + $"{rssAfterLoad:F0} MiB");

        var manifest = RunManifest.ForModel("image-folder", model, TrainingMode.Vanilla, ["h"], seed: 1) with { BatchSize = batch };
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        var train = data.Train;
        var order = SeededRandom.Permutation(train.Count, 7);
        var random = new Random(1);
        var cut = (int)manifest.CutShape.Aggregate(1L, (a, b) => a * b);
        var gradient = Enumerable.Range(0, batch * cut).Select(_ => (random.NextSingle() - 0.5f) * 1e-3f).ToArray();
        int[] Rows(int step) => [.. Enumerable.Range(0, batch).Select(i => order[((step * batch) + i) % order.Length])];
        void Step(TrainingSet set, int[] rows)
        {
            using var a = client.Forward(set, rows, train: true, out _);
            _ = a.ToFloats();
            client.ApplyGradient(a, gradient);
        }
        Step(train, Rows(0)); // warm-up: libtorch's first call allocates its pools
        clock.Restart();
        for (var step = 1; step <= steps; step++) Step(train, Rows(step));
        var trainRate = steps * batch / clock.Elapsed.TotalSeconds;
        var peak = PeakMemory.PeakBytes() / 1048576.0;
        Console.WriteLine($"  training from the folder: {trainRate:F1} samples/s over {steps} steps of {batch} (cache {cacheMib} MiB); peak RSS {peak:F0} MiB");

        // Apart: decoding and resizing alone (one thread, as Gather reads), then the client layer alone on samples in memory.
        var files = Directory.EnumerateFiles(folder, "*.jpg", SearchOption.AllDirectories).Take(Math.Max(batch * 4, 16)).ToList();
        clock.Restart();
        foreach (var file in files) _ = ImageFiles.Prepare(ImageFiles.Read(file), 1, height, width);
        var decodeRate = files.Count / clock.Elapsed.TotalSeconds;
        var sampleSize = height * width;
        var memory = new TrainingSet([.. Enumerable.Range(0, batch * sampleSize).Select(_ => random.NextSingle())],
            [.. Enumerable.Range(0, batch).Select(i => (float)(i % 2))], model.InputShape);
        int[] all = [.. Enumerable.Range(0, batch)];
        Step(memory, all);
        clock.Restart();
        var computeSteps = Math.Max(3, steps / 4);
        for (var step = 0; step < computeSteps; step++) Step(memory, all);
        var clientRate = computeSteps * batch / clock.Elapsed.TotalSeconds;
        Console.WriteLine($"  decode+resize {decodeRate:F1} images/s (one thread); client layer forward/backward {clientRate:F1} samples/s; "
            + $"{TorchRuntime.Threads} threads on {Environment.ProcessorCount} cores");
        Console.WriteLine(new JsonObject
        {
            ["images"] = listed,
            ["first_pass_seconds"] = Math.Round(loadSeconds, 1),
            ["first_pass_images_per_s"] = Math.Round(listed / loadSeconds, 1),
            ["rss_mib_after_first_pass"] = Math.Round(rssAfterLoad, 1),
            ["peak_rss_mib"] = Math.Round(peak, 1),
            ["train_samples_per_s"] = Math.Round(trainRate, 1),
            ["decode_resize_images_per_s"] = Math.Round(decodeRate, 1),
            ["client_samples_per_s"] = Math.Round(clientRate, 1),
            ["threads"] = TorchRuntime.Threads,
            ["load_average"] = LoadAverage(),
        }.ToJsonString());
        return 0;
    }

    private static async Task<JsonObject?> Child(string[] arguments)
    {
        // The apphost runs itself; anywhere else (dotnet splitfn-bench.dll, a test host) run the dll with dotnet.
        var apphost = Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "splitfn-bench";
        var info = new ProcessStartInfo(apphost ? Environment.ProcessPath! : "dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        if (!apphost) info.ArgumentList.Add(typeof(ImageFolderBench).Assembly.Location);
        info.ArgumentList.Add("images");
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        string? last = null;
        while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            Console.WriteLine(line);
            last = line;
        }
        await process.WaitForExitAsync().ConfigureAwait(false);
        return process.ExitCode == 0 && last is not null ? JsonNode.Parse(last)!.AsObject() : null;
    }

    private static double Rss()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            : null;
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "";
}
