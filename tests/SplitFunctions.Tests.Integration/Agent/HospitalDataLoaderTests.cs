using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Data;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Agent;

/// <summary>The agent's data loading on the real files in ../shared/data and on bad files: shapes, counts, dropped rows.</summary>
public sealed class HospitalDataLoaderTests
{
    private static readonly ColumnSettings Lipids = new()
    {
        Features = [.. ColumnMapping.NhisLipids.Features],
        Target = ColumnMapping.NhisLipids.Target,
        Categorical = new() { ["sex"] = new() { ["Male"] = 0, ["Female"] = 1 } },
    };

    [Fact]
    public void PneumoniaMnist_pools_all_splits_and_cuts_the_papers_shares()
    {
        var shares = Enumerable.Range(0, 3).Select(i => HospitalDataLoader.Load(new DataSettings
        {
            Path = SharedData.PneumoniaMnist,
            Kind = DataKinds.ImagesNpz,
            Partition = new PartitionSettings { Seed = 1, Weights = [0.7, 0.2, 0.1], Index = i },
        }, ModelCatalog.PneumoniaCnn)).ToList();

        // 4708 + 524 + 624 images; 10% validation and 10% test held out, the rest 7:2:1.
        shares[0].Validation.Count.Should().Be(586);
        shares[0].Test.Count.Should().Be(586);
        shares.Sum(s => s.Train.Count).Should().Be(5856 - 586 - 586);
        shares.Select(s => s.Train.Count).Should().BeInDescendingOrder();
        shares[0].Train.SampleShape.Should().Equal(1, 28, 28);
        shares[0].Train.Targets.Should().OnlyContain(t => t == 0f || t == 1f);
        // Normalised with this hospital's training statistics.
        shares[0].Train.Features.Average(f => (double)f).Should().BeApproximately(0, 1e-3);
    }

    [Fact]
    public void Images_are_resized_to_the_models_input()
    {
        var data = HospitalDataLoader.Load(new DataSettings { Path = SharedData.PneumoniaMnist, Kind = DataKinds.ImagesNpz }, ModelCatalog.CovidCtCnn);
        data.Train.SampleShape.Should().Equal(1, 64, 64);
        data.Train.Features.Length.Should().Be(data.Train.Count * 64 * 64);
    }

    [Fact]
    public void Lipids_csv_drops_and_counts_implausible_rows()
    {
        var data = HospitalDataLoader.Load(new DataSettings { Path = SharedData.Lipids, Kind = DataKinds.TabularCsv, Columns = Lipids }, ModelCatalog.LdlMlp);
        var report = data.Report!;
        report.TotalRows.Should().Be(28460);
        report.DroppedRows.Should().BeGreaterThan(0);
        (data.Train.Count + data.Validation.Count + data.Test.Count).Should().Be(report.KeptRows);
        data.Train.SampleShape.Should().Equal(7);
        // The absurd values the README mentions (HDL up to 8110, LDL up to 5119) are among the dropped rows.
        report.Count(DropReason.OutOfRange).Should().BeGreaterThan(0);
        data.Summary.Should().Contain("dropped");
    }

    [Fact]
    public void The_manifest_target_scaling_maps_regression_targets_to_the_wire()
    {
        var plain = HospitalDataLoader.Load(new DataSettings { Path = SharedData.Lipids, Kind = DataKinds.TabularCsv, Columns = Lipids }, ModelCatalog.LdlMlp);
        var scaled = HospitalDataLoader.Load(new DataSettings { Path = SharedData.Lipids, Kind = DataKinds.TabularCsv, Columns = Lipids }, ModelCatalog.LdlMlp,
            new Core.Runs.TargetScaling(20, 100));
        scaled.Train.Targets[0].Should().BeApproximately((plain.Train.Targets[0] - 20) / 100, 1e-4f);
    }

    [Fact]
    public void A_csv_missing_a_mapped_column_is_a_data_error_naming_it()
    {
        using var dir = new TempDirectory();
        var path = dir.File("lipids.csv");
        File.WriteAllLines(path, File.ReadLines(SharedData.Lipids).Take(50).Select(l => string.Join(',', l.Split(',')[..^1])));
        var load = () => HospitalDataLoader.Load(new DataSettings { Path = path, Kind = DataKinds.TabularCsv, Columns = Lipids }, ModelCatalog.LdlMlp);
        load.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("LDL_chole"));
    }

    [Fact]
    public void Images_for_a_tabular_model_and_wrong_channel_counts_are_data_errors()
    {
        using var dir = new TempDirectory();
        var rgb = dir.File("rgb.npz");
        NpzWriter.Write(rgb, [new("images", new NpyArray(NpyDType.UInt8, [4, 3, 28, 28], new byte[4 * 3 * 28 * 28])),
            new("labels", NpyArray.FromFloats([0, 1, 0, 1], 4))]);
        var wrongChannels = () => HospitalDataLoader.Load(new DataSettings { Path = rgb, Kind = DataKinds.ImagesNpz }, ModelCatalog.PneumoniaCnn);
        wrongChannels.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("3 channel"));
        var tabular = () => HospitalDataLoader.Load(new DataSettings { Path = rgb, Kind = DataKinds.ImagesNpz }, ModelCatalog.LdlMlp);
        tabular.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data);
    }

    [Fact]
    public void Non_binary_labels_and_unreadable_files_are_data_errors()
    {
        using var dir = new TempDirectory();
        var path = dir.File("labels.npz");
        NpzWriter.Write(path, [new("images", new NpyArray(NpyDType.UInt8, [20, 28, 28], new byte[20 * 28 * 28])),
            new("labels", NpyArray.FromFloats(Enumerable.Range(0, 20).Select(i => (float)(i % 3)).ToArray(), 20))]);
        var labels = () => HospitalDataLoader.Load(new DataSettings { Path = path, Kind = DataKinds.ImagesNpz }, ModelCatalog.PneumoniaCnn);
        labels.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("not 0 or 1"));

        var garbage = dir.File("garbage.npz");
        File.WriteAllText(garbage, "not a zip");
        var load = () => HospitalDataLoader.Load(new DataSettings { Path = garbage, Kind = DataKinds.ImagesNpz }, ModelCatalog.PneumoniaCnn);
        load.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("numpy.savez"));

        var missing = () => HospitalDataLoader.Load(new DataSettings { Path = dir.File("absent.npz"), Kind = DataKinds.ImagesNpz }, ModelCatalog.PneumoniaCnn);
        missing.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("data.path"));
    }
}

