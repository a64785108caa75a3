using System.Globalization;
using System.Text;

namespace SplitFunctions.Core.CommandLine;

/// <summary>
/// Text from outside (a message field, a file's cell, an exception's message) made safe to print on one line: control
/// characters (terminal escapes, line breaks, carriage returns that overwrite a log line) become \uXXXX.
/// </summary>
public static class Printable
{
    /// <summary>Every control character of <paramref name="text"/> escaped; null becomes "".</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        if (!text.Any(char.IsControl)) return text;
        var escaped = new StringBuilder(text.Length + 16);
        foreach (var ch in text)
        {
            if (char.IsControl(ch)) escaped.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
            else escaped.Append(ch);
        }
        return escaped.ToString();
    }

    /// <summary>The first line of <paramref name="text"/>, escaped (a message's later lines are stack traces or details).</summary>
    public static string Line(string? text)
    {
        var first = (text ?? "").Split('\n')[0].TrimEnd('\r');
        return Escape(first);
    }
}
