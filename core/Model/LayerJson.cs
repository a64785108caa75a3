using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SplitFunctions.Core.Model;

/// <summary>
/// A network's layers in order, cut in parts: <see cref="Client"/> at the hospital, <see cref="Server"/> in the cloud and an
/// optional <see cref="Tail"/> back at the hospital (a U-shaped split). JSON: one array of layer objects with
/// <c>{"type": "cut"}</c> (and optionally <c>{"type": "tail"}</c>) between them (<see cref="LayerJson"/>).
/// </summary>
[JsonConverter(typeof(SplitLayersJsonConverter))]
public sealed record SplitLayers(IReadOnlyList<Layer> Client, IReadOnlyList<Layer> Server, IReadOnlyList<Layer> Tail)
{
    /// <summary>Every layer in order, as the whole network holds them.</summary>
    public IEnumerable<Layer> All => Client.Concat(Server).Concat(Tail);

    public bool Equals(SplitLayers? other) =>
        other is not null && Client.SequenceEqual(other.Client) && Server.SequenceEqual(other.Server) && Tail.SequenceEqual(other.Tail);

    public override int GetHashCode() => HashCode.Combine(Client.Count, Server.Count, Tail.Count);
}

/// <summary>
/// Reads and writes layers as JSON objects named like their <see cref="Layer.Spec"/>: <c>{"type": "conv2d", "in": 1, "out": 32,
/// "kernel": 3, "padding": 1}</c>. Every problem is a <see cref="ModelDefinitionException"/> naming the entry (layers[i]).
/// </summary>
public static class LayerJson
{
    /// <summary>The marker between the hospital's layers and the cloud's.</summary>
    public const string Cut = "cut";

    /// <summary>The marker before the last layers when they run back at the hospital (U-shaped split).</summary>
    public const string TailMarker = "tail";

    private sealed record Kind(string Type, string[] Required, string[] Optional, Func<Options, Layer> Create);

    private static readonly Kind[] Kinds =
    [
        new("conv2d", ["in", "out", "kernel"], ["stride", "padding"], o
            => new Conv2d(o.Int("in"), o.Int("out"), o.Int("kernel"), o.Int("stride", 1), o.Int("padding", 0))),
        new("maxpool2d", ["kernel"], ["stride", "padding"], o => new MaxPool2d(o.Int("kernel"), o.IntOrNull("stride"), o.Int("padding", 0))),
        new("avgpool2d", ["kernel"], ["stride"], o => new AvgPool2d(o.Int("kernel"), o.IntOrNull("stride"))),
        new("adaptive_avgpool2d", ["size"], [], o => new AdaptiveAvgPool2d(o.Int("size"))),
        new("batchnorm2d", ["features"], [], o => new BatchNorm2d(o.Int("features"))),
        new("batchnorm1d", ["features"], [], o => new BatchNorm1d(o.Int("features"))),
        new("basic_block", ["in", "out"], ["stride"], o => new BasicBlock(o.Int("in"), o.Int("out"), o.Int("stride", 1))),
        new("dropout", ["p"], [], o => new Dropout(o.Double("p"))),
        new("relu", [], [], _ => new ReLU()),
        new("leaky_relu", [], ["slope"], o => new LeakyReLU(o.Double("slope", 0.01))),
        new("sigmoid", [], [], _ => new Sigmoid()),
        new("tanh", [], [], _ => new Tanh()),
        new("gelu", [], [], _ => new Gelu()),
        new("flatten", [], [], _ => new Flatten()),
        new("linear", ["in", "out"], [], o => new Linear(o.Int("in"), o.Int("out"))),
    ];

    /// <summary>The layer types a model file may use.</summary>
    public static IEnumerable<string> Types => Kinds.Select(k => k.Type);

