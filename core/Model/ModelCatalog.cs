using SplitFunctions.Core.Model;

namespace SplitFunctions.Core.Model;

/// <summary>No catalog entry has the requested name.</summary>
public sealed class UnknownModelException(string name)
    : Exception($"unknown model '{name}': the catalog has {string.Join(", ", ModelCatalog.Names)}");

/// <summary>
/// The networks of the paper's Table 4 (Ha et al., arXiv 2108.10147), each with its cut point:
/// the first block runs at the hospital, everything after it in the cloud.
/// </summary>
public static class ModelCatalog
{
    /// <summary>COVID-19 CT: 64x64x1, five Conv2D+MaxPool blocks, sigmoid, BCE, batch 64, 100 epochs.</summary>
    public static ModelDefinition CovidCtCnn { get; } = new(
        Name: "covid-ct-cnn",
        Description: "COVID-19 CT classifier: 64x64x1, five conv blocks, first block at the hospital",
        Task: TaskKind.Classification,
        InputShape: [1, 64, 64],
        ClientLayers: ConvBlock(1, 32),                                                // block 1 -> 32x32x32
                                                                                       // ---- cut: the hospital sends 32x32x32 features ----
        ServerLayers:
        [
            .. ConvBlock(32, 64),                                                      // block 2 -> 64x16x16
            .. ConvBlock(64, 128),                                                     // block 3 -> 128x8x8
            .. ConvBlock(128, 128),                                                    // block 4 -> 128x4x4
            .. ConvBlock(128, 256),                                                    // block 5 -> 256x2x2
            .. BinaryHead(1024, 128),
        ],
        Loss: LossKind.BinaryCrossEntropy,
        BatchSize: 64,
        Epochs: 100,
        Optimizer: OptimizerSettings.Adam(1e-3));

    /// <summary>The COVID-CT network sized for PneumoniaMNIST's 28x28x1 images (three pools, global average at the end).</summary>
    public static ModelDefinition PneumoniaCnn { get; } = new(
        Name: "pneumonia-cnn",
        Description: "PneumoniaMNIST classifier: the COVID-CT network for 28x28x1, first block at the hospital",
        Task: TaskKind.Classification,
        InputShape: [1, 28, 28],
        ClientLayers: ConvBlock(1, 32),                                                // block 1 -> 32x14x14
                                                                                       // ---- cut: the hospital sends 32x14x14 features ----
        ServerLayers:
        [
            .. ConvBlock(32, 64),                                                      // block 2 -> 64x7x7
            .. ConvBlock(64, 128),                                                     // block 3 -> 128x3x3
            new Conv2d(128, 128, 3, Padding: 1), new ReLU(),                         // block 4 -> 128x3x3
            new Conv2d(128, 256, 3, Padding: 1), new ReLU(), new AvgPool2d(3),       // block 5 -> 256x1x1
            .. BinaryHead(256, 64),
        ],
        Loss: LossKind.BinaryCrossEntropy,
        BatchSize: 64,
        Epochs: 100,
        Optimizer: OptimizerSettings.Adam(1e-3));

    /// <summary>LDL cholesterol: (age, sex, height, weight, TC, HDL-C, TG) -> LDL-C, LeakyReLU MLP, MSE, batch 2048, 200 epochs.</summary>
    public static ModelDefinition LdlMlp { get; } = new(
        Name: "ldl-mlp",
        Description: "LDL-C regression MLP over 7 tabular attributes, first layer at the hospital",
        Task: TaskKind.Regression,
        InputShape: [7],
        ClientLayers:
        [
            new Linear(7, 64), new LeakyReLU(),
        ],
        // ---- cut: the hospital sends 64 features per patient ----
        ServerLayers:
        [
            new Linear(64, 64), new LeakyReLU(),
            new Linear(64, 32), new LeakyReLU(),
            new Linear(32, 1),
        ],
        Loss: LossKind.MeanSquaredError,
        BatchSize: 2048,
        Epochs: 200,
        Optimizer: OptimizerSettings.Adam(1e-3));

