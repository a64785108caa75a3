using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace SplitFunctions.Core.Model;

/// <summary>What a state file may declare: the largest tensor, all tensors' bytes together, the names and shapes when known.</summary>
/// <param name="MaxElements">Most elements one tensor (or storage) may declare.</param>
/// <param name="MaxTotalBytes">Most bytes all storages together may take, counted once per tensor that refers to one.</param>
/// <param name="Shapes">The exact state dict (name to shape) a network expects, or null for a nested dict (optimizer state).</param>
public sealed record StateBudget(long MaxElements, long MaxTotalBytes, IReadOnlyDictionary<string, long[]>? Shapes = null);

/// <summary>
/// Reads what a torch.save zip declares (the pickle's tensors: storage, element count, shape) without allocating any of
/// it, and refuses the file when that exceeds the budget. TorchSharp.PyBridge allocates every storage and shape the
/// pickle names before anything can look at them, so a few hundred bytes asking for a [65536, 65536] tensor cost 16 GiB;
/// this check runs first. The zip's own sizes (entry count, declared uncompressed lengths, the pickle read with a cap)
/// are bounded too, so a compressed bomb is refused from its directory.
/// </summary>
public static class StateFileBounds
{
    /// <summary>Largest data.pkl read (a state dict's pickle is a few KiB per tensor).</summary>
    public const int MaxPickleBytes = 4 << 20;

    private const int MaxEntries = 4096;