/// <summary>A hospital's own columns: the width the run manifest fixes, and an archive's own splits.</summary>
public sealed class HospitalColumnMappingTests
{
    private static string FourColumns(TempDirectory dir)
    {
        var path = dir.File("four.csv");
        File.WriteAllLines(path,
            ["years,tc,trigs,hdl_c,ldl_direct", .. Enumerable.Range(0, 60).Select(i => $"{30 + i % 40},{180 + i},{100 + 3 * i},{40 + i % 20},{110 + i}")]);
        return path;
    }

    [Fact]
    public void A_four_column_mapping_loads_for_a_four_wide_run_and_is_refused_by_a_seven_wide_one()
    {
        using var dir = new TempDirectory();
        var settings = new DataSettings
        {
            Path = FourColumns(dir),
            Kind = DataKinds.TabularCsv,
            Columns = new ColumnSettings { Features = ["years", "tc", "trigs", "hdl_c"], Target = "ldl_direct" },
        };
        var data = HospitalDataLoader.Load(settings, ModelCatalog.LdlMlp.WithInputShape([4]));
        data.Train.SampleShape.Should().Equal(4);

        var seven = () => HospitalDataLoader.Load(settings, ModelCatalog.LdlMlp);
        seven.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("maps 4 columns") && e.Message.Contains("[7]"));
    }

    [Fact]
    public void Predefined_splits_keep_the_archives_val_and_test()
    {
        using var dir = new TempDirectory();
        var path = dir.File("splits.npz");
        ImageArchive.Save(path,
            [new("train", SyntheticImages.Generate(100, 28, 28, seed: 1)), new("val", SyntheticImages.Generate(20, 28, 28, seed: 2)),
            new("test", SyntheticImages.Generate(30, 28, 28, seed: 3))]);
        var shares = Enumerable.Range(0, 3).Select(i => HospitalDataLoader.Load(new DataSettings
        {
            Path = path,
            Kind = DataKinds.ImagesNpz,
            Partition = new PartitionSettings { Seed = 4, Weights = [7, 2, 1], Index = i, PredefinedSplits = true },
        }, ModelCatalog.PneumoniaCnn)).ToList();
        shares.Select(s => s.Train.Count).Should().Equal(70, 20, 10);
        shares[0].Validation.Count.Should().Be(20);
        shares[0].Test.Count.Should().Be(30);
        shares[0].Test.Targets.Should().Equal(SyntheticImages.Generate(30, 28, 28, seed: 3).Labels, "the test split is the archive's own, in its order");

        var trainOnly = dir.File("train-only.npz");
        ImageArchive.Save(trainOnly, [new("train", SyntheticImages.Generate(40, 28, 28, seed: 1))]);
        var load = () => HospitalDataLoader.Load(new DataSettings
        {
            Path = trainOnly,
            Kind = DataKinds.ImagesNpz,
            Partition = new PartitionSettings { PredefinedSplits = true }
        }, ModelCatalog.PneumoniaCnn);
        load.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Data && e.Message.Contains("needs train, val and test"));
    }

    [Fact]
    public async Task Init_refuses_a_mapped_column_the_file_does_not_have_and_lists_the_header()
    {
        using var dir = new TempDirectory();
        var csv = FourColumns(dir);
        var run = await AgentTestBed.RunAsync(["init", "--config", dir.File("agent.json"), "--hospital", "hospital-a", "--run", "run-four", "--data", csv,
            "--connection-string", "UseDevelopmentStorage=true", "--key-dir", dir.File("keys"), "--features", "years,tc,trigs,hdl", "--target", "ldl_direct"]);
        run.ExitCode.Should().Be((int)ExitCode.Data, run.ToString());
        run.Error.Should().Contain("'hdl' is not in the header").And.Contain("years, tc, trigs, hdl_c, ldl_direct");
        File.Exists(dir.File("agent.json")).Should().BeFalse("nothing is written for a mapping that cannot load");
    }
}