    /// <summary>MURA: 224x224x1 VGG19 (16 conv layers in five blocks), global average pooling head, sigmoid, BCE, batch 128, 50 epochs.</summary>
    public static ModelDefinition MuraVgg19 { get; } = new(
        Name: "mura-vgg19",
        Description: "MURA musculoskeletal radiograph classifier: VGG19 for 224x224x1, first block at the hospital",
        Task: TaskKind.Classification,
        InputShape: [1, 224, 224],
        ClientLayers: ConvBlock(1, 64, 2),                                             // block 1 -> 64x112x112
                                                                                       // ---- cut: the hospital sends 64x112x112 features ----
        ServerLayers:
        [
            .. ConvBlock(64, 128, 2),                                                  // block 2 -> 128x56x56
            .. ConvBlock(128, 256, 4),                                                 // block 3 -> 256x28x28
            .. ConvBlock(256, 512, 4),                                                 // block 4 -> 512x14x14
            .. ConvBlock(512, 512, 4),                                                 // block 5 -> 512x7x7
            new AvgPool2d(7),
            .. BinaryHead(512, 256),
        ],
        Loss: LossKind.BinaryCrossEntropy,
        BatchSize: 128,
        Epochs: 50,
        Optimizer: OptimizerSettings.Adam(1e-4));

    /// <summary>PneumoniaMNIST network with blocks 1-2 at the hospital (a deeper cut, a privacy defence; docs/privacy.md): sends 64x7x7.</summary>
    public static ModelDefinition PneumoniaCnnCut2 { get; } = DeeperCut(PneumoniaCnn, "pneumonia-cnn-cut2", 3, "PneumoniaMNIST classifier with blocks 1-2 at "
        + "the hospital (deeper cut)");

    /// <summary>PneumoniaMNIST network with blocks 1-3 at the hospital: sends 128x3x3.</summary>
    public static ModelDefinition PneumoniaCnnCut3 { get; } = DeeperCut(PneumoniaCnn, "pneumonia-cnn-cut3", 6, "PneumoniaMNIST classifier with blocks 1-3 at "
        + "the hospital (deeper cut)");

    /// <summary>
    /// PneumoniaMNIST network with a narrow cut: block 1 and a 1x1 convolution to 3 channels at the hospital, which sends
    /// 3x14x14 = 588 values per sample instead of 32x14x14 = 6,272 (fewer than the image's 784 pixels, so int8 in both
    /// directions moves under twice the raw bytes); the cloud's first convolution takes those 3 channels.
    /// </summary>
    public static ModelDefinition PneumoniaCnnNarrow { get; } = new(
        Name: "pneumonia-cnn-narrow",
        Description: "PneumoniaMNIST classifier with a narrow cut: block 1 and a 1x1 bottleneck to 3 channels at the hospital",
        Task: TaskKind.Classification,
        InputShape: [1, 28, 28],
        ClientLayers:
        [
            .. ConvBlock(1, 32),                                                       // block 1 -> 32x14x14
            new Conv2d(32, NarrowChannels, 1),                                       // bottleneck -> 3x14x14
        ],
        // ---- cut: the hospital sends 3x14x14 features ----
        // The bottleneck is linear (no ReLU): at 3 channels a ReLU would zero out information the cloud needs
        // (MobileNetV2's linear bottlenecks); the cloud's first convolution follows it directly.
        ServerLayers:
        [
            .. ConvBlock(NarrowChannels, 64),                                          // block 2 -> 64x7x7
            .. PneumoniaCnn.ServerLayers.Skip(3),                                    // blocks 3-5 and the head, unchanged
        ],
        Loss: LossKind.BinaryCrossEntropy,
        BatchSize: 64,
        Epochs: 100,
        Optimizer: OptimizerSettings.Adam(1e-3));

    /// <summary>
    /// ResNet-18 for 28x28x1 images, as MedMNIST v2 trains it (Yang et al. 2023): a 3x3 stride-1 stem without max pool, four
    /// stages of two basic blocks (64, 128, 256, 512 channels), global average pool, linear; cut after the stem.
    /// </summary>
    public static ModelDefinition ResNet18For28 { get; } = ResNet18(28, batchSize: 128);

    /// <summary>ResNet-18 for 64x64x1 (the COVID-CT size): the 28x28 stem (3x3, stride 1, no max pool); cut after the stem.</summary>
    public static ModelDefinition ResNet18For64 { get; } = ResNet18(64, batchSize: 64);

    /// <summary>ResNet-18 for 224x224x1 (MURA-style): torchvision's 7x7 stride-2 stem and 3x3 stride-2 max pool; cut after the stem.</summary>
    public static ModelDefinition ResNet18For224 { get; } = ResNet18(224, batchSize: 32);

    /// <summary>ResNet-18 for 28x28x1 with the stem and stage 1 (two blocks) at the hospital.</summary>
    public static ModelDefinition ResNet18For28Stage1 { get; } = ResNet18Stage1(ResNet18For28);

    /// <summary>ResNet-18 for 64x64x1 with the stem and stage 1 at the hospital.</summary>
    public static ModelDefinition ResNet18For64Stage1 { get; } = ResNet18Stage1(ResNet18For64);

