using System.Diagnostics;

namespace SplitFunctions.Tests;

/// <summary>Debian's Chromium run headless on a local file, returning the rendered DOM and the browser's log.</summary>
internal static class HeadlessChromium
{
    public static string Executable { get; } = Environment.GetEnvironmentVariable("SPLITFN_CHROMIUM") ?? "/usr/bin/chromium";

    /// <summary>Loads <paramref name="htmlPath"/> and returns the DOM after rendering (--dump-dom) and stderr.</summary>
    public static (string Dom, string Log) DumpDom(string htmlPath, TimeSpan timeout)
    {
        if (!File.Exists(Executable))
            throw new InvalidOperationException(
                $"Chromium is not installed at {Executable}; the report test renders the HTML in a real browser. " +
                "Install it with `sudo apt-get install -y chromium` (scripts/setup.sh does this), or set SPLITFN_CHROMIUM to a Chromium binary.");

        using var profile = new TempDirectory();
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", $"--user-data-dir={profile.Path}", "--dump-dom",
            new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri,
        })
            start.ArgumentList.Add(arg);

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"Chromium did not finish rendering {htmlPath} within {timeout.TotalSeconds} s");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"Chromium exited with {process.ExitCode}: {stderr.Result}");
        return (stdout.Result, stderr.Result);
    }
}
