using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Data;

/// <summary>
/// Any column mapping: the network's width follows it, lipid columns are found by their usual names, and the plausibility ranges keep rare real values.
/// </summary>
public sealed class ColumnMappingTests
{
    [Theory]
    [InlineData("HDL_chole", ClinicalMeasure.Hdl)]
    [InlineData("hdl-c", ClinicalMeasure.Hdl)]
    [InlineData("HDL C (mg/dL)", ClinicalMeasure.Hdl)]
    [InlineData("Trigs", ClinicalMeasure.Triglycerides)]
    [InlineData("TG", ClinicalMeasure.Triglycerides)]
    [InlineData("chol_total", ClinicalMeasure.TotalCholesterol)]
    [InlineData("Total Cholesterol", ClinicalMeasure.TotalCholesterol)]
    [InlineData("tot_chole", ClinicalMeasure.TotalCholesterol)]
    [InlineData("ldl_measured", ClinicalMeasure.Ldl)]
    [InlineData("weight_kg", ClinicalMeasure.Weight)]
    public void Usual_column_names_are_recognised(string column, ClinicalMeasure measure) =>
        ClinicalRanges.Recognise(column).Should().Be(measure);

    [Fact]
    public void Unknown_names_and_mmol_columns_get_no_default_range()
    {
        ClinicalRanges.For("patient_id").Should().BeNull();
        ClinicalRanges.For("HDL (mmol/L)").Should().BeNull("the defaults are mg/dL; a mmol/L column would lose every row");
    }

    [Fact]
    public void Rare_but_real_lipid_values_are_kept_and_typing_errors_dropped()
    {
        const string csv = """
            years,tc,hdl_c,trigs,ldl
            40,200,9,150,160
            50,210,8110,150,150
            60,1100,40,18000,700
            70,220,50,4,160
            """;
        var data = CsvTabularLoader.Load(new StringReader(csv), new ColumnMapping(["years", "tc", "hdl_c", "trigs"], "ldl"), "inline.csv");
        data.Count.Should().Be(2, "HDL 9 (Tangier-like) and TC 1100 / TG 18000 (familial hypercholesterolaemia, chylomicronaemia) are real");
        data.Column("hdl_c").Should().Equal(9, 40);
        data.Validation!.Count(DropReason.OutOfRange, "hdl_c").Should().Be(1);
        data.Validation.Count(DropReason.OutOfRange, "trigs").Should().Be(1);
    }

    [Fact]
    public void Lipid_columns_are_found_by_name_or_named_explicitly()
    {
        LipidColumns.Find(["age", "chol_total", "trigs", "hdl_c"]).Should().Be(new LipidColumns("chol_total", "hdl_c", "trigs"));
        LipidColumns.Find(["age", "a", "b", "c"]).Should().BeNull();
        LipidColumns.Parse("tc=a,hdl=b,tg=c", ["age", "a", "b", "c"]).Should().Be(new LipidColumns("a", "b", "c"));
        var notMapped = () => LipidColumns.Parse("tc=a,hdl=b,tg=zz", ["a", "b", "c"]);
        notMapped.Should().Throw<ArgumentException>().WithMessage("*'zz' is not a mapped feature*a, b, c*");
        var incomplete = () => LipidColumns.Parse("tc=a,hdl=b", ["a", "b", "c"]);
        incomplete.Should().Throw<ArgumentException>().WithMessage("*Triglycerides*");

        // An explicitly named lipid column gets its measure's range whatever it is called.
        var mapping = new ColumnMapping(["a", "b", "c"], "y") { Lipids = new LipidColumns("a", "b", "c") };
        mapping.RangeFor("b").Should().Be(ClinicalRanges.Defaults[ClinicalMeasure.Hdl]);
        mapping.LipidColumns.Should().Be(new LipidColumns("a", "b", "c"));
    }

    [Fact]
    public void A_tabular_model_takes_the_width_of_the_mapping_and_an_image_model_keeps_its_input()
    {
        var four = ModelCatalog.LdlMlp.WithInputShape([4]);
        four.InputShape.Should().Equal(4);
        four.ClientLayers[0].Should().Be(new Linear(4, 64));
        using (var client = four.BuildClient()) client.OutputShape.Should().Equal(64);
        ModelCatalog.LdlMlp.InputShape.Should().Equal([7L], "the catalog entry itself is unchanged");

        var image = () => ModelCatalog.PneumoniaCnn.WithInputShape([3, 28, 28]);
        image.Should().Throw<ArgumentException>().WithMessage("*pneumonia-cnn*only a tabular model's width can change*");
        ModelCatalog.PneumoniaCnn.WithInputShape([1, 28, 28]).Should().BeSameAs(ModelCatalog.PneumoniaCnn);
    }

    [Fact]
    public void The_run_manifest_carries_the_input_width_to_the_agents_and_the_function()
    {
        var manifest = RunManifest.ForModel("run-four", ModelCatalog.LdlMlp.WithInputShape([4]), TrainingMode.Vanilla, ["hospital-a"], 1);
        var parsed = RunManifest.Parse(manifest.ToJson());
        parsed.InputShape.Should().Equal(4);
        parsed.ModelDefinition.ClientLayers[0].Should().Be(new Linear(4, 64));
        System.Text.Encoding.UTF8.GetString(manifest.ToJson()).Should().Contain("\"inputShape\"");

        var noShape = System.Text.Json.Nodes.JsonNode.Parse(manifest.ToJson())!.AsObject();
        noShape.Remove("inputShape");
        var missing = () => RunManifest.Parse(System.Text.Encoding.UTF8.GetBytes(noShape.ToJsonString()));
        missing.Should().Throw<RunManifestException>().WithMessage("*inputShape*");
        var wider = () => (manifest with { InputShape = [5] }).Validate();
        wider.Should().Throw<RunManifestException>().WithMessage("*network 'ldl-mlp': layer 0 'linear in=4 out=64' (hospital) does not fit: takes 4 features, "
            + "gets 5; input [5]*");
    }

    [Fact]
    public void Predefined_splits_keep_val_and_test_and_share_only_train()
    {
        var split = DataSplit.Predefined(100, 20, 30, seed: 3, hospitalWeights: [7, 2, 1]);
        split.Validation.Should().Equal(Enumerable.Range(100, 20));
        split.Test.Should().Equal(Enumerable.Range(120, 30));
        split.Hospitals.Select(h => h.Length).Should().Equal(70, 20, 10);
        split.Training.Order().Should().Equal(Enumerable.Range(0, 100));
        DataSplit.Predefined(100, 20, 30, seed: 3, hospitalWeights: [7, 2, 1]).Hospitals[0].Should().Equal(split.Hospitals[0], "the agents and the driver cut "
            + "the same rows");
    }
}