    /// <summary>ResNet-18 for 224x224x1 with the stem and stage 1 at the hospital.</summary>
    public static ModelDefinition ResNet18For224Stage1 { get; } = ResNet18Stage1(ResNet18For224);

    public static IReadOnlyList<ModelDefinition> All { get; } = [CovidCtCnn, PneumoniaCnn, LdlMlp, MuraVgg19, PneumoniaCnnCut2, PneumoniaCnnCut3,
        PneumoniaCnnNarrow, ResNet18For28, ResNet18For64, ResNet18For224, ResNet18For28Stage1, ResNet18For64Stage1, ResNet18For224Stage1];

    public static IEnumerable<string> Names => All.Select(m => m.Name);

    /// <summary>Finds an entry by name; an unknown name lists the known ones.</summary>
    public static ModelDefinition Get(string name) =>
        All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase)) ?? throw new UnknownModelException(name);

    // Channels of pneumonia-cnn-narrow's cut.
    private const int NarrowChannels = 3;

    // The same network with the first `serverLayers` server layers moved to the hospital.
    private static ModelDefinition DeeperCut(ModelDefinition model, string name, int serverLayers, string description) => model with
    {
        Name = name,
        Description = description,
        ClientLayers = [.. model.ClientLayers, .. model.ServerLayers.Take(serverLayers)],
        ServerLayers = [.. model.ServerLayers.Skip(serverLayers)],
    };

    // ResNet-18 (He et al. 2016) for one-channel side x side images, binary head (linear to one sigmoid output, as every
    // image preset here). The stem is the hospital's part: the cut is after its convolution, batch norm and ReLU (and, for
    // 224, its max pool), the paper's "first block at the hospital"; every later layer is one basic block, so a cut never
    // falls inside a block. Adam 1e-3 and 100 epochs as MedMNIST v2; the batch shrinks with the cut's size (64 channels at
    // full resolution for 28 and 64, at a quarter for 224) so a frame stays a few tens of megabytes.
    private static ModelDefinition ResNet18(int side, int batchSize)
    {
        Layer[] stem = side >= 128
            ? [new Conv2d(1, 64, 7, Stride: 2, Padding: 3), new BatchNorm2d(64), new ReLU(), new MaxPool2d(3, 2, Padding: 1)]
            : [new Conv2d(1, 64, 3, Stride: 1, Padding: 1), new BatchNorm2d(64), new ReLU()];
        return new ModelDefinition(
            Name: $"resnet18-{side}",
            Description: $"ResNet-18 (MedMNIST v2 reference) for {side}x{side}x1 images, binary; the stem at the hospital",
            Task: TaskKind.Classification,
            InputShape: [1, side, side],
            ClientLayers: stem,
            // ---- cut: the hospital sends the stem's 64 channels ----
            ServerLayers:
            [
                new BasicBlock(64, 64), new BasicBlock(64, 64),                          // stage 1
                new BasicBlock(64, 128, 2), new BasicBlock(128, 128),                    // stage 2
                new BasicBlock(128, 256, 2), new BasicBlock(256, 256),                   // stage 3
                new BasicBlock(256, 512, 2), new BasicBlock(512, 512),                   // stage 4
                new AdaptiveAvgPool2d(1), new Flatten(), new Linear(512, 1), new Sigmoid(),
            ],
            Loss: LossKind.BinaryCrossEntropy,
            BatchSize: batchSize,
            Epochs: 100,
            Optimizer: OptimizerSettings.Adam(1e-3));
    }

    // The same ResNet-18 with stage 1's two blocks moved to the hospital (a deeper cut; the same wire size).
    private static ModelDefinition ResNet18Stage1(ModelDefinition model) =>
        DeeperCut(model, model.Name + "-stage1", 2, model.Description.Replace("the stem at the hospital", "the stem and stage 1 at the hospital",
            StringComparison.Ordinal));

    // Conv block, shared by every image network here (one convolution for the CNNs, VGG's two or four):
    // `convs` 3x3 convolutions with ReLU, then a 2x2 max pool.
    private static Layer[] ConvBlock(int inChannels, int outChannels, int convs = 1)
    {
        var layers = new List<Layer>();
        for (var i = 0; i < convs; i++)
        {
            layers.Add(new Conv2d(i == 0 ? inChannels : outChannels, outChannels, 3, Padding: 1));
            layers.Add(new ReLU());
        }
        layers.Add(new MaxPool2d(2));
        return [.. layers];
    }

    // Binary classifier head shared by the image networks: flatten, one hidden ReLU layer, a sigmoid output.
    private static Layer[] BinaryHead(int features, int hidden) =>
        [new Flatten(), new Linear(features, hidden), new ReLU(), new Linear(hidden, 1), new Sigmoid()];
}