    /// <summary>Reads the array form; the cut must be marked once, a tail at most once after it.</summary>
    public static SplitLayers Read(JsonElement array)
    {
        if (array.ValueKind != JsonValueKind.Array) throw new ModelDefinitionException($"layers must be an array of layer objects, is {array.ValueKind}");
        List<Layer> client = [], server = [], tail = [];
        var part = client;
        var index = 0;
        foreach (var entry in array.EnumerateArray())
        {
            var at = $"layers[{index++}]";
            if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                throw new ModelDefinitionException($"{at} must be an object with a \"type\" ({string.Join(", ", Types)}, or \"{Cut}\")");
            var name = type.GetString()!;
            if (name == Cut || name == TailMarker)
            {
                if (entry.EnumerateObject().Count() > 1) throw new ModelDefinitionException($"{at}: \"{name}\" is a marker between layers and takes no "
                    + $"options");
                if (name == Cut && part != client) throw new ModelDefinitionException($"{at}: the cut is marked twice (or after the tail); a network has one "
                    + $"cut");
                if (name == TailMarker && part != server) throw new ModelDefinitionException($"{at}: \"tail\" must come after the cut, once");
                part = name == Cut ? server : tail;
                continue;
            }
            var kind = Kinds.FirstOrDefault(k => k.Type == name)
                ?? throw new ModelDefinitionException($"{at}: unknown layer type '{name}'; known: {string.Join(", ", Types)} (and the markers \"{Cut}\", "
                    + $"\"{TailMarker}\")");
            part.Add(kind.Create(new Options(at, kind, entry)));
        }
        if (part == client) throw new ModelDefinitionException($"layers has no {{\"type\": \"{Cut}\"}}: mark where the hospital's layers end and the cloud's "
            + $"begin");
        return new SplitLayers(client, server, tail);
    }

    /// <summary>Writes the array form, options in <see cref="Layer.Spec"/>'s order.</summary>
    public static void Write(Utf8JsonWriter writer, SplitLayers layers)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(layers);
        writer.WriteStartArray();
        foreach (var layer in layers.Client) WriteLayer(writer, layer);
        WriteMarker(writer, Cut);
        foreach (var layer in layers.Server) WriteLayer(writer, layer);
        if (layers.Tail.Count > 0)
        {
            WriteMarker(writer, TailMarker);
            foreach (var layer in layers.Tail) WriteLayer(writer, layer);
        }
        writer.WriteEndArray();
    }

    private static void WriteMarker(Utf8JsonWriter writer, string marker)
    {
        writer.WriteStartObject();
        writer.WriteString("type", marker);
        writer.WriteEndObject();
    }

    // Spec is "type key=value ...", the one place a layer names its options.
    private static void WriteLayer(Utf8JsonWriter writer, Layer layer)
    {
        var parts = layer.Spec.Split(' ');
        writer.WriteStartObject();
        writer.WriteString("type", parts[0]);
        foreach (var option in parts.Skip(1))
        {
            var (key, value) = (option[..option.IndexOf('=', StringComparison.Ordinal)], option[(option.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            writer.WriteNumber(key, double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture));
        }
        writer.WriteEndObject();
    }

    private sealed class Options
    {
        private readonly string at;
        private readonly JsonElement entry;

        public Options(string at, Kind kind, JsonElement entry)
        {
            this.at = at;
            this.entry = entry;
            foreach (var property in entry.EnumerateObject().Where(p => p.Name != "type"))
            {
                if (!kind.Required.Contains(property.Name) && !kind.Optional.Contains(property.Name))
                    throw new ModelDefinitionException($"{at} {kind.Type}: unknown option '{property.Name}'; it takes {Describe(kind)}");
                if (property.Value.ValueKind != JsonValueKind.Number) throw new ModelDefinitionException($"{at} {kind.Type}: '{property.Name}' must be a "
                    + $"number");
            }
            foreach (var name in kind.Required.Where(n => !entry.TryGetProperty(n, out _)))
                throw new ModelDefinitionException($"{at} {kind.Type}: '{name}' is missing; it takes {Describe(kind)}");
        }

        public int Int(string name, int fallback = 0) => IntOrNull(name) ?? fallback;

        public int? IntOrNull(string name)
        {
            if (!entry.TryGetProperty(name, out var value)) return null;
            if (!value.TryGetInt32(out var number)) throw new ModelDefinitionException($"{at}: '{name}' must be a whole number, is {value.GetRawText()}");
            return number;
        }

        public double Double(string name, double fallback = 0) => entry.TryGetProperty(name, out var value) ? value.GetDouble() : fallback;

        private static string Describe(Kind kind) =>
            kind.Required.Length + kind.Optional.Length == 0
                ? "no options"
                : string.Join(", ", kind.Required.Concat(kind.Optional.Select(o => o + " (optional)")));
    }
}

/// <summary>The JSON form of <see cref="SplitLayers"/> in run manifests and model files.</summary>
public sealed class SplitLayersJsonConverter : JsonConverter<SplitLayers>
{
    public override SplitLayers Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        return LayerJson.Read(document.RootElement);
    }

    public override void Write(Utf8JsonWriter writer, SplitLayers value, JsonSerializerOptions options) => LayerJson.Write(writer, value);
}
