using System.Text.RegularExpressions;
using System.Text;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// Just enough reading of Bicep source for the consistency tests (no Bicep compiler exists here): comments
/// removed, top-level variables, bracketed blocks, property values. Every lookup throws when the text it
/// expects is missing, so a renamed block fails the tests instead of passing them vacuously.
/// </summary>
internal sealed partial class BicepText
{
    private BicepText(string path, string code)
    {
        Path = path;
        Code = code;
    }

    public static string InfraFolder => System.IO.Path.Combine(RepoRoot.Path, "infra-bicep");

    /// <summary>Path relative to the repository root, for messages.</summary>
    public string Path { get; }

    /// <summary>The source without comments.</summary>
    public string Code { get; }

    public static BicepText Load(string relativeToInfra)
    {
        var full = System.IO.Path.Combine(InfraFolder, relativeToInfra);
        File.Exists(full).Should().BeTrue($"{relativeToInfra} should exist under infra-bicep/");
        return new BicepText("infra-bicep/" + relativeToInfra.Replace('\\', '/'), StripComments(File.ReadAllText(full)));
    }

    /// <summary>main.bicep, main.bicepparam and every module.</summary>
    public static IReadOnlyList<BicepText> LoadAll() =>
        Directory.EnumerateFiles(InfraFolder, "*.bicep*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".bicep", StringComparison.Ordinal) || f.EndsWith(".bicepparam", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => Load(System.IO.Path.GetRelativePath(InfraFolder, f)))
            .ToList();

    /// <summary>The value of a top-level `var name = 'literal'`.</summary>
    public string StringVariable(string name)
    {
        var m = Regex.Match(Code, $@"^var\s+{Regex.Escape(name)}\s*=\s*'([^']*)'\s*$", RegexOptions.Multiline);
        m.Success.Should().BeTrue($"{Path} should declare var {name} = '<literal>'");
        return m.Groups[1].Value;
    }

    /// <summary>The text between the brackets of a top-level `var name = [` or `var name = {` (multi-line, closed at column 0).</summary>
    public string Block(string declaration)
    {
        var start = Regex.Match(Code, $@"^{Regex.Escape(declaration)}\s*=\s*([\[{{])\s*$", RegexOptions.Multiline);
        start.Success.Should().BeTrue($"{Path} should contain a multi-line `{declaration} = [` or `{{` block");
        var close = start.Groups[1].Value == "[" ? "]" : "}";
        var end = Regex.Match(Code[start.Index..], $@"^{Regex.Escape(close)}\s*$", RegexOptions.Multiline);
        end.Success.Should().BeTrue($"{Path}: the block `{declaration}` should close with `{close}` at the start of a line");
        return Code.Substring(start.Index + start.Length, end.Index - start.Length);
    }

    /// <summary>Every `name: 'literal'` in a block, in order.</summary>
    public static IReadOnlyList<string> Names(string block) =>
        NameProperty().Matches(block).Select(m => m.Groups[1].Value).ToList();

    /// <summary>Every literal value of `property:` in the file (e.g. `maxReplicas: 1` gives "1").</summary>
    public IReadOnlyList<string> PropertyValues(string property) =>
        Regex.Matches(Code, $@"^\s*{Regex.Escape(property)}\s*:\s*(.+?)\s*$", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();

    /// <summary>The value of a `@allowed([...])` list directly above `param name`.</summary>
    public IReadOnlyList<string> AllowedValues(string param)
    {
        var m = Regex.Match(Code, $@"@allowed\(\[\s*((?:'[^']*'\s*)+)\]\)\s*param\s+{Regex.Escape(param)}\s", RegexOptions.Singleline);
        m.Success.Should().BeTrue($"{Path} should declare @allowed([...]) on param {param}");
        return Regex.Matches(m.Groups[1].Value, "'([^']*)'").Select(v => v.Groups[1].Value).ToList();
    }

    /// <summary>The default of `param name type = 'literal'`.</summary>
    public string StringParamDefault(string param)
    {
        var m = Regex.Match(Code, $@"^param\s+{Regex.Escape(param)}\s+string\s*=\s*'([^']*)'\s*$", RegexOptions.Multiline);
        m.Success.Should().BeTrue($"{Path} should give param {param} a literal default");
        return m.Groups[1].Value;
    }

    /// <summary>Removes `//` and `/* */` comments outside single-quoted strings (URLs in strings stay).</summary>
    public static string StripComments(string source)
    {
        var sb = new StringBuilder(source.Length);
        var inString = false;
        for (var i = 0; i < source.Length; i++)
        {
            var c = source[i];
            if (inString)
            {
                sb.Append(c);
                if (c == '\\' && i + 1 < source.Length) sb.Append(source[++i]);
                else if (c == '\'') inString = false;
                continue;
            }
            if (c == '\'')
            {
                inString = true;
                sb.Append(c);
            }
            else if (c == '/' && i + 1 < source.Length && source[i + 1] == '/')
            {
                while (i < source.Length && source[i] != '\n') i++;
                if (i < source.Length) sb.Append('\n');
            }
            else if (c == '/' && i + 1 < source.Length && source[i + 1] == '*')
            {
                var end = source.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 1;
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"\bname\s*:\s*'([^']*)'")]
    private static partial Regex NameProperty();
}