    /// <summary>Checks <paramref name="bytes"/> against <paramref name="budget"/>; a violation is a <see cref="CorruptStateException"/> naming it.</summary>
    public static void Check(ReadOnlySpan<byte> bytes, StateBudget budget, string what)
    {
        ArgumentNullException.ThrowIfNull(budget);
        using var stream = new MemoryStream(bytes.ToArray(), writable: false);
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new CorruptStateException($"{what} ({bytes.Length} bytes) are not a readable PyTorch state dict: {e.Message.Split('\n')[0]}", e);
        }
        using (archive)
        {
            var entries = archive.Entries;
            if (entries.Count > MaxEntries) throw Refused(what, $"the archive holds {entries.Count} entries (at most {MaxEntries})");
            var pickle = entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal))
                ?? throw new CorruptStateException($"{what} ({bytes.Length} bytes) are not a readable PyTorch state dict: no data.pkl in the archive");
            if (pickle.Length > MaxPickleBytes) throw Refused(what, $"data.pkl declares {pickle.Length} bytes (at most {MaxPickleBytes})");
            var program = ReadCapped(pickle, what);
            Scan scan;
            try
            {
                scan = new Scan(program);
                scan.Run();
            }
            catch (Exception e) when (e is FormatException or InvalidCastException or IndexOutOfRangeException or ArgumentException
                                          or InvalidOperationException or OverflowException)
            {
                throw new CorruptStateException($"{what} ({bytes.Length} bytes) are not a readable PyTorch state dict: {e.Message.Split('\n')[0]}", e);
            }
            CheckTensors(scan, entries, budget, what);
        }
    }

    private static byte[] ReadCapped(ZipArchiveEntry entry, string what)
    {
        try
        {
            using var input = entry.Open();
            var buffer = new byte[Math.Min(entry.Length, MaxPickleBytes) + 1];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = input.Read(buffer, total, buffer.Length - total)) > 0) total += read;
            if (total > MaxPickleBytes || total != entry.Length) throw Refused(what, $"data.pkl inflates to more than it declares ({entry.Length} bytes)");
            return buffer[..total];
        }
        catch (InvalidDataException e)
        {
            throw new CorruptStateException($"{what} are not a readable PyTorch state dict: data.pkl: {e.Message.Split('\n')[0]}", e);
        }
    }

    private static void CheckTensors(Scan scan, IReadOnlyCollection<ZipArchiveEntry> entries, StateBudget budget, string what)
    {
        // What PyBridge allocates: a byte array per storage load and a zeroed tensor per rebuild.
        long total = 0;
        void Spend(long bytes)
        {
            total += bytes;
            if (total > budget.MaxTotalBytes) throw Refused(what, $"its tensors declare more than {budget.MaxTotalBytes} bytes in all");
        }
        foreach (var storage in scan.Storages)
        {
            if (storage.Elements < 0 || storage.Elements > budget.MaxElements)
                throw Refused(what, $"storage '{storage.Key}' declares {storage.Elements} elements (at most {budget.MaxElements})");
            var bytes = storage.Elements * storage.ElementSize;
            var entry = entries.FirstOrDefault(e => e.FullName.EndsWith("data/" + storage.Key, StringComparison.Ordinal))
                ?? throw new CorruptStateException($"{what} are not a readable PyTorch state dict: storage '{storage.Key}' is missing from the archive");
            if (entry.Length != bytes)
                throw Refused(what, $"storage '{storage.Key}' holds {entry.Length} bytes where its {storage.Elements} elements need {bytes}");
            Spend(bytes);
        }
        foreach (var tensor in scan.Tensors)
        {
            var elements = Elements(tensor.Shape, budget.MaxElements)
                ?? throw Refused(what, $"a tensor declares shape [{Format(tensor.Shape)}], more than {budget.MaxElements} elements");
            if (tensor.Offset < 0 || tensor.Offset > tensor.Storage.Elements)
                throw Refused(what, $"a tensor of shape [{Format(tensor.Shape)}] starts at {tensor.Offset}, outside its storage of {tensor.Storage.Elements}");
            Spend(elements * tensor.Storage.ElementSize);
        }
        if (budget.Shapes is not { } expected) return;
        var declared = scan.RootEntries;
        var missing = expected.Keys.Where(k => !declared.ContainsKey(k)).ToList();
        var unexpected = declared.Keys.Where(k => !expected.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var mismatched = expected.Where(e => declared.TryGetValue(e.Key, out var t) && !t.Shape.SequenceEqual(e.Value))
            .Select(e => $"{e.Key} [{Format(declared[e.Key].Shape)}] vs ours [{Format(e.Value)}]").ToList();
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add("missing " + string.Join(", ", missing));
        if (unexpected.Count > 0) problems.Add("unexpected " + string.Join(", ", unexpected));
        if (mismatched.Count > 0) problems.Add("shape mismatch " + string.Join("; ", mismatched));
        if (problems.Count > 0) throw new StateMismatchException($"weights of a different architecture: {string.Join("; ", problems)}");
    }

    // The product of the dimensions, or null past the limit (compared before each multiplication, so it never overflows).
    private static long? Elements(long[] shape, long limit)
    {
        long product = 1;
        foreach (var d in shape)
        {
            if (d < 0) return null;
            if (d == 0) return 0;
            if (product > limit / d) return null;
            product *= d;
        }
        return product;
    }

    private static string Format(long[] shape) => string.Join(", ", shape);

    private static CorruptStateException Refused(string what, string why) =>
        new($"{what} are refused before loading: {why}; the model expects less (a damaged or crafted file)");

    private sealed record StorageDecl(string Key, int ElementSize, long Elements);

    private sealed record TensorDecl(StorageDecl Storage, long Offset, long[] Shape);

    private sealed record Global(string Module, string Name);

    private sealed class Dict
    {
        public List<(object? Key, object? Value)> Items { get; } = [];
    }

    private sealed class Opaque;

    private sealed class Mark;

    /// <summary>
    /// The pickle machine over the opcodes torch.save and PyBridge write (protocols 2 to 4), building only small values:
    /// numbers, strings, tuples, lists, dicts, and a declaration for each rebuilt tensor. Anything else is refused.
    /// </summary>
    private sealed class Scan(byte[] program)
    {
        private static readonly Mark MarkObject = new();
        private readonly List<object?> stack = [];
        private readonly Dictionary<long, object?> memo = [];
        private int position;

        public List<StorageDecl> Storages { get; } = [];

        public List<TensorDecl> Tensors { get; } = [];

        public Dictionary<string, TensorDecl> RootEntries { get; } = new(StringComparer.Ordinal);

        public void Run()
        {
            while (true)
            {
                var op = Byte();
                switch (op)
                {
                    case 0x80: Byte(); break; // PROTO
                    case 0x95: Bytes(8); break; // FRAME
                    case (byte)'.': Stop(); return;
                    case (byte)'(': stack.Add(MarkObject); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'1': PopMark(); break;
                    case (byte)'2': stack.Add(Peek()); break;
                    case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break;
                    case (byte)'K': stack.Add((long)Byte()); break;
                    case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break;
                    case 0x8a: stack.Add(Long(Bytes(Byte()))); break; // LONG1
                    case (byte)'N': stack.Add(null); break;
                    case 0x88: stack.Add(true); break;
                    case 0x89: stack.Add(false); break;
                    case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;
                    case (byte)'X': stack.Add(Text(Length(4))); break;
                    case 0x8c: stack.Add(Text(Byte())); break; // SHORT_BINUNICODE
                    case 0x8d: stack.Add(Text(Length(8))); break; // BINUNICODE8
                    case (byte)'U': stack.Add(Text(Byte())); break; // SHORT_BINSTRING
                    case (byte)'T': stack.Add(Text(Length(4))); break; // BINSTRING
                    case (byte)'C': Bytes(Byte()); stack.Add(new Opaque()); break; // SHORT_BINBYTES
                    case (byte)'B': Bytes(Length(4)); stack.Add(new Opaque()); break; // BINBYTES
                    case (byte)')': stack.Add(Array.Empty<object?>()); break;
                    case (byte)'t': stack.Add(PopMark().ToArray()); break;
                    case 0x85: stack.Add(PopN(1)); break;
                    case 0x86: stack.Add(PopN(2)); break;
                    case 0x87: stack.Add(PopN(3)); break;
                    case (byte)']': stack.Add(new List<object?>()); break;
                    case (byte)'l': stack.Add(PopMark()); break;
                    case (byte)'a': { var item = Pop(); AsList(Peek()).Add(item); break; }
                    case (byte)'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; }
                    case 0x8f: stack.Add(new List<object?>()); break; // EMPTY_SET
                    case 0x90: { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // ADDITEMS
                    case (byte)'}': stack.Add(new Dict()); break;
                    case (byte)'d': { var items = PopMark(); var dict = new Dict(); AddPairs(dict, items); stack.Add(dict); break; }
                    case (byte)'s': { var value = Pop(); var key = Pop(); AsDict(Peek()).Items.Add((key, value)); break; }
                    case (byte)'u': { var items = PopMark(); AddPairs(AsDict(Peek()), items); break; }
                    case (byte)'c': stack.Add(new Global(Line(), Line())); break;
                    case 0x93: { var name = (string)Pop()!; var module = (string)Pop()!; stack.Add(new Global(module, name)); break; } // STACK_GLOBAL
                    case (byte)'Q': stack.Add(Persistent((object?[])Pop()!)); break;
                    case (byte)'R': { var args = (object?[])Pop()!; var callable = Pop(); stack.Add(Reduce(callable, args)); break; }
                    case 0x81: { Pop(); Pop(); stack.Add(new Opaque()); break; } // NEWOBJ
                    case (byte)'b': Pop(); break; // BUILD: the state (a state dict's _metadata) changes nothing declared
                    case (byte)'q': memo[Byte()] = Peek(); break;
                    case (byte)'r': memo[Length(4)] = Peek(); break;
                    case (byte)'p': memo[long.Parse(Line(), CultureInfo.InvariantCulture)] = Peek(); break;
                    case 0x94: memo[memo.Count] = Peek(); break; // MEMOIZE
                    case (byte)'h': stack.Add(memo[Byte()]); break;
                    case (byte)'j': stack.Add(memo[Length(4)]); break;
                    case (byte)'g': stack.Add(memo[long.Parse(Line(), CultureInfo.InvariantCulture)]); break;
                    default: throw new FormatException($"pickle opcode 0x{op:x2} at byte {position - 1} is not one a state dict uses");
                }
            }
        }

        private void Stop()
        {
            if (stack.Count != 1) throw new FormatException("the pickle does not end with one value");
            if (stack[0] is not Dict root) return;
            foreach (var (key, value) in root.Items)
            {
                if (key is string name && value is TensorDecl tensor) RootEntries[name] = tensor;
            }
        }

        // PyBridge reads (and allocates) a storage each time its persistent id is loaded, used or not.
        private StorageDecl Persistent(object?[] id)
        {
            if (id.Length < 5 || id[0] is not "storage" || id[1] is not Global storageType || id[2] is not string key || id[4] is not long count)
                throw new FormatException("a persistent id is not (\"storage\", type, key, location, elements)");
            var storage = new StorageDecl(key, ElementSize(storageType.Name), count);
            Storages.Add(storage);
            return storage;
        }

        private object Reduce(object? callable, object?[] args)
        {
            if (callable is not Global global) throw new FormatException("REDUCE of something that is not a global");
            switch (global.Module, global.Name)
            {
                case ("collections", "OrderedDict"):
                    return new Dict();
                case ("torch._utils", "_rebuild_tensor" or "_rebuild_tensor_v2"):
                    {
                        if (args.Length < 4 || args[0] is not StorageDecl storage || args[1] is not long offset || args[2] is not object?[] shape)
                            throw new FormatException("a tensor's rebuild arguments are not (storage, offset, shape, stride, ...)");
                        var dims = shape.Select(d => d is long l ? l : throw new FormatException("a tensor's shape holds a non-integer")).ToArray();
                        var tensor = new TensorDecl(storage, offset, dims);
                        Tensors.Add(tensor);
                        return tensor;
                    }
                case ("torch._utils", "_rebuild_parameter"):
                    return args.Length > 0 && args[0] is TensorDecl inner ? inner : new Opaque();
                default:
                    return new Opaque();
            }
        }

        private static int ElementSize(string storage) => storage switch
        {
            "DoubleStorage" or "LongStorage" or "ComplexFloatStorage" => 8,
            "FloatStorage" or "IntStorage" => 4,
            "HalfStorage" or "ShortStorage" or "BFloat16Storage" => 2,
            "CharStorage" or "ByteStorage" or "BoolStorage" => 1,
            "ComplexDoubleStorage" => 16,
            _ => throw new FormatException($"storage type '{storage}' is not one PyTorch writes"),
        };

        private static void AddPairs(Dict dict, List<object?> items)
        {
            if (items.Count % 2 != 0) throw new FormatException("a dict's items are not key-value pairs");
            for (var i = 0; i < items.Count; i += 2) dict.Items.Add((items[i], items[i + 1]));
        }

        private static List<object?> AsList(object? value) => value as List<object?> ?? throw new FormatException("APPEND to something that is not a list");

        private static Dict AsDict(object? value) => value as Dict ?? (value is Opaque ? new Dict() : throw new FormatException("SETITEM on a non-dict"));

        private object? Pop()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw new FormatException("the pickle's stack is empty where a value is needed");
            var value = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return value;
        }

        private object? Peek() => stack.Count > 0 && stack[^1] is not Mark ? stack[^1] : throw new FormatException("the pickle's stack is empty");

        private object?[] PopN(int n)
        {
            var items = new object?[n];
            for (var i = n - 1; i >= 0; i--) items[i] = Pop();
            return items;
        }

        private List<object?> PopMark()
        {
            var mark = stack.FindLastIndex(v => v is Mark);
            if (mark < 0) throw new FormatException("the pickle pops to a mark it never set");
            var items = stack.GetRange(mark + 1, stack.Count - mark - 1);
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }

        private byte Byte() => position < program.Length ? program[position++] : throw new FormatException("the pickle ends early");

        private ReadOnlySpan<byte> Bytes(long count)
        {
            if (count < 0 || count > program.Length - position) throw new FormatException("the pickle ends early");
            var span = program.AsSpan(position, (int)count);
            position += (int)count;
            return span;
        }

        private long Length(int width)
        {
            var raw = Bytes(width);
            var value = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(raw) : (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
            return value >= 0 && value <= program.Length ? value : throw new FormatException("a length in the pickle runs past its end");
        }

        private string Text(long length) => Encoding.UTF8.GetString(Bytes(length));

        private string Line()
        {
            var end = Array.IndexOf(program, (byte)'\n', position);
            if (end < 0) throw new FormatException("the pickle ends inside a line");
            var text = Encoding.UTF8.GetString(program, position, end - position);
            position = end + 1;
            return text;
        }

        private static long Long(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length > 8) throw new FormatException("an integer in the pickle has more than 64 bits");
            if (bytes.IsEmpty) return 0;
            long value = (sbyte)bytes[^1];
            for (var i = bytes.Length - 2; i >= 0; i--) value = (value << 8) | bytes[i];
            return value;
        }
    }
}
