using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SplitFunctions.Core.Data;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// `splitfn-local experiments` as a new user runs it, as a real process: a hospital CSV with its own four columns
/// through every arm (Azurite, the function and three agents for the split arms), each user error as one line with
/// its exit code before anything starts, and a study killed mid-run that --resume finishes.
/// </summary>
public sealed class ExperimentsTests
{
    private static readonly string[] FourColumns = ["patient_age", "chol_total", "trigs", "hdl_c"];

    [Fact]
    public async Task Four_columns_of_a_hospitals_own_naming_train_every_arm_and_get_the_friedewald_baseline()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 600);
        var output = dir.File("studies");

        var run = await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--target", "ldl_measured",
            "--epochs", "2", "--batch-size", "64", "--out", output]);
        run.Code.Should().Be(0, run.Log);

        var study = Path.Combine(output, "clinic");
        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "results.json")));
        var arms = results.RootElement.GetProperty("arms").EnumerateArray().ToDictionary(a => a.GetProperty("arm").GetString()!);
        arms.Keys.Should().BeEquivalentTo("split-vanilla", "split-temporal", "split-ushaped", "single-hospital-a", "single-hospital-b", "single-hospital-c",
            "centralised", "federated");
        foreach (var (name, arm) in arms)
        {
            var msle = arm.GetProperty("test").GetProperty("regression").GetProperty("msle").GetDouble();
            double.IsFinite(msle).Should().BeTrue($"{name} scored the test split");
            arm.GetProperty("test").GetProperty("regression").GetProperty("samples").GetInt32().Should().Be(60, "10% of 600 rows are the test split");
        }
        foreach (var name in new[] { "centralised", "federated" })
        {
            var losses = arms[name].GetProperty("history").EnumerateArray().Select(h => h.GetProperty("trainLoss").GetDouble()).ToList();
            losses[^1].Should().BeLessThan(losses[0], $"{name} learned from the four columns");
        }
        arms["split-vanilla"].GetProperty("perHospital").EnumerateObject().Should().HaveCount(3, "every hospital scored the test rows itself");

        // The contract: the manifest the agents and the function read says the network takes four inputs.
        using (var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "vanilla", "manifest.json"))))
        {
            manifest.RootElement.GetProperty("inputShape").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(4);
        }

        // Nothing rare but real was dropped (the file holds HDLs of 9 mg/dL), and Friedewald is reported under these names.
        run.Log.Should().Contain("600 read, 0 dropped");
        var friedewald = results.RootElement.GetProperty("friedewald");
        friedewald.GetProperty("columns").GetProperty("hdl").GetString().Should().Be("hdl_c");
        var below = friedewald.GetProperty("rowsTgBelow400").GetInt32();
        var above = friedewald.GetProperty("rowsTgFrom400").GetInt32();
        (below + above).Should().Be(60);
        above.Should().BeGreaterThan(0, "the file has triglycerides above 400 mg/dL, reported apart");
        // The synthetic LDL follows Friedewald below TG 400 (plus noise), so the formula is close there and worse above.
        var msleBelow = friedewald.GetProperty("tgBelow400").GetProperty("regression").GetProperty("msle").GetDouble();
        var msleAbove = friedewald.GetProperty("tgFrom400").GetProperty("regression").GetProperty("msle").GetDouble();
        msleBelow.Should().BeLessThan(0.02);
        msleAbove.Should().BeGreaterThan(msleBelow);
        (await File.ReadAllTextAsync(Path.Combine(study, "results.md"))).Should().Contain("friedewald (TG>=400)").And.Contain("chol_total - hdl_c - trigs/5");
    }

    [Fact]
    public async Task Each_user_error_is_one_line_with_its_exit_code_before_anything_starts()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 100);
        var output = dir.File("studies");
        string[] common = ["--target", "ldl_measured", "--epochs", "1", "--out", output];

        var unknownColumn = await RunAsync(["experiments", "--data", csv, "--features", "patient_age", "chol_total", "trigs", "hdl", .. common]);
        AssertOneLineError(unknownColumn, 3, "mapped column 'hdl' is not in the header", "patient_age, chol_total, trigs, hdl_c, ldl_measured");

        var missingData = await RunAsync(["experiments", "--data", dir.File("absent.csv"), "--features", .. FourColumns, .. common]);
        AssertOneLineError(missingData, 3, "absent.csv does not exist");

        var unknownModel = await RunAsync(["experiments", "--data", csv, "--model", "resnet-9000", "--features", .. FourColumns, .. common]);
        AssertOneLineError(unknownModel, 4, "unknown model 'resnet-9000'", "ldl-mlp");

        var imageModel = await RunAsync(["experiments", "--data", csv, "--model", "pneumonia-cnn", "--features", .. FourColumns, .. common]);
        AssertOneLineError(imageModel, 4, "takes images [1,28,28]", "rows of 4 features");

        var rgb = dir.File("rgb.npz");
        NpzWriter.Write(rgb, [new("train_images", new NpyArray(NpyDType.UInt8, [40, 3, 28, 28], new byte[40 * 3 * 28 * 28])),
            new("train_labels", NpyArray.FromFloats([.. Enumerable.Range(0, 40).Select(i => (float)(i % 2))], 40))]);
        var width = await RunAsync(["experiments", "--data", rgb, "--epochs", "1", "--out", output]);
        AssertOneLineError(width, 4, "width mismatch", "[3,28,28]", "[1,28,28]");

        var badLipids = await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--lipids", "tc=chol_total,hdl=nope,tg=trigs", .. common]);
        AssertOneLineError(badLipids, 2, "'nope' is not a mapped feature");

        var demoData = await RunAsync(["demo", "--data", dir.File("absent.npz"), "--out", dir.File("demo")]);
        AssertOneLineError(demoData, 3, "absent.npz does not exist");
        var demoModel = await RunAsync(["demo", "--model", "resnet-9000", "--out", dir.File("demo")]);
        AssertOneLineError(demoModel, 4, "unknown model 'resnet-9000'");

        // None of these got as far as storage or an agent.
        foreach (var run in new[] { unknownColumn, missingData, unknownModel, imageModel, width, badLipids, demoData, demoModel })
        {
            run.Log.Should().NotContain("Azurite on ports");
        }
        Directory.Exists(Path.Combine(output, "clinic", "vanilla-selection")).Should().BeFalse();
    }

    [Fact]
    public async Task An_arm_that_fails_while_running_names_its_log_folder_and_keeps_the_finished_arms()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 200);
        var output = dir.File("studies");

        // The data file disappears once the in-process arm is done (moved by someone): the agents' init fails on it.
        var run = await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--target", "ldl_measured", "--epochs", "1",
            "--arms", "centralised", "vanilla", "--out", output], onLine: line =>
            {
                if (line.StartsWith("== arm vanilla", StringComparison.Ordinal)) File.Move(csv, csv + ".moved");
                return false;
            });
        AssertOneLineError(run, 5, "arm 'vanilla' failed", "logs: ", "finished arms (centralised) are saved", "--resume");
        var logs = run.ErrorLine.Split("logs: ", 2)[1].Split(';')[0];
        File.Exists(Path.Combine(logs, "hospital-a-init.log")).Should().BeTrue($"the named folder {logs} holds the failed agent's log");
        File.Exists(Path.Combine(output, "clinic", "arms", "centralised.json")).Should().BeTrue();
    }

    [Fact]
    public async Task A_study_killed_mid_run_resumes_with_the_arms_not_yet_done()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 2000);
        var output = dir.File("studies");
        string[] args = ["experiments", "--data", csv, "--features", .. FourColumns, "--target", "ldl_measured", "--epochs", "15", "--batch-size", "32",
            "--arms", "centralised", "single", "federated", "--out", output];
        var study = Path.Combine(output, "clinic");

        // Killed (SIGKILL, no chance to clean up) as soon as the second arm starts.
        var killed = await RunAsync(args, onLine: line => line.StartsWith("== arm single", StringComparison.Ordinal));
        killed.Killed.Should().BeTrue(killed.Log);
        var centralised = await File.ReadAllBytesAsync(Path.Combine(study, "arms", "centralised.json"));
        File.Exists(Path.Combine(study, "arms", "single.json")).Should().BeFalse();
        using (var partial = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "results.json"))))
        {
            partial.RootElement.GetProperty("arms").EnumerateArray().Select(a => a.GetProperty("arm").GetString()).Should()
                .Equal(["centralised"], "the report holds what had finished");
        }

        var resumed = await RunAsync([.. args, "--resume"]);
        resumed.Code.Should().Be(0, resumed.Log);
        resumed.Log.Should().Contain("== arm centralised: done in an earlier run").And.NotContain("  centralised  ");
        (await File.ReadAllBytesAsync(Path.Combine(study, "arms", "centralised.json"))).Should().Equal(centralised, "the finished arm was not run again");
        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "results.json")));
        results.RootElement.GetProperty("arms").EnumerateArray().Select(a => a.GetProperty("arm").GetString())
            .Should().Equal("centralised", "single-hospital-a", "single-hospital-b", "single-hospital-c", "federated");

        // Resuming with other settings would mix incomparable arms: refused.
        var other = await RunAsync([.. args.Select(a => a == "15" ? "16" : a), "--resume"]);
        AssertOneLineError(other, 2, "--resume", "other settings");

        // Starting over (no --resume) keeps the finished arms, moved aside.
        var fresh = await RunAsync([.. args.Select(a => a is "single" or "federated" ? "centralised" : a).Distinct()]);
        fresh.Code.Should().Be(0, fresh.Log);
        Directory.GetDirectories(study, "arms-*").Should().ContainSingle()
            .Which.Should().Match(d => File.Exists(Path.Combine(d, "single.json")) && File.Exists(Path.Combine(d, "federated.json")));
    }

    [Fact]
    public async Task A_network_from_a_model_file_trains_through_the_real_system_and_every_arm()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 600);
        var output = dir.File("studies");
        var modelFile = Path.Combine(RepoRoot.Path, "docs", "models", "lipid-mlp.json");

        var run = await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--target", "ldl_measured", "--model-file", modelFile,
            "--epochs", "3", "--batch-size", "64", "--arms", "vanilla", "centralised", "--out", output]);
        run.Code.Should().Be(0, run.Log);

        var study = Path.Combine(output, "clinic");
        // The agents and the function built the file's network from the manifest: its own layers (tanh, dropout), the cut where the file has it.
        using (var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "vanilla", "manifest.json"))))
        {
            manifest.RootElement.GetProperty("model").GetString().Should().Be("lipid-mlp");
            manifest.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("type").GetString())
                .Should().Equal("linear", "tanh", "cut", "linear", "leaky_relu", "dropout", "linear");
            manifest.RootElement.GetProperty("cutShape").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(32);
        }
        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(study, "results.json")));
        var arms = results.RootElement.GetProperty("arms").EnumerateArray().ToDictionary(a => a.GetProperty("arm").GetString()!);
        arms.Keys.Should().BeEquivalentTo("split-vanilla", "centralised");
        foreach (var (name, arm) in arms)
        {
            var losses = arm.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("trainLoss").GetDouble()).ToList();
            losses[^1].Should().BeLessThan(losses[0], $"{name} learned with the file's network");
            double.IsFinite(arm.GetProperty("test").GetProperty("regression").GetProperty("msle").GetDouble()).Should().BeTrue();
        }
        arms["split-vanilla"].GetProperty("perHospital").EnumerateObject().Should().HaveCount(3);
    }

    [Fact]
    public async Task A_bad_model_file_is_one_line_with_exit_code_4_before_anything_starts()
    {
        using var dir = new TempDirectory();
        var csv = WriteLipids(dir.File("clinic.csv"), rows: 100);
        string[] common = ["--target", "ldl_measured", "--epochs", "1", "--out", dir.File("studies")];
        var good = await File.ReadAllTextAsync(Path.Combine(RepoRoot.Path, "docs", "models", "lipid-mlp.json"));
        string Write(string name, string text)
        {
            var path = dir.File(name);
            System.IO.File.WriteAllText(path, text);
            return path;
        }

        var badLayer = Write("bad-layer.json", good.Replace("\"tanh\"", "\"swish\"", StringComparison.Ordinal));
        var shape = Write("shape.json", good);
        // The cut before the first linear layer: the hospital's part (dropout) would send its rows out unmixed.
        var cut = Write("cut.json", good.Replace("    { \"type\": \"cut\" },\n", "", StringComparison.Ordinal)
            .Replace("    { \"type\": \"linear\", \"in\": 4, \"out\": 32 },\n", "    { \"type\": \"dropout\", \"p\": 0.1 },\n    { \"type\": \"cut\" },\n    "
                + "{ \"type\": \"linear\", \"in\": 4, \"out\": 32 },\n", StringComparison.Ordinal));
        var loss = Write("loss.json", good.Replace("\"Regression\"", "\"Classification\"", StringComparison.Ordinal));
        var malformed = Write("malformed.json", good[..(good.Length / 2)]);

        var runs = new List<LocalRun>
        {
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--model-file", badLayer, .. common]),
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns[..3], "--model-file", shape, .. common]),
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--model-file", cut, .. common]),
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--model-file", loss, .. common]),
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--model-file", malformed, .. common]),
            await RunAsync(["experiments", "--data", csv, "--features", .. FourColumns, "--model-file", dir.File("absent.json"), .. common]),
        };
        AssertOneLineError(runs[0], 4, "--model-file: model file bad-layer.json: layers[1]: unknown layer type 'swish'", "known: conv2d");
        AssertOneLineError(runs[1], 4, "layer 0 'linear in=4 out=32' (hospital) does not fit: takes 4 features, gets 3; the data gives input [3]");
        AssertOneLineError(runs[2], 4, "cut.json", "mix no inputs");
        AssertOneLineError(runs[3], 4, "loss.json", "loss MeanSquaredError does not fit a Classification task");
        AssertOneLineError(runs[4], 4, "model file malformed.json is not valid: ");
        AssertOneLineError(runs[5], 4, "absent.json does not exist");
        foreach (var run in runs) run.Log.Should().NotContain("Azurite on ports");
    }

    /// <summary>A clinic's lipid panel in mg/dL: measured LDL follows Friedewald below TG 400 (with noise) and exceeds its estimate above.</summary>
    private static string WriteLipids(string path, int rows)
    {
        var random = new Random(17);
        double Gauss(double mean, double sd) => mean + sd * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var text = new StringBuilder("patient_age,chol_total,trigs,hdl_c,ldl_measured\n");
        for (var i = 0; i < rows; i++)
        {
            var hdl = i % 50 == 0 ? 9 : Math.Max(15, Math.Round(Gauss(52, 13)));
            var tg = Math.Round(i % 12 == 0 ? 400 + random.NextDouble() * 600 : Math.Exp(Gauss(4.8, 0.4)));
            // Total cholesterol = LDL + HDL + VLDL; VLDL is TG/5 below 400 mg/dL and less above it (where Friedewald overstates it).
            var ldl = Math.Round(Math.Max(40, Gauss(120, 30)));
            var tc = Math.Round(ldl + hdl + tg / (tg < 400 ? 5 : 8) + Gauss(0, 4));
            text.Append(CultureInfo.InvariantCulture, $"{20 + random.Next(65)},{tc},{tg},{hdl},{ldl}\n");
        }
        File.WriteAllText(path, text.ToString());
        return path;
    }

    private static void AssertOneLineError(LocalRun run, int code, params string[] fragments)
    {
        run.Code.Should().Be(code, run.Log);
        run.ErrorLine.Should().StartWith("splitfn-local: ").And.ContainAll(fragments).And.Contain($"(exit code {code})");
        run.Stderr.Trim().Split('\n').Should().HaveCount(1, "one line, no stack trace: " + run.Stderr);
        run.Log.Should().NotContain("   at ");
    }

    private sealed record LocalRun(int Code, string Stdout, string Stderr, bool Killed)
    {
        public string Log => Stdout + Stderr;

        public string ErrorLine => Stderr.Trim();
    }

    /// <summary>Runs splitfn-local; <paramref name="onLine"/> sees each stdout line and kills the process (SIGKILL) by returning true.</summary>
    private static async Task<LocalRun> RunAsync(string[] arguments, Func<string, bool>? onLine = null)
    {
        var dll = Path.Combine(RepoRoot.Path, "local-run", "bin", "Release", "net10.0", "splitfn-local.dll");
        File.Exists(dll).Should().BeTrue($"{dll} must be built (scripts/test.sh builds the solution)");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot.Path
        };
        info.ArgumentList.Add(dll);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = new StringBuilder();
        var killed = false;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            // Lines are read on a thread of their own: an awaited read resumes on the thread pool, which other tests can
            // keep busy for seconds, long enough for a short arm to finish before the kill meant for its start.
            await Task.Factory.StartNew(() =>
            {
                while (process.StandardOutput.ReadLine() is { } line)
                {
                    stdout.AppendLine(line);
                    if (!killed && onLine?.Invoke(line) == true)
                    {
                        process.Kill(entireProcessTree: true);
                        killed = true;
                    }
                }
            }, TaskCreationOptions.LongRunning).WaitAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("splitfn-local did not finish within 10 minutes: " + stdout + await stderr);
        }
        return new LocalRun(process.ExitCode, stdout.ToString(), await stderr, killed);
    }
}
