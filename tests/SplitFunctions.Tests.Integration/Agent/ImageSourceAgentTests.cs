using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Hospitals' own image files through the real system: agents initialised on a generated PNG/JPEG folder and on the
/// shared DICOM CT slices (labels from overview.csv, three hospitals sharing the file 7:2:1) train against the real
/// function (drain mode, a child process) on a real Azurite, then evaluate; bad image sources stop `init` with one line
/// and the data exit code.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ImageSourceAgentTests(AzuriteFixture azurite)
{
    private static string NewRunId() => "run-" + Guid.NewGuid().ToString("N")[..12];

    private async Task<IReadOnlyList<AgentRun>> TrainThreeAsync(TempDirectory dir, RunManifest manifest, Func<int, string[]> dataArguments)
    {
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        var keys = dir.File("keys");
        var configs = new List<string>();
        for (var i = 0; i < manifest.Hospitals.Count; i++)
        {
            var config = dir.File($"{manifest.Hospitals[i]}.json");
            var init = await AgentTestBed.RunAsync(["init", "--config", config, "--hospital", manifest.Hospitals[i], "--run", manifest.RunId,
                "--connection-string", azurite.Azurite.ConnectionString, "--key-dir", keys, "--state", dir.File($"state-{i}"), "--reply-timeout", "120",
                "--partition-seed", "4", "--partition-weights", "0.7,0.2,0.1", "--partition-index", $"{i}", .. AgentTestBed.OpenFloor, .. dataArguments(i)]);
            init.ExitCode.Should().Be(0, init.ToString());
            init.Output.Should().Contain("data report for");
            configs.Add(config);
        }
        var runs = new List<AgentRun>();
        await using var function = DrainFunction.Start(azurite.Azurite.ConnectionString, keys);
        // The hospitals train at the same time, as in production.
        var trained = await Task.WhenAll(configs.Select(c => AgentTestBed.RunAsync(["train", "--config", c, "--output", "log"])));
        foreach (var t in trained) t.ExitCode.Should().Be(0, t + "\n--- function\n" + function.Output);
        foreach (var c in configs)
        {
            var evaluated = await AgentTestBed.RunAsync(["evaluate", "--config", c, "--split", "test", "--output", "log"]);
            evaluated.ExitCode.Should().Be(0, evaluated + "\n--- function\n" + function.Output);
            runs.Add(evaluated);
        }
        await function.StopAsync();
        return [.. trained, .. runs];
    }

    [Fact]
    public async Task Three_hospitals_train_on_a_folder_of_png_and_jpeg_images_and_evaluate()
    {
        using var dir = new TempDirectory();
        var images = TestImages.ClassFolder(dir.File("images"), classes: 2, perClass: 40, size: 28);
        // What a copied hospital folder also holds: OS litter, a link loop, an empty file and a header declaring 50000x50000 (a
        // decompression bomb); each skipped with its reason at `init` and again when `train` starts, none a crash.
        await File.WriteAllBytesAsync(Path.Combine(images, "class0", "bomb.png"), TestImages.PngDeclaring(50_000, 50_000));
        await File.WriteAllBytesAsync(Path.Combine(images, "class1", ".DS_Store"), [0, 0, 0, 1]);
        await File.WriteAllBytesAsync(Path.Combine(images, "class1", "empty.PNG"), []);
        Directory.CreateDirectory(Path.Combine(images, "__MACOSX"));
        Directory.CreateSymbolicLink(Path.Combine(images, "class0", "loop"), images);
        var manifest = RunManifest.ForModel(NewRunId(), ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["img-a", "img-b", "img-c"], seed: 11);
        manifest = manifest with { BatchSize = 16, Epochs = 3 };

        var runs = await TrainThreeAsync(dir, manifest, _ => ["--data", images, "--classes", "class0,class1"]);

        runs[0].Output.Should().ContainAll("data report for", "PNG 16-bit grey", "JPEG 8-bit RGB", "PNG 8-bit RGBA", "converted to grey 28x28",
            "80 usable image(s) of 85 file(s) listed, 5 skipped", "over the 50 megapixels", "hidden or system file", "folder link to a folder already read");
        // 80 images: 16 held out, 64 shared 7:2:1 (45, 13, 6).
        StateFolder.Peek(dir.File("state-0"), manifest.RunId)!.TrainSamples.Should().Be(45);
        // The quadrant pictures are easy: the largest hospital's model separates the test images.
        runs[3].Output.Should().MatchRegex(@"ROC AUC\s*[:=]?\s*(0\.[789]|1\.0)");
    }

    [Fact]
    public async Task Three_hospitals_train_on_dicom_ct_slices_labelled_by_a_csv_keyed_by_file_name()
    {
        using var dir = new TempDirectory();
        var manifest = RunManifest.ForModel(NewRunId(), ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["dcm-a", "dcm-b", "dcm-c"], seed: 5);
        manifest = manifest with { BatchSize = 16, Epochs = 2 };

        var runs = await TrainThreeAsync(dir, manifest, _ => ["--data", Path.Combine(SharedData.DicomCt, "overview.csv"), "--data-kind", "images",
            "--image-root", Path.Combine(SharedData.DicomCt, "dicom_dir"), "--path-column", "dicom_name", "--label-columns", "Contrast",
            "--window", "40:400"]);

        runs[0].Output.Should().ContainAll("100 images (0 skipped)", "DICOM 12-bit MONOCHROME2, set window", "DICOM 16-bit MONOCHROME2, set window");
        var steps = Enumerable.Range(0, 3).Select(i => StateFolder.Peek(dir.File($"state-{i}"), manifest.RunId)!).ToList();
        steps.Sum(s => s.TrainSamples).Should().Be(80, "100 slices, 10 validation and 10 test held out");
        steps.Should().OnlyContain(s => s.Epoch == 2);
        runs.Skip(3).Should().OnlyContain(r => r.Output.Contains("ROC AUC"));
    }

    [Theory]
    [InlineData(TrainingMode.Vanilla)]
    [InlineData(TrainingMode.Temporal)]
    [InlineData(TrainingMode.UShaped)]
    public async Task A_multi_class_run_on_an_image_folder_trains_and_reports_multi_class_metrics(TrainingMode mode)
    {
        using var dir = new TempDirectory();
        var images = TestImages.ClassFolder(dir.File("images"), classes: 4, perClass: 24, size: 28);
        var model = TaskModels.Logits(TaskKind.MultiClass, 4);
        // Temporal mode trains the server alone on fixed client features: more epochs for the same separation.
        var manifest = RunManifest.ForModel(NewRunId(), model, mode, ["mc-a"], seed: 2) with
        {
            BatchSize = 16,
            Epochs = mode == TrainingMode.Temporal ? 8 : 4,
        };

        var runs = await TrainThreeAsync(dir, manifest, _ => ["--data", images, "--classes", "class0,class1,class2,class3"]);

        // A temporal hospital uploads its features once and goes offline: it validates nothing while the server trains.
        if (mode != TrainingMode.Temporal) runs[0].Output.Should().MatchRegex(@"validation macro-auc \d\.\d{4}");
        runs[1].Output.Should().ContainAll("balanced accuracy", "ROC AUC macro", "micro", "AUC per class: 0:", "confusion (rows true, columns predicted)");
        var report = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(dir.File("state-0"), manifest.RunId,
            "evaluation.json")))!;
        var confusion = report["multiClass"]!["confusion"]!.AsArray();
        confusion.Should().HaveCount(4);
        confusion.Sum(row => row!.AsArray().Sum(v => v!.GetValue<int>())).Should().Be(report["samples"]!.GetValue<int>());
        report["multiClass"]!["macroAuc"]!.GetValue<double>().Should().BeGreaterThan(0.8, "four quadrants are easy to tell apart");
    }

    [Fact]
    public async Task A_multi_label_run_on_a_manifest_with_one_column_per_label_trains_and_reports_auc_per_label()
    {
        using var dir = new TempDirectory();
        // Each picture shows a square in quadrant q; labels: one 0/1 column per quadrant, and the patient column keeps pairs together.
        var lines = new List<string> { "path,q0,q1,q2,patient" };
        Directory.CreateDirectory(dir.File("scans"));
        for (var i = 0; i < 90; i++)
        {
            var q = i % 3;
            await File.WriteAllBytesAsync(dir.File($"scans/s{i}.png"), TestImages.Png(28, 28, TestImages.PngKind.Grey, 8, TestImages.ClassPicture(28, q, i)));
            lines.Add($"scans/s{i}.png,{(q == 0 ? 1 : 0)},{(q == 1 ? 1 : 0)},{(q == 2 ? 1 : 0)},p{i / 2}");
        }
        await File.WriteAllLinesAsync(dir.File("labels.csv"), lines);
        var model = TaskModels.Logits(TaskKind.MultiLabel, 3);
        var manifest = RunManifest.ForModel(NewRunId(), model, TrainingMode.Vanilla, ["ml-a"], seed: 2) with { BatchSize = 16, Epochs = 4 };

        var runs = await TrainThreeAsync(dir, manifest, _ => ["--data", dir.File("labels.csv"), "--label-columns", "q0,q1,q2", "--group-column", "patient"]);

        runs[0].Output.Should().MatchRegex(@"validation mean-auc \d\.\d{4}");
        runs[1].Output.Should().Contain("ROC AUC mean");
        var report = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(dir.File("state-0"), manifest.RunId,
            "evaluation.json")))!;
        report["multiLabel"]!["aucPerLabel"]!.AsArray().Should().HaveCount(3);
        report["multiLabel"]!["meanAuc"]!.GetValue<double>().Should().BeGreaterThan(0.8);
    }

    [Fact]
    public async Task Bad_image_sources_stop_init_with_one_line_and_the_data_exit_code()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("empty/a"));
        Directory.CreateDirectory(dir.File("empty/b"));
        await File.WriteAllTextAsync(dir.File("empty/a/scan.png"), "not a png");
        var manifest = dir.File("labels.csv");
        await File.WriteAllTextAsync(manifest, "file,label\nx.png,1\n");
        var badWindow = TestImages.ClassFolder(dir.File("ok"), classes: 2, perClass: 2, size: 8);

        async Task<AgentRun> Init(params string[] data) => await AgentTestBed.RunAsync(["init", "--config", dir.File($"{Guid.NewGuid():N}.json"),
            "--hospital", "hospital-a", "--run", "run-bad", "--connection-string", "UseDevelopmentStorage=true", "--key-dir", dir.File("keys"), .. data]);

        var cases = new (AgentRun Run, int Code, string Text)[]
        {
            (await Init("--data", dir.File("empty")), 4, "no usable image (1 files listed; 1 not a PNG or JPEG file (unknown signature))"),
            (await Init("--data", dir.File("empty/a")), 4, "found 0 class subfolder(s)"),
            (await Init("--data", manifest, "--data-kind", "images", "--path-column", "path"), 4, "has no column 'path' (data.images.pathColumn)"),
            (await Init("--data", manifest, "--data-kind", "images", "--path-column", "file"), 4, "no usable image (1 files listed; 1 file not found)"),
            (await Init("--data", badWindow, "--window", "wide"), 3, "data.images.window 'wide' is not center:width"),
            (await Init("--data", badWindow, "--classes", "class0"), 3, "data.images.classes must list at least two"),
        };
        foreach (var (run, code, text) in cases)
        {
            run.ExitCode.Should().Be(code, run.ToString());
            // One line a hospital's IT staff can act on, then the exit code's name; no stack trace.
            var lines = run.Error.Trim().Split('\n');
            lines.Should().HaveCount(2, run.ToString());
            lines[0].Should().Contain(text);
            lines[1].Should().StartWith($"exit code {code} ");
        }
    }
}
