using System.Diagnostics;
using System.Text.Json;
using SplitFunctions.Core.Data;
using SplitFunctions.Tests.Agent;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Operator;

/// <summary>
/// The operator's path end to end on real processes: two hospitals onboarded by `splitfn-operator`, a run created by it,
/// each agent configured only from what the tool printed and wrote, the real function training them, `run status` and
/// `run watch` (in a terminal) showing both rows, and a revoked hospital refused with a clear error.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class OperatorTrainingTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Hospitals_onboarded_by_the_tool_train_from_what_it_printed_and_a_revoked_one_is_refused()
    {
        using var dir = new TempDirectory();
        var connection = azurite.Azurite.ConnectionString;
        var functionKeys = dir.File("function-keys");
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string[] hospitals = [$"opa-{suffix}", $"opb-{suffix}"];
        foreach (var h in hospitals)
        {
            var add = await OperatorProcess.OperatorAsync(connection, functionKeys, dir.Path, "hospital", "add", h);
            add.ExitCode.Should().Be(0, add.ToString());
        }
        var runId = $"run-{suffix}";
        // Two blocks at the hospital: the printed `init` writes the recommended floor, which refuses a one-layer cut.
        var create = await OperatorProcess.OperatorAsync(connection, functionKeys, dir.Path, "run", "create", "--run-id", runId, "--model",
            "pneumonia-cnn-cut2", "--hospitals", string.Join(',', hospitals), "--epochs", "1", "--batch-size", "16", "--seed", "5");
        create.ExitCode.Should().Be(0, create.ToString());

        // Each hospital runs exactly the printed line, in its package folder, with its own data file.
        var trainCommands = new Dictionary<string, List<string>>();
        for (var i = 0; i < hospitals.Length; i++)
        {
            var h = hospitals[i];
            var line = create.Output.Split('\n').Single(l => l.TrimStart().StartsWith(h + ": ", StringComparison.Ordinal)).Trim()[(h.Length + 2)..];
            var parts = line.Split(" && ");
            parts.Should().HaveCount(2, line);
            var package = Path.Combine(dir.Path, "onboarding", h);
            var data = Path.Combine(dir.Path, $"{h}.npz");
            ImageArchive.Save(data, [new("train", SyntheticImages.Generate(60, 28, 28, seed: 11 + i))]); // 48 training rows: 3 batches of 16
            var init = OperatorProcess.SplitCommand(parts[0].Replace("<data-file>", data, StringComparison.Ordinal));
            init[0].Should().Be("splitfn-agent");
            var initRun = await OperatorProcess.AgentAsync(package, [.. init.Skip(1)]);
            initRun.ExitCode.Should().Be(0, initRun.ToString());
            trainCommands[h] = [.. OperatorProcess.SplitCommand(parts[1]).Skip(1).Prepend("log").Prepend("--output")];
        }

        var function = DrainFunction.Start(connection, functionKeys);
        await using (function)
        {
            var trains = hospitals.Select(h => OperatorProcess.AgentAsync(Path.Combine(dir.Path, "onboarding", h), [.. trainCommands[h]])).ToList();
            var results = await Task.WhenAll(trains);
            foreach (var r in results) r.ExitCode.Should().Be(0, r + "\n--- function\n" + function.Output);

            var status = await OperatorProcess.OperatorAsync(connection, null, dir.Path, "run", "status", runId, "--json");
            status.ExitCode.Should().Be(0, status.ToString());
            using var json = JsonDocument.Parse(status.Output);
            var rows = json.RootElement.GetProperty("hospitals").EnumerateArray().ToList();
            rows.Select(r => r.GetProperty("hospitalId").GetString()).Should().Equal(hospitals);
            foreach (var row in rows)
            {
                row.GetProperty("stepsApplied").GetInt64().Should().Be(3, "3 training batches per hospital were applied");
                row.GetProperty("lastSequence").GetInt64().Should().BeGreaterThanOrEqualTo(3);
                row.GetProperty("epoch").GetInt32().Should().Be(1);
                row.GetProperty("validationMetric").GetString().Should().NotBeNullOrEmpty("the agent publishes its validation score");
                row.GetProperty("lastSeen").ValueKind.Should().Be(JsonValueKind.String);
            }
            var server = json.RootElement.GetProperty("server");
            server.GetProperty("leaseState").GetString().Should().Be("held", "the function still holds the run");
            server.GetProperty("instance").GetString().Should().Be("agent-tests");

            var screen = await WatchInTerminalAsync(runId, connection, dir.Path);
            foreach (var h in hospitals) screen.Should().Contain(h);
            screen.Should().Contain("steps applied").And.Contain("server").And.Contain("agent-tests").And.Contain("1/1");

            var revoke = await OperatorProcess.OperatorAsync(connection, functionKeys, dir.Path, "hospital", "revoke", hospitals[1]);
            revoke.ExitCode.Should().Be(0, revoke.ToString());
            var refused = await OperatorProcess.AgentAsync(Path.Combine(dir.Path, "onboarding", hospitals[1]), [.. trainCommands[hospitals[1]]]);
            refused.ExitCode.Should().Be(7, "storage refuses a revoked hospital's SAS: " + refused);
            refused.Error.Should().Contain("storage refused the credentials").And.NotContain("   at ");
            await function.StopAsync();
        }
    }

    // `run watch` in a real terminal: tmux when installed (a detached session on a private socket, read with capture-pane),
    // otherwise a pseudo-terminal from util-linux `script`.
    private static async Task<string> WatchInTerminalAsync(string runId, string connection, string workingDirectory)
    {
        var watch = $"dotnet {OperatorProcess.OperatorDll} --connection-string '{connection}' run watch {runId} --interval 0.5 --refreshes 4";
        if (Which("tmux") is { } tmux)
        {
            var socket = "splitfn-test-" + Guid.NewGuid().ToString("N")[..8];
            await RunAsync(tmux, workingDirectory, "-L", socket, "new-session", "-d", "-s", "watch", "-x", "200", "-y", "40", watch + "; sleep 60");
            try
            {
                var screen = "";
                for (var i = 0; i < 120 && !screen.Contains("read 20", StringComparison.Ordinal); i++)
                {
                    await Task.Delay(500);
                    screen = await RunAsync(tmux, workingDirectory, "-L", socket, "capture-pane", "-p", "-t", "watch");
                }
                return screen;
            }
            finally
            {
                await RunAsync(tmux, workingDirectory, "-L", socket, "kill-server");
            }
        }
        var script = Which("script") ?? throw new InvalidOperationException("neither tmux nor util-linux `script` is installed: one is needed to give `run "
            + "watch` a terminal");
        return await RunAsync(script, workingDirectory, "-qec", watch, "/dev/null");
    }

    private static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(p => Path.Combine(p, tool)).FirstOrDefault(File.Exists);

    private static async Task<string> RunAsync(string file, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["TERM"] = "xterm-256color";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return await output + await error;
    }
}
