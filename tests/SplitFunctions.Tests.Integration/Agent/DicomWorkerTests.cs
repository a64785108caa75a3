using System.Diagnostics;
using System.Runtime.InteropServices;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// DICOM decoded in child processes (<see cref="DicomWorker"/>): Debian's GDCM ends its process on some damaged files (an
/// assertion in its file-meta reader, libjpeg's and OpenJPEG's error exits). The real `splitfn-agent init` on a folder of intact
/// and damaged DICOM files must read the intact ones, skip each damaged one it cannot decode with a reason, and exit 0 (4 with
/// one line when nothing usable is left); a worker that crashes, hangs or answers beyond what it declares costs one file;
/// decoding through a worker is bit-identical to in-process.
/// </summary>
public sealed class DicomWorkerTests
{
    // One per transfer syntax family the fuzzing found crashes in: uncompressed, RLE, JPEG 2000, JPEG-LS, JPEG lossy (grey, colour).
    private static readonly string[] Samples =
        ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG-lossy.dcm", "SC_rgb_jpeg_dcmtk.dcm"];

    private static ProcessStartInfo AgentWorker()
    {
        var start = new ProcessStartInfo("dotnet");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "splitfn-agent.dll"));
        start.ArgumentList.Add(DicomWorker.WorkerArgument);
        return start;
    }

    // The fuzz generator: bits flipped in the header and in the pixel data, a run zeroed, the file cut; fixed seed.
    private static (List<string> Intact, List<string> Damaged) DamagedFolder(string folder, int perSample)
    {
        var random = new Random(11);
        var (intact, damaged) = (new List<string>(), new List<string>());
        for (var s = 0; s < Samples.Length; s++)
        {
            var original = File.ReadAllBytes(Path.Combine(SharedData.DicomCodecs, Samples[s]));
            // Class folders a and b, so init's two-class check passes on the intact files alone.
            var classFolder = Directory.CreateDirectory(Path.Combine(folder, s % 2 == 0 ? "a" : "b")).FullName;
            intact.Add(Path.Combine(classFolder, Samples[s]));
            File.WriteAllBytes(intact[^1], original);
            for (var round = 0; round < perSample; round++)
            {
                var bytes = (byte[])original.Clone();
                var start = random.Next(132, bytes.Length);
                switch (round % 4)
                {
                    case 0:
                        // The header: the file meta group and the image attributes before the pixel data.
                        for (var k = 0; k < 1 + random.Next(4); k++) bytes[random.Next(132, Math.Min(bytes.Length, 1200))] ^= (byte)(1 << random.Next(8));
                        break;
                    case 1:
                        for (var k = 0; k < 1 + random.Next(8); k++) bytes[random.Next(132, bytes.Length)] ^= (byte)(1 << random.Next(8));
                        break;
                    case 2:
                        Array.Clear(bytes, start, Math.Min(bytes.Length - start, 1 + random.Next(64)));
                        break;
                    default:
                        bytes = bytes[..start];
                        break;
                }
                damaged.Add(Path.Combine(classFolder, $"{Path.GetFileNameWithoutExtension(Samples[s])}-{round}.dcm"));
                File.WriteAllBytes(damaged[^1], bytes);
            }
        }
        // Single flipped bits that end Debian's GDCM 3.0 (found by the fuzzing): an assertion in its file-meta reader, two in its JPEG codec.
        var colour = File.ReadAllBytes(Path.Combine(SharedData.DicomCodecs, "SC_rgb_jpeg_dcmtk.dcm"));
        foreach (var (offset, bit) in new[] { (914, 32), (1712, 64), (1854, 64) })
        {
            var bytes = (byte[])colour.Clone();
            bytes[offset] ^= (byte)bit;
            damaged.Add(Path.Combine(folder, "b", $"SC_rgb_jpeg_dcmtk-flip{offset}.dcm"));
            File.WriteAllBytes(damaged[^1], bytes);
        }
        return (intact, damaged);
    }

    [Fact]
    public async Task Damaged_dicom_files_are_skipped_with_a_reason_and_init_reads_the_intact_ones()
    {
        using var dir = new TempDirectory();
        var (intact, damaged) = DamagedFolder(dir.File("pacs"), perSample: 6);

        // Through the product's pool, file by file: the intact files decode as in-process, every damaged one decodes or has a reason.
        int decoded = 0, crashed = 0;
        using (var pool = new DicomWorkerPool(AgentWorker(), size: 1))
        {
            foreach (var file in intact) Same(pool.Decode(file, null), DicomImageDecoder.Decode(file)).Should().BeTrue(file);
            foreach (var file in damaged)
            {
                try
                {
                    pool.Decode(file, null);
                    decoded++;
                }
                catch (UnusableImageException e)
                {
                    e.Reason.Should().NotBeNullOrWhiteSpace();
                    if (e.Reason.StartsWith("the DICOM decoder crashed on this file (", StringComparison.Ordinal)) crashed++;
                }
            }
            // The isolation is exercised, and a worker is reused across files: one start, plus one per crash but the last file's.
            crashed.Should().BeGreaterThanOrEqualTo(3, "the three known flips end GDCM's process");
            pool.Started.Should().BeInRange(crashed, crashed + 1);
        }

        // The real agent, a child process: exit 0, every file accounted for, no stack trace.
        using var agent = AgentTestBed.StartProcess("init", "--config", dir.File("agent.json"), "--hospital", "hospital-a", "--run", "run-dicom",
            "--connection-string", "UseDevelopmentStorage=true", "--key-dir", dir.File("keys"), "--data", dir.File("pacs"));
        var output = agent.StandardOutput.ReadToEndAsync();
        var error = agent.StandardError.ReadToEndAsync();
        await agent.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var run = new AgentRun(agent.ExitCode, await output, await error);
        run.ExitCode.Should().Be(0, run.ToString());
        var listed = intact.Count + damaged.Count;
        run.Output.Should().Contain($"{intact.Count + decoded} usable image(s) of {listed} file(s) listed, {damaged.Count - decoded} skipped", run.ToString());
        run.Output.Should().Contain("the DICOM decoder crashed on this file (", run.ToString());
        (run.Output + run.Error).Should().NotContain("   at ", "no stack trace");

        // Nothing usable left (only files that end GDCM): one line and the data exit code, still no crash.
        foreach (var file in intact.Concat(damaged).Where(f => !f.Contains("-flip", StringComparison.Ordinal))) File.Delete(file);
        using var empty = AgentTestBed.StartProcess("init", "--config", dir.File("agent2.json"), "--hospital", "hospital-a", "--run", "run-dicom",
            "--connection-string", "UseDevelopmentStorage=true", "--key-dir", dir.File("keys"), "--data", dir.File("pacs"));
        var emptyError = empty.StandardError.ReadToEndAsync();
        _ = await empty.StandardOutput.ReadToEndAsync();
        await empty.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        empty.ExitCode.Should().Be(4, await emptyError);
        var lines = (await emptyError).Trim().Split('\n');
        lines.Should().HaveCount(2, await emptyError);
        lines[0].Should().Contain("no usable image (3 files listed; ").And.Contain("the DICOM decoder crashed on this file (");
        lines[1].Should().StartWith("exit code 4 ");
    }

    [Fact]
    public void Decoding_through_a_worker_is_bit_identical_to_in_process_on_every_codec_and_the_ct_slices()
    {
        var files = Directory.GetFiles(SharedData.DicomCodecs, "*.dcm").Concat(Directory.GetFiles(SharedData.DicomCt, "*.dcm", SearchOption.AllDirectories))
            .Order(StringComparer.Ordinal).ToList();
        files.Should().HaveCountGreaterThanOrEqualTo(110);
        using var pool = new DicomWorkerPool(AgentWorker());
        var window = new DicomWindow(40, 400);
        foreach (var file in files)
        {
            Same(pool.Decode(file, null), DicomImageDecoder.Decode(file)).Should().BeTrue(file);
            Same(pool.Decode(file, window), DicomImageDecoder.Decode(file, window)).Should().BeTrue(file);
        }
        pool.Started.Should().BeLessThanOrEqualTo(pool.Size, "workers are reused");
    }

    [Fact]
    public void A_worker_that_crashes_hangs_or_answers_beyond_its_declared_size_costs_one_file()
    {
        using var dir = new TempDirectory();
        var file = dir.File("scan.dcm");
        File.WriteAllBytes(file, [1, 2, 3]);
        static ProcessStartInfo Shell(string script)
        {
            var start = new ProcessStartInfo("sh");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(script);
            return start;
        }

        using (var crashing = new DicomWorkerPool(Shell("echo 'gdcmJPEGCodec: Corrupt JPEG data' >&2; exit 134"), size: 1))
        {
            for (var i = 1; i <= 2; i++)
            {
                var act = () => crashing.Decode(file, null);
                act.Should().Throw<UnusableImageException>().Which.Reason.Should()
                    .Be("the DICOM decoder crashed on this file (gdcmJPEGCodec: Corrupt JPEG data)");
                crashing.Started.Should().Be(i, "the next file gets a fresh worker");
            }
        }

        using (var hanging = new DicomWorkerPool(Shell("sleep 60"), size: 1, timeout: TimeSpan.FromSeconds(1)))
        {
            var clock = Stopwatch.StartNew();
            var act = () => hanging.Decode(file, null);
            act.Should().Throw<UnusableImageException>().Which.Reason.Should().Be("the DICOM decoder took over 1 s on this file and was stopped");
            clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
        }

        // A 1x1 grey image (header 17 bytes, pixels 4) in a message declaring 1,000 bytes: refused before reading on.
        using (var overflowing = new DicomWorkerPool(Shell(@"printf '\350\003\000\000\000\001\000\000\000\001\000\000\000\001\000\000\000\000\000\000\000'; "
            + "head -c 996 /dev/zero; sleep 60"), size: 1, timeout: TimeSpan.FromSeconds(30)))
        {
            var act = () => overflowing.Decode(file, null);
            act.Should().Throw<UnusableImageException>().Which.Reason.Should().Contain("out of protocol").And.Contain("1000 bytes for an image declaring 21");
        }
    }

    // Size, channels, mode, and every pixel bit for bit.
    private static bool Same(DecodedImage a, DecodedImage b) =>
        (a.Width, a.Height, a.Channels, a.Mode) == (b.Width, b.Height, b.Channels, b.Mode)
        && MemoryMarshal.AsBytes(a.Pixels.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.Pixels.AsSpan()));
}
