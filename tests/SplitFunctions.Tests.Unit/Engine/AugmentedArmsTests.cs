using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// The in-process study arms (centralised and single-hospital through LocalTrainer, federated averaging) augment their training
/// batches when given data.augmentation's transform, and only then; pinned to one thread so each run is bit-for-bit repeatable.
/// </summary>
[Collection(nameof(ThreadCountTests))]
public sealed class AugmentedArmsTests
{
    private static TrainingSet Images()
    {
        var images = SyntheticImages.Generate(24, 28, 28, seed: 3);
        ChannelStatistics.Compute(images).Apply(images);
        return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
    }

    [Fact]
    public void Local_and_federated_arms_train_on_augmented_batches_when_asked_and_repeat_them_with_the_same_secret()
    {
        var threads = TorchRuntime.Threads;
        TorchRuntime.Threads = 1;
        try
        {
            using var state = new TempDirectory();
            var data = Images();
            var augmentation = new ImageAugmentation(new AugmentationSettings { MaxRotationDegrees = 30, MaxShift = 0.2 },
                OrderSecret.LoadOrCreate(state.Path), "study-arm", data.SampleShape);
            float[] Local(ImageAugmentation? a)
            {
                var (model, _) = LocalTrainer.Train("centralised", ModelCatalog.PneumoniaCnn, data, data, 2, 8, 5, (_, _) => 0, augmentation: a);
                using (model) return model.Predict(data);
            }
            float[] Federated(ImageAugmentation? a)
            {
                var (model, _) = FederatedAveraging.Train(ModelCatalog.PneumoniaCnn, [data, data], data, 2, 8, 5, (_, _) => 0, augmentation: a);
                using (model) return model.Predict(data);
            }

            var plain = Local(null);
            Local(null).Should().Equal(plain);
            var augmented = Local(augmentation);
            augmented.Should().NotEqual(plain, "the batches were transformed");
            Local(augmentation).Should().Equal(augmented, "the same secret draws the same views");
            var federated = Federated(null);
            Federated(augmentation).Should().NotEqual(federated);
        }
        finally
        {
            TorchRuntime.Threads = threads;
        }
    }
}
