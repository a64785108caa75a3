using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using TorchSharp;

namespace SplitFunctions.Tests.Engine;

/// <summary>Multi-class (softmax cross-entropy on logits) and multi-label (sigmoid BCE per label) tasks: validation, loss, training.</summary>
public sealed class MultiClassTaskTests
{
    private static ModelDefinition Logits(TaskKind task, int outputs) => TaskModels.Logits(task, outputs);

    [Fact]
    public void Multi_class_and_multi_label_networks_validate_and_report_their_widths()
    {
        var multiClass = Logits(TaskKind.MultiClass, 4);
        multiClass.OutputWidth.Should().Be(4);
        multiClass.LabelWidth.Should().Be(1);
        var multiLabel = Logits(TaskKind.MultiLabel, 3);
        multiLabel.LabelWidth.Should().Be(3);

        var withSigmoid = multiClass with { ServerLayers = [.. multiClass.ServerLayers, new Sigmoid()] };
        ((Action)(() => withSigmoid.Validate())).Should().Throw<ModelDefinitionException>().WithMessage("*takes logits*remove the last layer 'sigmoid'*");
        ((Action)(() => (multiClass with { Loss = LossKind.BinaryCrossEntropy }).Validate())).Should().Throw<ModelDefinitionException>()
            .WithMessage("*use CrossEntropy*");
        ((Action)(() => Logits(TaskKind.MultiClass, 1).Validate())).Should().Throw<ModelDefinitionException>().WithMessage("*at least 2*");
        ((Action)(() => (multiLabel with { Loss = LossKind.CrossEntropy }).Validate())).Should().Throw<ModelDefinitionException>()
            .WithMessage("*use BinaryCrossEntropyWithLogits*");
    }

    [Fact]
    public void Cross_entropy_is_the_mean_negative_log_softmax_of_the_true_class()
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(new float[] { 2, 0, -1, 0.5f, 0.5f, 3 }, [2, 3]);
        var target = torch.tensor(new float[] { 0, 2 }, [2, 1]);
        var loss = Loss.Compute(LossKind.CrossEntropy, logits, target, backward: false);
        static double Nll(double[] row, int k) => -(row[k] - Math.Log(row.Sum(Math.Exp)));
        loss.Should().BeApproximately((Nll([2, 0, -1], 0) + Nll([0.5, 0.5, 3], 2)) / 2, 1e-6);
        var wrongShape = () => Loss.Compute(LossKind.CrossEntropy, logits, torch.zeros(3, 1), backward: false);
        wrongShape.Should().Throw<TensorShapeException>();
    }

    [Theory]
    [InlineData(TaskKind.MultiClass, 4)]
    [InlineData(TaskKind.MultiLabel, 3)]
    public void A_split_model_learns_quadrant_pictures_of_either_task(TaskKind task, int outputs)
    {
        var definition = Logits(task, outputs);
        var random = new Random(2);
        var n = 64;
        var width = definition.LabelWidth;
        var features = new float[n * 28 * 28];
        var targets = new float[n * width];
        for (var i = 0; i < n; i++)
        {
            var cls = i % outputs;
            var picture = TestImages.ClassPicture(28, cls, random.Next());
            for (var p = 0; p < 28 * 28; p++) features[(i * 784) + p] = picture[p] / 255f;
            if (task == TaskKind.MultiClass) targets[i] = cls;
            else targets[(i * width) + cls] = 1;
        }
        var data = new TrainingSet(features, targets, [1, 28, 28], width);
        using var model = SplitModel.Create(definition, seed: 3);
        var first = model.TrainEpoch(data, 16, 1, 0) / n;
        double last = first;
        for (var e = 1; e < 8; e++) last = model.TrainEpoch(data, 16, 1, e) / n;
        last.Should().BeLessThan(first * 0.7, $"the loss fell from {first}");
        var predictions = model.Predict(data);
        predictions.Should().HaveCount(n * outputs, "a vector per sample");
    }

    [Theory]
    [InlineData(TaskKind.MultiClass, 4)]
    [InlineData(TaskKind.MultiLabel, 3)]
    public void The_centralised_and_federated_baselines_train_either_task_and_pick_epochs_on_validation(TaskKind task, int outputs)
    {
        var definition = Logits(task, outputs);
        var (train, validation) = (Pictures(definition, 96, seed: 1), Pictures(definition, 32, seed: 2));
        var score = TaskScoring.Validation(definition);

        var (central, history) = LocalTrainer.Train("centralised", definition, train, validation, epochs: 5, batchSize: 16, seed: 4, score);
        using (central)
        {
            history.Should().HaveCount(5);
            // The returned model holds the best validation epoch's weights, whichever epoch that was.
            var validationScore = score(central.Predict(validation), validation.Targets);
            validationScore.Should().BeApproximately(history.Max(h => h.ValidationScore), 1e-9);
            validationScore.Should().BeGreaterThan(0.8);
        }
        var halves = new[] { train.Subset([.. Enumerable.Range(0, 48)]), train.Subset([.. Enumerable.Range(48, 48)]) };
        var (federated, rounds) = FederatedAveraging.Train(definition, halves, validation, rounds: 5, batchSize: 16, seed: 4, score);
        using (federated)
        {
            rounds.Should().HaveCount(5);
            rounds.Max(r => r.ValidationScore).Should().BeGreaterThan(0.7);
        }
    }

    private static TrainingSet Pictures(ModelDefinition definition, int n, int seed)
    {
        var random = new Random(seed);
        var outputs = definition.OutputWidth;
        var width = definition.LabelWidth;
        var features = new float[n * 28 * 28];
        var targets = new float[n * width];
        for (var i = 0; i < n; i++)
        {
            var cls = i % outputs;
            var picture = TestImages.ClassPicture(28, cls, random.Next());
            for (var p = 0; p < 28 * 28; p++) features[(i * 784) + p] = picture[p] / 255f;
            if (definition.Task == TaskKind.MultiClass) targets[i] = cls;
            else targets[(i * width) + cls] = 1;
        }
        return new TrainingSet(features, targets, [1, 28, 28], width);
    }
}
