// Marks one symbol-version requirement of an ELF shared library weak, in place.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so was linked against GCC 13's libstdc++ and lists
// GLIBCXX_3.4.32 among the versions it needs from libstdc++.so.6. Debian 12, Ubuntu 22.04 and RHEL 9
// ship GCC 12's libstdc++ (up to GLIBCXX_3.4.30), so the loader refuses the library although the only
// symbol of that version, _ZSt21ios_base_library_initv (GCC 13's iostream-initialisation marker), is
// never called: no relocation refers to it. A requirement flagged VER_FLG_WEAK is checked but not
// enforced by the loader (glibc's _dl_check_map_versions), so the library loads everywhere and runs
// unchanged where the version exists. The build applies this to the copy in each output folder,
// never to the NuGet cache. Setting a flag bit is idempotent.
//
// Compiled twice from this one file: as an MSBuild inline task (build/TorchRuntime.targets) and into
// the tests, which define ELF_VERSION_NEEDS_WITHOUT_MSBUILD to leave the task class out.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace SplitFunctions.Build;

/// <summary>One entry of .gnu.version_r: a version that a library needs from one of its dependencies.</summary>
public sealed class ElfVersionNeed
{
    public ElfVersionNeed(string file, string version, bool weak, long flagsOffset)
    {
        File = file; Version = version; Weak = weak; FlagsOffset = flagsOffset;
    }

    public string File { get; }
    public string Version { get; }
    public bool Weak { get; }
    internal long FlagsOffset { get; }
}

/// <summary>Reads and patches the version requirements (SHT_GNU_verneed) of a little-endian ELF64 file.</summary>
public static class ElfVersionNeeds
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>Every (dependency, version) requirement of the library, with its weak flag.</summary>
    public static IReadOnlyList<ElfVersionNeed> Read(byte[] elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only little-endian ELF64 is handled");
        var sectionTable = (long)U64(elf, 0x28);
        var entrySize = U16(elf, 0x3A);
        var sections = U16(elf, 0x3C);
        var needs = new List<ElfVersionNeed>();
        for (var i = 0; i < sections; i++)
        {
            var header = sectionTable + (long)i * entrySize;
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;
            var offset = (long)U64(elf, header + 24);
            var count = U32(elf, header + 44);                        // sh_info: number of Verneed entries
            var strings = (long)U64(elf, sectionTable + (long)U32(elf, header + 40) * entrySize + 24); // sh_link -> .dynstr
            var need = offset;
            for (var n = 0; n < count; n++)
            {
                // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
                var file = Text(elf, strings + U32(elf, need + 4));
                var aux = need + U32(elf, need + 8);
                for (var a = 0; a < U16(elf, need + 2); a++)
                {
                    // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
                    var flags = U16(elf, aux + 4);
                    needs.Add(new ElfVersionNeed(file, Text(elf, strings + U32(elf, aux + 8)), (flags & VerFlgWeak) != 0, aux + 4));
                    aux += U32(elf, aux + 12);
                }
                need += U32(elf, need + 12);
            }
        }
        return needs;
    }

    /// <summary>Flags <paramref name="version"/> weak wherever it is required; returns how many entries changed (0 when already weak or absent).</summary>
    public static int MarkWeak(string path, string version)
    {
        var elf = System.IO.File.ReadAllBytes(path);
        var changed = 0;
        foreach (var need in Read(elf))
        {
            if (need.Version != version || need.Weak) continue;
            var flags = (ushort)(U16(elf, need.FlagsOffset) | VerFlgWeak);
            elf[need.FlagsOffset] = (byte)flags;
            elf[need.FlagsOffset + 1] = (byte)(flags >> 8);
            changed++;
        }
        if (changed > 0)
        {
            // Writing beside and renaming never leaves a half-written library and never writes through a
            // hard link into the package cache. The old timestamp stays, so MSBuild's incremental copy
            // (same size and time = unchanged) does not copy the unpatched file over it again.
            var written = System.IO.File.GetLastWriteTimeUtc(path);
            var temporary = path + ".patching";
            System.IO.File.WriteAllBytes(temporary, elf);
            System.IO.File.SetLastWriteTimeUtc(temporary, written);
            System.IO.File.Replace(temporary, path, null); // a rename: no .NET Core-only overload, MSBuild may compile this for netstandard
        }
        return changed;
    }

    private static ushort U16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
    private static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
    private static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;

    private static string Text(byte[] b, long o)
    {
        var end = o;
        while (b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
    }
}

#if !ELF_VERSION_NEEDS_WITHOUT_MSBUILD
/// <summary>MSBuild task: marks <see cref="Version"/> weak in each of <see cref="Libraries"/>.</summary>
public sealed class MarkElfVersionWeak : Microsoft.Build.Utilities.Task
{
    [Microsoft.Build.Framework.Required]
    public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
    [Microsoft.Build.Framework.Required] public string Version { get; set; } = "";

    public override bool Execute()
    {
        foreach (var library in Libraries)
        {
            var changed = ElfVersionNeeds.MarkWeak(library.ItemSpec, Version);
            if (changed > 0) Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{library.ItemSpec}: {Version} requirement marked weak");
        }
        return !Log.HasLoggedErrors;
    }
}
#endif
