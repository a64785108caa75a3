using System.Globalization;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>CSV loading through a column mapping: the real lipids file's dirty rows are dropped and counted, bad mappings are named.</summary>
public sealed class CsvTabularLoaderTests
{
    [Fact]
    public void Lipids_DropsExactlyTheImplausibleRows_AndReportsThemPerColumn()
    {
        var data = CsvTabularLoader.Load(SharedData.Lipids, ColumnMapping.NhisLipids);
        var expected = CountIndependently(SharedData.Lipids);
        var report = data.Validation!;

        report.TotalRows.Should().Be(expected.Total).And.Be(28460);
        report.DroppedRows.Should().Be(expected.Dropped).And.Be(14);
        data.Count.Should().Be(28460 - 14);
        foreach (var (column, rows) in expected.PerColumn)
            report.Count(DropReason.OutOfRange, column).Should().Be(rows, $"column {column}");
        report.Count(DropReason.OutOfRange, "LDL_chole").Should().Be(11);
        // Only the HDLs above 300 mg/dL (typing errors such as 8110); the file's HDLs of 4 and 6 mg/dL are kept (Tangier disease is real).
        report.Count(DropReason.OutOfRange, "HDL_chole").Should().Be(3);
        report.Count(DropReason.OutOfRange, "tot_chole").Should().Be(0);
        report.Count(DropReason.OutOfRange, "triglyceride").Should().Be(1);
        report.Count(DropReason.Missing).Should().Be(0);
        report.Count(DropReason.UnknownCategory).Should().Be(0);
        report.ToString().Should().Contain("OutOfRange in 'HDL_chole': 3 rows");

        data.FeatureNames.Should().Equal("age", "sex", "height", "weight", "tot_chole", "HDL_chole", "triglyceride");
        data.Row(0).ToArray().Should().Equal(35, 0, 170, 75, 193, 48, 92);
        data.Targets[0].Should().Be(126);
        data.Targets.Should().OnlyContain(v => v >= 10 && v <= 2000);
    }

    [Fact]
    public void MissingUnparseableAndUnknownCategories_AreCountedByReason()
    {
        const string csv = """
            sex,age,chol,ldl
            1,40,200,120
            2,,180,100
            3,50,190,110
            1,abc,x,90
            2,NA,170,
            1,500,150,80
            """;
        var mapping = new ColumnMapping(["sex", "age", "chol"], "ldl")
        {
            Categorical = new Dictionary<string, IReadOnlyDictionary<string, double>> { ["sex"] = new Dictionary<string, double> { ["1"] = 0, ["2"] = 1 } },
        };
        var data = CsvTabularLoader.Load(new StringReader(csv), mapping, "inline.csv");
        var report = data.Validation!;
        report.TotalRows.Should().Be(6);
        report.DroppedRows.Should().Be(5);
        report.Count(DropReason.Missing, "age").Should().Be(2);
        report.Count(DropReason.Missing, "ldl").Should().Be(1);
        report.Count(DropReason.UnknownCategory, "sex").Should().Be(1);
        report.Count(DropReason.NotANumber, "age").Should().Be(1);
        report.Count(DropReason.NotANumber, "chol").Should().Be(1);
        report.Count(DropReason.OutOfRange, "age").Should().Be(1, "age 500 is outside the default 0-125");
        report.Drops.Single(d => d.Reason == DropReason.Missing && d.Column == "age").FirstLines.Should().Equal(3, 6);
        data.Count.Should().Be(1);
        data.Row(0).ToArray().Should().Equal(0, 40, 200);
    }

    [Fact]
    public void ConfiguredRanges_OverrideTheDefaults()
    {
        const string csv = "age,y\n30,1\n70,2\n";
        var mapping = new ColumnMapping(["age"], "y") { Ranges = new Dictionary<string, PlausibleRange> { ["age"] = new(18, 65) } };
        var data = CsvTabularLoader.Load(new StringReader(csv), mapping, "inline.csv");
        data.Count.Should().Be(1);
        data.Validation!.Count(DropReason.OutOfRange, "age").Should().Be(1);
    }

