using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Core.Model;

/// <summary>
/// A consortium's own network as a JSON file (docs/models/, format in docs/architecture.md): name, task, input shape, the
/// layers in order with the cut marked, loss, optimizer, batch size and epochs. The catalog presets write the same form
/// (<see cref="ToJson"/>). Loading validates everything (<see cref="ModelDefinition.Validate"/>) before anything is built.
/// </summary>
public static class ModelFile
{
    /// <summary>1: the first model file format.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Largest model file accepted (a VGG19 is under 8 KiB).</summary>
    public const int MaxBytes = 256 * 1024;

    /// <summary>Reads and validates a model file; every problem is one <see cref="ModelDefinitionException"/> line naming the file.</summary>
    public static ModelDefinition Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var name = Path.GetFileName(path);
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new ModelDefinitionException($"model file {path} does not exist");
            if (info.Length > MaxBytes) throw new ModelDefinitionException($"model file {name} is {info.Length} bytes; at most {MaxBytes} are accepted");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelDefinitionException($"model file {path} cannot be read: {e.Message}");
        }
        return Parse(bytes, name);
    }

    /// <summary>Parses and validates model-file JSON; <paramref name="source"/> names it in messages.</summary>
    public static ModelDefinition Parse(ReadOnlySpan<byte> json, string source)
    {
        Document? document;
        try
        {
            document = JsonSerializer.Deserialize<Document>(json, Options);
        }
        catch (JsonException e)
        {
            throw new ModelDefinitionException($"model file {source} is not valid: {OneLine(e)}");
        }
        catch (ModelDefinitionException e)
        {
            throw new ModelDefinitionException($"model file {source}: {e.Message}");
        }
        if (document is null) throw new ModelDefinitionException($"model file {source} is empty (JSON null)");
        if (document.Version != CurrentVersion)
            throw new ModelDefinitionException($"model file {source} has format version {document.Version}; this build reads version {CurrentVersion}");
        if (string.IsNullOrWhiteSpace(document.Name) || document.Name.Length > 64
            || !document.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new ModelDefinitionException($"model file {source}: name '{document.Name}' must be 1-64 letters, digits, '-', '_' or '.'");
        var model = new ModelDefinition(document.Name, document.Description ?? "", document.Task, document.InputShape, document.Layers.Client,
            document.Layers.Server,
            document.Loss, document.BatchSize, document.Epochs, document.Optimizer)
        { TailLayers = document.Layers.Tail };
        try
        {
            model.Validate();
        }
        catch (ModelDefinitionException e)
        {
            throw new ModelDefinitionException($"model file {source}: {e.Message}");
        }
        return model;
    }

    /// <summary>The model-file JSON of <paramref name="model"/> (a preset exported to start one's own from).</summary>
    public static byte[] ToJson(ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return JsonSerializer.SerializeToUtf8Bytes(new Document
        {
            Name = model.Name,
            Description = model.Description,
            Task = model.Task,
            InputShape = model.InputShape,
            Layers = model.Layers,
            Loss = model.Loss,
            Optimizer = model.Optimizer,
            BatchSize = model.BatchSize,
            Epochs = model.Epochs,
        }, Options);
    }

    // System.Text.Json appends "Path: $.x | LineNumber: ..." to its messages: keep it, on one line.
    private static string OneLine(JsonException e) => e.Message.ReplaceLineEndings(" ");

    private sealed record Document
    {
        [JsonPropertyName("v")] public int Version { get; init; } = CurrentVersion;
        public required string Name { get; init; }
        public string? Description { get; init; }
        public required TaskKind Task { get; init; }
        public required long[] InputShape { get; init; }
        public required SplitLayers Layers { get; init; }
        public required LossKind Loss { get; init; }
        public required OptimizerSettings Optimizer { get; init; }
        public required int BatchSize { get; init; }
        public required int Epochs { get; init; }
    }

    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter() },
        MaxDepth = 8,
    };
}
