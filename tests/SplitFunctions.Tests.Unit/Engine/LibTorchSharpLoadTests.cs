using SplitFunctions.Build;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// The build marks libLibTorchSharp.so's GLIBCXX_3.4.32 requirement weak (build/ElfVersionNeeds.cs), so TorchSharp loads
/// on Debian 12 / Ubuntu 22.04 / RHEL 9, whose libstdc++ ends at GLIBCXX_3.4.30. This whole suite running here is the
/// proof that it loads; these tests pin what the patch does and does not change.
/// </summary>
public sealed class LibTorchSharpLoadTests
{
    private const string Gcc13Only = "GLIBCXX_3.4.32";

    private static string CopiedLibrary =>
        Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault()
        ?? throw new FileNotFoundException($"no libLibTorchSharp.so under {AppContext.BaseDirectory}: the TorchSharp runtime was not copied");

    [Fact]
    public void The_copied_library_needs_GLIBCXX_3_4_32_only_weakly_and_everything_else_as_before()
    {
        var needs = ElfVersionNeeds.Read(File.ReadAllBytes(CopiedLibrary));
        needs.Should().ContainSingle(n => n.Version == Gcc13Only).Which.Weak.Should().BeTrue("the build marks it weak");
        needs.Where(n => n.Version != Gcc13Only).Should().OnlyContain(n => !n.Weak, "every other requirement stays enforced");
        needs.Should().Contain(n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4.30");
    }

    [Fact]
    public void Patching_is_idempotent_and_changes_only_that_flag()
    {
        using var dir = new TempDirectory();
        var patched = File.ReadAllBytes(CopiedLibrary);
        var path = dir.File("libLibTorchSharp.so");
        File.WriteAllBytes(path, patched);
        ElfVersionNeeds.MarkWeak(path, Gcc13Only).Should().Be(0, "already weak: nothing to do");
        File.ReadAllBytes(path).Should().Equal(patched);

        // The package's original: the same bytes with the weak bit clear.
        var original = (byte[])patched.Clone();
        var entry = ElfVersionNeeds.Read(original).Single(n => n.Version == Gcc13Only);
        original[entry.FlagsOffset] &= unchecked((byte)~0x2);
        File.WriteAllBytes(path, original);
        ElfVersionNeeds.Read(original).Single(n => n.Version == Gcc13Only).Weak.Should().BeFalse();
        ElfVersionNeeds.MarkWeak(path, Gcc13Only).Should().Be(1);
        File.ReadAllBytes(path).Should().Equal(patched);
    }

    [Fact]
    public void Not_an_ELF_file_is_refused()
    {
        var act = () => ElfVersionNeeds.Read("MZ not an elf file at all, just text padding it to 64 bytes......"u8.ToArray());
        act.Should().Throw<InvalidDataException>().WithMessage("*not an ELF file*");
    }

    [Fact]
    public void The_engine_reports_which_libtorch_it_loaded()
    {
        TorchRuntime.Summary.Should().Contain("TorchSharp 0.107.0 / libtorch 2.10.0").And.Contain("TorchSharp-cpu package");
        TorchRuntime.EngineVersion.Should().Be("TorchSharp 0.107.0 / libtorch 2.10.0");
    }
}