    [Fact]
    public void MappedColumnMissingFromHeader_NamesItAndListsTheHeader()
    {
        var mapping = new ColumnMapping(["age", "sex", "height", "weight", "tot_chole", "HDL", "triglyceride"], "LDL_chole");
        var act = () => CsvTabularLoader.Load(SharedData.Lipids, mapping);
        act.Should().Throw<DataFormatException>()
            .WithMessage("*nhis_lipids.csv: mapped column 'HDL' is not in the header. The header has: sex, age, height, weight, tot_chole, HDL_chole, "
                + "triglyceride, LDL_chole.*");
    }

    [Fact]
    public void MissingFile_IsNamed()
    {
        var act = () => CsvTabularLoader.Load("/nonexistent/lipids.csv", ColumnMapping.NhisLipids);
        act.Should().Throw<DataFormatException>().WithMessage("/nonexistent/lipids.csv: file not found*");
    }

    [Fact]
    public void Standardizer_FitsOnTrainingRowsOnly()
    {
        var train = new TabularDataset([1, 10, 3, 30], [0, 0], ["a", "b"], "y");
        var test = new TabularDataset([5, 50], [0], ["a", "b"], "y");
        var standardizer = Standardizer.Fit(train);
        standardizer.Mean.Should().Equal(2f, 20f);
        standardizer.Std.Should().Equal(1f, 10f);
        standardizer.Transform(train).Features.Should().Equal(-1, -1, 1, 1);
        standardizer.Transform(test).Features.Should().Equal(3, 3);
        standardizer.InverseTransform(standardizer.Transform(test.Features)).Should().Equal(5, 50);
    }

    [Fact]
    public void Standardizer_CentresConstantColumns()
    {
        var s = Standardizer.Fit([4f, 4f, 4f], 1);
        s.Transform([4f, 5f]).Should().Equal(0f, 1f / Standardizer.MinStd);
    }

    // A plain read of the file with the clinical limits written out again, so the test does not trust the loader's code.
    [Fact]
    public void A_value_beyond_the_float_range_is_refused_naming_file_line_and_column()
    {
        // 1e39 is a finite double but +Infinity as a float: it passed as "200 rows, 0 dropped" and failed in training.
        const string csv = """
            sex,age,marker,ldl
            1,40,200,120
            2,41,1e39,100
            """;
        var mapping = new ColumnMapping(["sex", "age", "marker"], "ldl");
        var load = () => CsvTabularLoader.Load(new StringReader(csv), mapping, "inline.csv");
        var message = load.Should().Throw<DataFormatException>().Which.Message;
        message.Should().StartWith("inline.csv: line 3, column 'marker': '1e39' is beyond the range of a 32-bit float");
        message.Should().NotContain("\n");
    }

    private static (int Total, int Dropped, Dictionary<string, int> PerColumn) CountIndependently(string path)
    {
        var limits = new Dictionary<string, (double Min, double Max)>
        {
            ["age"] = (0, 125),
            ["height"] = (20, 275),
            ["weight"] = (0.2, 650),
            ["tot_chole"] = (20, 2000),
            ["HDL_chole"] = (1, 300),
            ["triglyceride"] = (5, 30000),
            ["LDL_chole"] = (10, 2000),
        };
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        var perColumn = limits.Keys.ToDictionary(k => k, _ => 0);
        var dropped = 0;
        foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
        {
            var fields = line.Split(',');
            var bad = false;
            foreach (var (column, (min, max)) in limits)
            {
                var value = double.Parse(fields[Array.IndexOf(header, column)], CultureInfo.InvariantCulture);
                if (value < min || value > max) { perColumn[column]++; bad = true; }
            }
            if (fields[Array.IndexOf(header, "sex")] is not ("Male" or "Female")) bad = true;
            if (bad) dropped++;
        }
        return (lines.Skip(1).Count(l => l.Length > 0), dropped, perColumn);
    }

    [Theory]
    [InlineData("a,b,y\n1,2,3\n4,5,6,7\n7,8,9\n", 3, "number of fields")]
    [InlineData("a,b,y\n1,2,3\n\"4,5,6\n7,8,9\n10,11,12\n", 3, "quote")]
    public void A_broken_row_is_rejected_with_the_file_and_its_line(string csv, int line, string problem)
    {
        var load = () => CsvTabularLoader.Load(new StringReader(csv), new ColumnMapping(["a", "b"], "y"), "broken.csv");
        var message = load.Should().Throw<DataFormatException>().Which.Message;
        message.Should().StartWith("broken.csv: ").And.Contain($"line {line}:").And.Contain(problem).And.NotContain("\n");
    }
}
