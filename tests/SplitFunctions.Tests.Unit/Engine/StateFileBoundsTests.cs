using System.Globalization;
using System.IO.Compression;
using System.Text;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// A few hundred bytes of torch.save zip whose pickle declares a huge tensor (issue 31): TorchSharp.PyBridge allocated the
/// declared shape before Network.LoadState could compare it with the model, so a crafted server.pt or client.pt asked for
/// gigabytes. Now the declaration is read and refused first, in one line, with the process's memory unchanged.
/// </summary>
public sealed class StateFileBoundsTests
{
    [Fact]
    public void WeightsDeclaringAHugeTensor_AreRefusedBeforeAllocating()
    {
        using var net = ModelCatalog.LdlMlp.BuildClient();
        // [8192, 8192] float32 (256 MiB) whose storage entry is 256 MiB of zeros deflated to a few hundred KiB: a zip bomb.
        var crafted = CraftedStateFile("0.weight", storageElements: 1L << 26, shape: [8192, 8192]);
        crafted.Length.Should().BeLessThan(1 << 20);

        var (thrown, growth) = PeakGrowth(() => net.LoadState(crafted));

        growth.Should().BeLessThan(128L << 20, "nothing the file declares may be allocated before it is checked");
        thrown.Should().BeOfType<CorruptStateException>().Which.Message.Should().Contain("refused before loading").And.Contain("67108864 elements")
            .And.NotContain("\n");
    }

    [Fact]
    public void WeightsOfTheRightNamesButAnotherShape_AreRefusedFromTheirDeclaration()
    {
        using var net = ModelCatalog.LdlMlp.BuildClient();
        var names = net.StateNames;
        var crafted = CraftedStateFile(names[0], storageElements: 6, shape: [2, 3]);
        crafted.Length.Should().BeLessThan(1024);
        var act = () => net.LoadState(crafted);
        act.Should().Throw<StateMismatchException>().WithMessage($"*different architecture*missing*{names[1]}*shape mismatch*{names[0]} [2, 3]*");
    }

    [Fact]
    public void OptimizerStateDeclaringAHugeStorage_IsRefusedBeforeAllocating()
    {
        using var net = ModelCatalog.LdlMlp.BuildClient();
        using var adam = Optimizer.Create(net, OptimizerSettings.Adam(1e-3));
        var crafted = CraftedStateFile("exp_avg", storageElements: 1L << 26, shape: [1L << 26]);
        var (thrown, growth) = PeakGrowth(() => adam.LoadState(crafted));
        growth.Should().BeLessThan(128L << 20);
        thrown.Should().BeOfType<CorruptStateException>().Which.Message.Should().Contain("refused before loading").And.Contain("67108864 elements");
    }

    [Fact]
    public void SavedStates_StillLoad()
    {
        using var net = ModelCatalog.PneumoniaCnn.BuildClient();
        using var other = ModelCatalog.PneumoniaCnn.BuildClient();
        other.LoadState(net.SaveState());
        using var adam = Optimizer.Create(net, OptimizerSettings.Adam(1e-3));
        using var again = Optimizer.Create(other, OptimizerSettings.Adam(1e-3));
        again.LoadState(adam.SaveState());
    }

    // Peak resident memory of this process while `act` runs, beyond what it held before (Linux: VmHWM reset through clear_refs).
    private static (Exception? Thrown, long Growth) PeakGrowth(Action act)
    {
        static long Status(string field)
        {
            var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        if (!OperatingSystem.IsLinux())
        {
            try { act(); return (null, 0); }
            catch (Exception e) { return (e, 0); }
        }
        File.WriteAllText("/proc/self/clear_refs", "5");
        var before = Status("VmRSS");
        Exception? thrown = null;
        try { act(); }
        catch (Exception e) { thrown = e; }
        return (thrown, Status("VmHWM") - before);
    }

    // A torch.save zip by hand: {name: _rebuild_tensor_v2(storage of `storageElements` floats, 0, shape, contiguous strides)},
    // whose data/0 entry is the storage's bytes of zeros, deflated.
    private static byte[] CraftedStateFile(string name, long storageElements, long[] shape)
    {
        var p = new MemoryStream();
        void Op(char op) => p.WriteByte((byte)op);
        void Raw(string text) => p.Write(Encoding.ASCII.GetBytes(text));
        void Global(string module, string global) { Op('c'); Raw(module + "\n" + global + "\n"); }
        void Str(string text) { Op('X'); p.Write(BitConverter.GetBytes(text.Length)); Raw(text); }
        void Int(long value)
        {
            if (value <= int.MaxValue) { Op('J'); p.Write(BitConverter.GetBytes((int)value)); }
            else { p.WriteByte(0x8a); p.WriteByte(8); p.Write(BitConverter.GetBytes(value)); }
        }
        void Tuple(IEnumerable<long> values) { Op('('); foreach (var v in values) Int(v); Op('t'); }
        p.WriteByte(0x80); p.WriteByte(2);
        Global("collections", "OrderedDict"); Op(')'); Op('R');
        Op('(');
        Str(name);
        Global("torch._utils", "_rebuild_tensor_v2");
        Op('(');
        Op('('); Str("storage"); Global("torch", "FloatStorage"); Str("0"); Str("cpu"); Int(storageElements); Op('t'); Op('Q');
        Int(0);
        Tuple(shape);
        var strides = new long[shape.Length];
        long stride = 1;
        for (var i = shape.Length - 1; i >= 0; i--) { strides[i] = stride; stride *= shape[i]; }
        Tuple(strides);
        p.WriteByte(0x89);
        Global("collections", "OrderedDict"); Op(')'); Op('R');
        Op('t'); Op('R');
        Op('u');
        Op('.');
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var entry = archive.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()) entry.Write(p.ToArray());
            using var data = archive.CreateEntry("archive/data/0", CompressionLevel.Optimal).Open();
            var zeros = new byte[1 << 20];
            for (var left = storageElements * 4; left > 0; left -= zeros.Length) data.Write(zeros, 0, (int)Math.Min(left, zeros.Length));
        }
        return zip.ToArray();
    }
}
