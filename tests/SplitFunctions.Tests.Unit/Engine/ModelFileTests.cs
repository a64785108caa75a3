using System.Text;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// Networks described as data: the catalog presets and a consortium's model file are one format; the description is
/// validated (layers, shapes, cut, loss) before anything is built, and the run manifest carries it to the agents and the function.
/// </summary>
public sealed class ModelFileTests
{
    public static TheoryData<string> Presets => [.. ModelCatalog.Names];

    [Theory]
    [MemberData(nameof(Presets))]
    public void Each_preset_is_a_model_file_that_reads_back_to_the_same_network_and_state_keys(string name)
    {
        var preset = ModelCatalog.Get(name);
        var read = ModelFile.Parse(ModelFile.ToJson(preset), name + ".json");

        read.Layers.All.Select(l => l.Spec).Should().Equal(preset.Layers.All.Select(l => l.Spec));
        read.ClientLayers.Should().HaveCount(preset.ClientLayers.Count, "the cut is where the preset has it");
        (read.Name, read.Task, read.Loss, read.BatchSize, read.Epochs, read.Optimizer).Should()
            .Be((preset.Name, preset.Task, preset.Loss, preset.BatchSize, preset.Epochs, preset.Optimizer));
        read.InputShape.Should().Equal(preset.InputShape);

        // The shape arithmetic agrees with libtorch's dry run, and the state-dict keys (what the golden fixtures pin) are unchanged.
        using var client = read.BuildClient();
        read.CutShape.Should().Equal(client.OutputShape);
        using var presetClient = preset.BuildClient();
        client.StateNames.Should().Equal(presetClient.StateNames);
    }

    /// <summary>Set to 1 to (re)write docs/models/&lt;preset&gt;.json from the catalog, then run the test again without it.</summary>
    private const string WritePresetFiles = "SPLITFN_WRITE_PRESET_FILES";

    [Theory]
    [MemberData(nameof(Presets))]
    public void Each_preset_has_a_model_file_in_docs_that_loads_and_equals_the_catalog(string name)
    {
        var preset = ModelCatalog.Get(name);
        var path = Path.Combine(RepoRoot.Path, "docs", "models", name + ".json");
        if (Environment.GetEnvironmentVariable(WritePresetFiles) == "1") File.WriteAllBytes(path, ModelFile.ToJson(preset));
        File.Exists(path).Should().BeTrue($"docs/models/{name}.json is the preset as a file to start one's own from (write it with {WritePresetFiles}=1)");
        var file = ModelFile.Load(path);
        (file.Name, file.Description, file.Task, file.Loss, file.BatchSize, file.Epochs, file.Optimizer).Should()
            .Be((preset.Name, preset.Description, preset.Task, preset.Loss, preset.BatchSize, preset.Epochs, preset.Optimizer));
        file.InputShape.Should().Equal(preset.InputShape);
        // A layer's spec is its canonical form (maxpool2d's default stride reads back as the kernel).
        file.ClientLayers.Select(l => l.Spec).Should().Equal(preset.ClientLayers.Select(l => l.Spec), "the same hospital layers: the same cut");
        file.ServerLayers.Select(l => l.Spec).Should().Equal(preset.ServerLayers.Select(l => l.Spec));
        file.TailLayers.Should().BeEmpty();
    }

    [Fact]
    public void The_example_model_files_in_docs_load_build_and_train_one_step()
    {
        // The presets' own files are checked against the catalog above (and the catalog trains in CatalogTests and
        // ResidualNetworkTests); these are the consortium examples.
        foreach (var path in Directory.GetFiles(Path.Combine(RepoRoot.Path, "docs", "models"), "*.json")
            .Where(p => !ModelCatalog.Names.Contains(Path.GetFileNameWithoutExtension(p))))
        {
            var model = ModelFile.Load(path);
            TorchRuntime.Seed(3);
            var (client, server) = model.BuildSplit();
            using var _c = client;
            using var _s = server;
            client.OutputShape.Should().Equal(model.CutShape, path);
            server.OutputShape.Should().Equal([(long)model.OutputWidth]);
            client.StateNames.Should().StartWith(["0.weight", "0.bias"], "layers are named 0, 1, ... as nn.Sequential names them");

            using var clientOptimizer = Optimizer.Create(client, model.Optimizer);
            using var serverOptimizer = Optimizer.Create(server, model.Optimizer);
            const int batch = 8;
            using var x = TensorData.FromFloats(GoldenValues.Values("model-file", batch * model.InputShape.Aggregate(1L, (a, b) => a * b), 1.0),
                [batch, .. model.InputShape]);
            // Multi-class targets are class indices; the others 0/1 or values.
            using var y = model.Task == TaskKind.MultiClass
                ? TensorData.FromFloats(Enumerable.Range(0, batch).Select(j => (float)(j % model.OutputWidth)).ToArray(), [batch, 1])
                : GoldenValues.Targets(model.Task == TaskKind.Classification, batch);
            var losses = new List<double>();
            for (var i = 0; i < 5; i++)
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                clientOptimizer.ZeroGrad();
                serverOptimizer.ZeroGrad();
                var prediction = server.Forward(client.Forward(x, train: true), train: true);
                losses.Add(Loss.Compute(model.Loss, prediction, y, backward: true));
                clientOptimizer.Step();
                serverOptimizer.Step();
            }
            losses[^1].Should().BeLessThan(losses[0], $"{Path.GetFileName(path)} fits one batch better after a few steps");
        }
    }

    [Fact]
    public void A_shape_that_does_not_flow_names_the_first_layer_that_does_not_fit_and_the_input_shape()
    {
        var act = () => Parse(Layers("""{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"relu"},{"type":"cut"},{"type":"flatten"},{"type":"linear","in":100,"out":1},{"type":"sigmoid"}"""));
        act.Should().Throw<ModelDefinitionException>()
            .WithMessage("model file m.json: layer 3 'linear in=100 out=1' (cloud) does not fit: takes 100 features, gets 5408; input [1,28,28], [5408] "
                + "reaches this layer");

        var channels = () => Parse(Layers("""{"type":"conv2d","in":3,"out":8,"kernel":3},{"type":"cut"},{"type":"flatten"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"}"""));
        channels.Should().Throw<ModelDefinitionException>().WithMessage("*layer 0 'conv2d in=3 out=8 kernel=3 stride=1 padding=0' (hospital) does not fit: "
            + "takes 3 channels, gets 1*");

        var tabular = ModelFile.Load(Path.Combine(RepoRoot.Path, "docs", "models", "lipid-mlp.json"));
        var data = () => tabular.Validate([5]);
        data.Should().Throw<ModelDefinitionException>().WithMessage("layer 0 'linear in=4 out=32' (hospital) does not fit: takes 4 features, gets 5; the data "
            + "gives input [5]*");
    }

    [Theory]
    [InlineData("""{"type":"cut"},{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"flatten"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"}""", "the cut is before the first layer*")]
    [InlineData("""{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"flatten"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"},{"type":"cut"}""", "the cut is after the last layer*")]
    [InlineData("""{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"flatten"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"}""", "layers has no {\"type\": \"cut\"}*")]
    [InlineData("""{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"cut"},{"type":"flatten"},{"type":"cut"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"}""", "layers[3]: the cut is marked twice*")]
    [InlineData("""{"type":"flatten"},{"type":"dropout","p":0.5},{"type":"cut"},{"type":"linear","in":784,"out":1},{"type":"sigmoid"}""", "*before the cut (flatten, dropout p=0.5) mix no inputs*")]
    [InlineData("""{"type":"conv2d","in":1,"out":8,"kernel":3},{"type":"cut","after":2},{"type":"flatten"},{"type":"linear","in":5408,"out":1},{"type":"sigmoid"}""", "layers[1]: \"cut\" is a marker between layers and takes no options")]
    public void The_cut_must_be_a_real_layer_boundary_with_the_hospital_keeping_a_layer_that_mixes_its_data(string layers, string message)
    {
        var act = () => Parse(Layers(layers));
        act.Should().Throw<ModelDefinitionException>().WithMessage("model file m.json*" + message);
    }

    [Fact]
    public void An_unknown_layer_or_option_and_malformed_json_are_one_line_naming_the_entry()
    {
        var unknown = () => Parse(Layers("""{"type":"conv3d","in":1,"out":8,"kernel":3},{"type":"cut"},{"type":"linear","in":1,"out":1}"""));
        unknown.Should().Throw<ModelDefinitionException>().WithMessage("model file m.json: layers[0]: unknown layer type 'conv3d'; known: conv2d, "
            + "maxpool2d*linear*");

        var option = () => Parse(Layers("""{"type":"conv2d","in":1,"out":8,"kernel":3,"dilation":2},{"type":"cut"},{"type":"linear","in":1,"out":1}"""));
        option.Should().Throw<ModelDefinitionException>().WithMessage("*layers[0] conv2d: unknown option 'dilation'; it takes in, out, kernel, stride "
            + "(optional), padding (optional)");

        var missing = () => Parse(Layers("""{"type":"linear","in":784},{"type":"cut"},{"type":"linear","in":1,"out":1}"""));
        missing.Should().Throw<ModelDefinitionException>().WithMessage("*layers[0] linear: 'out' is missing*");

        var fraction = () => Parse(Layers("""{"type":"linear","in":784,"out":1.5},{"type":"cut"},{"type":"linear","in":1,"out":1}"""));
        fraction.Should().Throw<ModelDefinitionException>().WithMessage("*layers[0]: 'out' must be a whole number, is 1.5");

        var range = () => Parse(Layers("""{"type":"flatten"},{"type":"linear","in":784,"out":8},{"type":"cut"},{"type":"dropout","p":1.5},{"type":"linear","in":8,"out":1},{"type":"sigmoid"}"""));
        range.Should().Throw<ModelDefinitionException>().WithMessage("*layer 2 'dropout p=1.5' (cloud) does not fit: p must be in [0, 1), is 1.5*");

        foreach (var bad in new[] { "{\"v\":1,\"name\":\"m\",", "[]", "{\"v\":1}", Layers("{\"type\":\"relu\"}")
            .Replace("\"task\"", "\"tasks\"", StringComparison.Ordinal) })
        {
            var malformed = () => ModelFile.Parse(Encoding.UTF8.GetBytes(bad), "m.json");
            malformed.Should().Throw<ModelDefinitionException>().Which.Message.Should().StartWith("model file m.json is not valid: ").And.NotContain("\n");
        }

        var version = () => ModelFile.Parse(Encoding.UTF8.GetBytes(Layers("""{"type":"linear","in":784,"out":1},{"type":"cut"},{"type":"linear","in":1,"out":1}""").Replace("\"v\": 1", "\"v\": 9", StringComparison.Ordinal)), "m.json");
        version.Should().Throw<ModelDefinitionException>().WithMessage("model file m.json has format version 9; this build reads version 1");

        using var dir = new TempDirectory();
        var absent = () => ModelFile.Load(dir.File("absent.json"));
        absent.Should().Throw<ModelDefinitionException>().WithMessage("model file *absent.json does not exist");
    }

    [Theory]
    [InlineData("Classification", "MeanSquaredError", "sigmoid", "loss MeanSquaredError does not fit a Classification task: use BinaryCrossEntropy*")]
    [InlineData("Regression", "BinaryCrossEntropy", "relu", "loss BinaryCrossEntropy does not fit a Regression task: use MeanSquaredError")]
    [InlineData("Classification", "BinaryCrossEntropy", "relu", "*the last layer is 'relu', end with sigmoid")]
    public void The_loss_must_fit_the_task(string task, string loss, string last, string message)
    {
        var json = Layers($$"""{"type":"flatten"},{"type":"linear","in":784,"out":8},{"type":"cut"},{"type":"linear","in":8,"out":1},{"type":"{{last}}"}""")
            .Replace("Classification", task, StringComparison.Ordinal).Replace("BinaryCrossEntropy", loss, StringComparison.Ordinal);
        var act = () => ModelFile.Parse(Encoding.UTF8.GetBytes(json), "m.json");
        act.Should().Throw<ModelDefinitionException>().WithMessage("model file m.json: " + message);

        var wide = () => Parse(Layers("""{"type":"flatten"},{"type":"linear","in":784,"out":8},{"type":"cut"},{"type":"linear","in":8,"out":2},{"type":"sigmoid"}"""));
        wide.Should().Throw<ModelDefinitionException>().WithMessage("*ends in shape [2] per sample; a Classification task needs one output ([1])*");
    }

    [Fact]
    public void A_tail_after_the_cut_is_read_for_a_U_shaped_split_and_a_version_3_manifest_refuses_it()
    {
        var model = Parse(Layers("""{"type":"flatten"},{"type":"linear","in":784,"out":8},{"type":"cut"},{"type":"linear","in":8,"out":4},{"type":"tail"},{"type":"linear","in":4,"out":1},{"type":"sigmoid"}"""));
        model.ServerLayers.Should().ContainSingle();
        model.TailLayers.Select(l => l.Spec).Should().Equal("linear in=4 out=1", "sigmoid");
        ModelFile.Parse(ModelFile.ToJson(model), "again.json").TailLayers.Should().HaveCount(2, "the tail marker is written back");

        var manifest = RunManifest.ForModel("run-1", model, TrainingMode.Vanilla, ["h1"], 7);
        var act = () => RunManifest.Parse(manifest.ToJson());
        act.Should().Throw<RunManifestException>().WithMessage("*marks a tail (a U-shaped split); this build trains the two-part split only*");
    }

    [Fact]
    public void The_manifest_carries_the_network_and_the_agents_and_function_build_it_from_there()
    {
        var model = ModelFile.Load(Path.Combine(RepoRoot.Path, "docs", "models", "small-cnn.json"));
        var manifest = RunManifest.ForModel("run-own", model, TrainingMode.Vanilla, ["h1"], 7);
        var parsed = RunManifest.Parse(manifest.ToJson());
        parsed.Model.Should().Be("small-cnn");
        parsed.ModelDefinition.Layers.All.Select(l => l.Spec).Should().Equal(model.Layers.All.Select(l => l.Spec));
        parsed.ModelDefinition.ClientLayers.Should().HaveCount(4);
        parsed.CutShape.Should().Equal(16, 14, 14);

        // The manifest's layers are the network: edit one and the cut shape no longer matches, or the shapes no longer flow.
        var node = JsonNode.Parse(manifest.ToJson())!;
        node["layers"]![1]!["features"] = 8;
        var misfit = () => RunManifest.Parse(Encoding.UTF8.GetBytes(node.ToJsonString()));
        misfit.Should().Throw<RunManifestException>().WithMessage("run manifest: network 'small-cnn': layer 1 'batchnorm2d features=8' (hospital) does not "
            + "fit*");
        node = JsonNode.Parse(manifest.ToJson())!;
        node["layers"]![0]!["out"] = 8;
        node["layers"]![1]!["features"] = 8;
        var cut = () => RunManifest.Parse(Encoding.UTF8.GetBytes(node.ToJsonString()));
        cut.Should().Throw<RunManifestException>().WithMessage("*layer 4 'conv2d in=16 out=32*(cloud) does not fit: takes 16 channels, gets 8*");
        node = JsonNode.Parse(manifest.ToJson())!;
        node["layers"]![0]!["type"] = "conv9d";
        var unknown = () => RunManifest.Parse(Encoding.UTF8.GetBytes(node.ToJsonString()));
        unknown.Should().Throw<RunManifestException>().WithMessage("run manifest: layers[0]: unknown layer type 'conv9d'*");
    }

    private static ModelDefinition Parse(string json) => ModelFile.Parse(Encoding.UTF8.GetBytes(json), "m.json");

    private static string Layers(string layers) => $$"""
        {
          "v": 1,
          "name": "m",
          "task": "Classification",
          "inputShape": [1, 28, 28],
          "layers": [{{layers}}],
          "loss": "BinaryCrossEntropy",
          "optimizer": { "kind": "Adam", "learningRate": 0.001 },
          "batchSize": 8,
          "epochs": 1
        }
        """;
}
