using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SplitFunctions.Tests.Deployment;

/// <summary>One resource a simulated deployment creates (or names as `existing`), with every expression evaluated.</summary>
/// <param name="Deployment">The nested deployment it belongs to ("" for main.bicep itself, e.g. "storage", "hospital-access-hospital-a").</param>
/// <param name="Symbol">Its symbolic name in the compiled template (the Bicep resource name), or its index in a template without symbols.</param>
/// <param name="Body">The resource object with its expressions evaluated: known values are literals, values only Azure knows are
/// left as `[expression]` strings with everything known inside them evaluated (e.g. `[reference('/subscriptions/...').clientId]`).</param>
internal sealed record ArmResource(string Deployment, string Symbol, string Type, string Name, bool Existing, JsonObject Body)
{
    public JsonNode? this[string path] => Get(Body, path);

    /// <summary>A property by dotted path (`properties.template.scale.maxReplicas`); null when absent.</summary>
    public static JsonNode? Get(JsonNode? node, string path)
    {
        foreach (var part in path.Split('.'))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(part, out node)) return null;
        }
        return node;
    }

    public override string ToString() => $"{Type} '{Name}' ({(Deployment.Length == 0 ? "main" : Deployment)}::{Symbol})";
}

/// <summary>
/// A deployment of a compiled ARM template simulated into a fixed resource group: parameters, variables, conditions,
/// resource and property loops, modules (nested deployments with inline templates) and their outputs are evaluated the
/// way Azure Resource Manager evaluates them; what only Azure knows (reference(), listKeys()) stays an expression.
/// resourceGroup(), subscription(), uniqueString() and guid() give fixed stand-ins, so names and resource ids are
/// concrete. Just the functions the compiled templates use; an unknown one stays an expression, never a guess.
/// </summary>
internal sealed class ArmDeployment
{
    public const string SubscriptionId = "00000000-0000-0000-0000-000000000000";
    public const string ResourceGroupName = "rg-splitfn-test";
    public const string Location = "testregion";

    private readonly List<ArmResource> _resources = [];
    private readonly Dictionary<string, JsonNode?> _outputs;

    private ArmDeployment(JsonObject template, IReadOnlyDictionary<string, JsonNode?> parameters)
    {
        var scope = new Scope(this, "", template, parameters);
        scope.DeployResources();
        _outputs = scope.Outputs();
    }

    /// <summary>Deploys the template with the given parameter values (the others take their defaults).</summary>
    public static ArmDeployment Of(JsonObject template, IReadOnlyDictionary<string, JsonNode?> parameters) => new(template, parameters);

    /// <summary>Every resource, nested deployments included (and the deployments themselves), in template order.</summary>
    public IReadOnlyList<ArmResource> Resources => _resources;

    public IReadOnlyDictionary<string, JsonNode?> Outputs => _outputs;

    /// <summary>The resources of a type that the deployment creates (not `existing` ones).</summary>
    public IReadOnlyList<ArmResource> Created(string type) =>
        _resources.Where(r => !r.Existing && string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase)).ToList();

    /// <summary>The one created resource of a type; fails when there is none or several.</summary>
    public ArmResource Single(string type)
    {
        var found = Created(type);
        found.Should().ContainSingle($"the deployment should create exactly one {type}");
        return found[0];
    }

    /// <summary>The resource id Azure gives a resource of this type and name (slash-separated for child resources) in the test group.</summary>
    public static string ResourceId(string type, string name)
    {
        var types = type.Split('/');
        var names = name.Split('/');
        if (names.Length != types.Length - 1) throw new ArgumentException($"{type} '{name}': a name part per type segment expected");
        var sb = new StringBuilder($"/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroupName}/providers/{types[0]}");
        for (var i = 0; i < names.Length; i++) sb.Append('/').Append(types[i + 1]).Append('/').Append(names[i]);
        return sb.ToString();
    }

    /// <summary>An expression only Azure can evaluate, kept as text with everything known inside it evaluated.</summary>
    private sealed record Opaque(string Text);

    private sealed class Scope
    {
        private readonly ArmDeployment _deployment;
        private readonly string _name;
        private readonly JsonObject _template;
        private readonly Dictionary<string, object?> _parameters = new(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, object?> _variables = new(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, Scope> _modules = new(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, int> _loops = new(StringComparer.OrdinalIgnoreCase);
        private int? _copyIndex;

        public Scope(ArmDeployment deployment, string name, JsonObject template, IReadOnlyDictionary<string, JsonNode?> values)
        {
            _deployment = deployment;
            _name = name;
            _template = template;
            var declared = template["parameters"]?.AsObject() ?? [];
            foreach (var given in values.Keys.Where(k => !declared.ContainsKey(k)))
                throw new InvalidOperationException($"{Where}: parameter '{given}' is given but not declared");
            foreach (var (key, declaration) in declared)
            {
                if (values.TryGetValue(key, out var value)) _parameters[key] = value?.DeepClone();
                else if (declaration!.AsObject().TryGetPropertyValue("defaultValue", out var dflt)) _parameters[key] = Evaluate(dflt);
                else if (declaration["nullable"]?.GetValue<bool>() == true) _parameters[key] = null;
                else throw new InvalidOperationException($"{Where}: parameter '{key}' has no value and no default");
            }
        }

        private string Where => _name.Length == 0 ? "main" : $"deployment '{_name}'";

        private IEnumerable<(string Symbol, JsonObject Resource)> TemplateResources() =>
            _template["resources"] switch
            {
                JsonObject symbolic => symbolic.Select(p => (p.Key, p.Value!.AsObject())),
                JsonArray list => list.Select((r, i) => (i.ToString(CultureInfo.InvariantCulture), r!.AsObject())),
                _ => [],
            };

        public void DeployResources()
        {
            foreach (var (symbol, resource) in TemplateResources())
            {
                if (resource["copy"] is JsonObject copy)
                {
                    var count = ToLong(Evaluate(copy["count"]), "copy count");
                    for (var i = 0; i < count; i++)
                    {
                        _copyIndex = i;
                        _loops[copy["name"]!.GetValue<string>()] = i;
                        Deploy(symbol, resource);
                    }
                    _copyIndex = null;
                }
                else
                {
                    Deploy(symbol, resource);
                }
            }
        }

        private void Deploy(string symbol, JsonObject resource)
        {
            if (resource.TryGetPropertyValue("condition", out var condition) && Evaluate(condition) is JsonValue v && v.TryGetValue<bool>(out var on) && !on)
                return;
            var type = resource["type"]!.GetValue<string>();
            var body = new JsonObject();
            foreach (var (key, value) in resource)
            {
                if (key is "copy" or "dependsOn" or "condition") continue;
                if (key == "properties" && type == "Microsoft.Resources/deployments") continue;
                body[key] = ToNode(Evaluate(value));
            }
            var name = Text(body["name"]);
            var existing = resource["existing"]?.GetValue<bool>() == true;
            if (type == "Microsoft.Resources/deployments")
            {
                var module = Module(symbol, resource, name);
                body["properties"] = new JsonObject
                {
                    ["parameters"] = new JsonObject(module._parameters.Select(p
                    => KeyValuePair.Create(p.Key, ToNode(p.Value))))
                };
                _deployment._resources.Add(new ArmResource(_name, symbol, type, name, existing, body));
                module.DeployResources();
                return;
            }
            _deployment._resources.Add(new ArmResource(_name, symbol, type, name, existing, body));
        }

        /// <summary>The nested deployment's scope, its parameters evaluated here (once per loop iteration).</summary>
        private Scope Module(string symbol, JsonObject resource, string name)
        {
            var key = resource["copy"] is null ? symbol : $"{symbol}[{_copyIndex}]";
            if (_modules.TryGetValue(key, out var known)) return known;
            var properties = resource["properties"]!.AsObject();
            var template = properties["template"] as JsonObject ?? throw new InvalidOperationException($"{Where}: module '{symbol}' has no inline template");
            var values = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
            foreach (var (param, wrapper) in properties["parameters"]?.AsObject() ?? [])
            {
                // `{ "value": ... }`, or an expression giving one (e.g. if(cond, createObject('value', a), createObject('value', b))).
                values[param] = Evaluate(wrapper) switch
                {
                    JsonObject o => ToNode(o["value"]),
                    var other => ToNode(other is Opaque x ? new Opaque($"{x.Text}.value") : throw new InvalidOperationException($"{Where}: module '{symbol}' "
                        + $"parameter '{param}' gives no value")),
                };
            }
            var module = new Scope(_deployment, name, template, values);
            _modules[key] = module;
            return module;
        }

        private Dictionary<string, JsonNode?>? _outputs;

        public Dictionary<string, JsonNode?> Outputs() => _outputs ??= EvaluateOutputs();

        private Dictionary<string, JsonNode?> EvaluateOutputs()
        {
            var outputs = new Dictionary<string, JsonNode?>(StringComparer.OrdinalIgnoreCase);
            foreach (var (key, output) in _template["outputs"]?.AsObject() ?? [])
            {
                if (output!["copy"] is JsonObject copy)
                {
                    var count = ToLong(Evaluate(copy["count"]), "output copy count");
                    var items = new JsonArray();
                    for (var i = 0; i < count; i++)
                    {
                        _copyIndex = i;
                        items.Add(ToNode(Evaluate(copy["input"])));
                    }
                    _copyIndex = null;
                    outputs[key] = items;
                }
                else
                {
                    outputs[key] = ToNode(Evaluate(output["value"]));
                }
            }
            return outputs;
        }

        // ---- JSON and expressions ----

        private object? Evaluate(JsonNode? node)
        {
            switch (node)
            {
                case null:
                    return null;
                case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                    var s = value.GetValue<string>();
                    if (s.StartsWith("[[", StringComparison.Ordinal)) return JsonValue.Create(s[1..]);
                    if (s.StartsWith('[') && s.EndsWith(']')) return new Parser(this, s[1..^1]).ParseAll();
                    return JsonValue.Create(s);
                case JsonValue value:
                    return value.DeepClone();
                case JsonArray array:
                    return new JsonArray(array.Select(item => ToNode(Evaluate(item))).ToArray());
                case JsonObject obj:
                    var result = new JsonObject();
                    foreach (var (key, item) in obj)
                    {
                        if (key == "copy" && item is JsonArray loops)
                        {
                            foreach (var loop in loops)
                            {
                                var loopName = loop!["name"]!.GetValue<string>();
                                var count = ToLong(Evaluate(loop["count"]), "property copy count");
                                var items = new JsonArray();
                                for (var i = 0; i < count; i++)
                                {
                                    _loops[loopName] = i;
                                    items.Add(ToNode(Evaluate(loop["input"])));
                                }
                                result[loopName] = items;
                            }
                            continue;
                        }
                        result[Text(ToNode(Evaluate(JsonValue.Create(key))))] = ToNode(Evaluate(item));
                    }
                    return result;
                default:
                    throw new InvalidOperationException("unexpected JSON node");
            }
        }

        private object? Variable(string name)
        {
            if (_variables.TryGetValue(name, out var known)) return known;
            var variables = _template["variables"]?.AsObject() ?? throw new InvalidOperationException($"{Where}: no variables, '{name}' asked");
            object? value;
            if (variables.TryGetPropertyValue(name, out var raw))
            {
                value = Evaluate(raw);
            }
            else if (variables["copy"] is JsonArray loops && loops.FirstOrDefault(l => l!["name"]!.GetValue<string>() == name) is { } loop)
            {
                var items = new JsonArray();
                var count = ToLong(Evaluate(loop["count"]), "variable copy count");
                for (var i = 0; i < count; i++)
                {
                    _loops[name] = i;
                    items.Add(ToNode(Evaluate(loop["input"])));
                }
                value = items;
            }
            else
            {
                throw new InvalidOperationException($"{Where}: variable '{name}' is not declared");
            }
            _variables[name] = value;
            return value;
        }

        /// <summary>reference(): a module's outputs when it names a nested deployment here, otherwise left to Azure.</summary>
        private object? Reference(List<object?> args)
        {
            if (args.Count > 0 && args[0] is JsonValue v && v.TryGetValue<string>(out var target))
            {
                var symbolic = _template["resources"] as JsonObject;
                if (symbolic?[target] is JsonObject resource)
                {
                    var type = resource["type"]!.GetValue<string>();
                    if (type == "Microsoft.Resources/deployments" && resource["copy"] is null)
                    {
                        var name = Text(ToNode(Evaluate(resource["name"])));
                        var module = Module(target, resource, name);
                        var outputs = new JsonObject();
                        foreach (var (key, value) in module.Outputs()) outputs[key] = new JsonObject { ["value"] = value?.DeepClone() };
                        return new JsonObject { ["outputs"] = outputs };
                    }
                    var resourceName = Text(ToNode(Evaluate(resource["name"])));
                    return new Opaque($"reference('{ResourceId(type, resourceName)}')");
                }
            }
            return new Opaque($"reference({string.Join(", ", args.Select(Render))})");
        }

        public object? Call(string function, List<Func<object?>> lazyArgs)
        {
            switch (function.ToLowerInvariant())
            {
                case "if":
                    {
                        var condition = lazyArgs[0]();
                        if (condition is Opaque) return Unknown(function, lazyArgs.Select(a => a()).ToList());
                        return ToBool(condition) ? lazyArgs[1]() : lazyArgs[2]();
                    }
                case "and":
                case "or":
                    {
                        var values = lazyArgs.Select(a => a()).ToList();
                        if (values.Any(x => x is Opaque)) return Unknown(function, values);
                        var bools = values.Select(ToBool).ToList();
                        return JsonValue.Create(function.Equals("and", StringComparison.OrdinalIgnoreCase) ? bools.All(b => b) : bools.Any(b => b));
                    }
            }

            var args = lazyArgs.Select(a => a()).ToList();
            switch (function.ToLowerInvariant())
            {
                case "parameters":
                    var p = Str(args[0]);
                    return _parameters.TryGetValue(p, out var pv) ? Clone(pv) : throw new InvalidOperationException($"{Where}: parameter '{p}' is not "
                        + $"declared");
                case "variables":
                    return Clone(Variable(Str(args[0])));
                case "copyindex":
                    {
                        var offset = args.Count > 0 && args[^1] is JsonValue n && n.GetValueKind() == JsonValueKind.Number ? n.GetValue<long>() : 0;
                        int index;
                        if (args.Count > 0 && args[0] is JsonValue l && l.GetValueKind() == JsonValueKind.String) index = _loops[l.GetValue<string>()];
                        else index = _copyIndex ?? throw new InvalidOperationException($"{Where}: copyIndex() outside a loop");
                        return JsonValue.Create(index + offset);
                    }
                case "reference":
                    return Reference(args);
                case "resourcegroup":
                    return new JsonObject
                    {
                        ["id"] = $"/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroupName}",
                        ["name"] = ResourceGroupName,
                        ["location"] = Location,
                    };
                case "subscription":
                    return new JsonObject
                    {
                        ["id"] = $"/subscriptions/{SubscriptionId}",
                        ["subscriptionId"] = SubscriptionId,
                        ["tenantId"] = "11111111-1111-1111-1111-111111111111",
                    };
                // Containers hold values only Azure knows as they are.
                case "createarray":
                    return new JsonArray(args.Select(ToNode).ToArray());
                case "createobject":
                    {
                        var o = new JsonObject();
                        for (var i = 0; i + 1 < args.Count; i += 2) o[Str(args[i])] = ToNode(args[i + 1]);
                        return o;
                    }
            }

            if (args.Any(a => a is Opaque)) return Unknown(function, args);
            switch (function.ToLowerInvariant())
            {
                case "format":
                    return JsonValue.Create(Format(Str(args[0]), args.Skip(1).ToList()));
                case "concat":
                    return args.All(a => a is JsonArray)
                        ? new JsonArray(args.SelectMany(a => ((JsonArray)a!).Select(x => x?.DeepClone())).ToArray())
                        : JsonValue.Create(string.Concat(args.Select(StringOf)));
                case "string":
                    return JsonValue.Create(StringOf(args[0]));
                case "length":
                    return JsonValue.Create((long)(args[0] switch
                    {
                        JsonArray a => a.Count,
                        JsonObject o => o.Count,
                        var x => Str(x).Length,
                    }));
                case "empty":
                    return JsonValue.Create(args[0] switch
                    {
                        null => true,
                        JsonArray a => a.Count == 0,
                        JsonObject o => o.Count == 0,
                        var x => Str(x).Length == 0,
                    });
                case "equals":
                    return JsonValue.Create(JsonNode.DeepEquals(ToNode(args[0]), ToNode(args[1])));
                case "not":
                    return JsonValue.Create(!ToBool(args[0]));
                case "coalesce":
                    return Clone(args.FirstOrDefault(a => a is not null && !(a is JsonValue j && j.GetValueKind() == JsonValueKind.Null)));
                case "tryget":
                    {
                        var node = args[0] as JsonNode;
                        foreach (var key in args.Skip(1))
                            node = node is JsonObject o && o.TryGetPropertyValue(Str(key), out var next) ? next : null;
                        return Clone(node);
                    }
                case "contains":
                    return JsonValue.Create(args[0] switch
                    {
                        JsonArray a => a.Any(x => JsonNode.DeepEquals(x, ToNode(args[1]))),
                        JsonObject o => o.ContainsKey(Str(args[1])),
                        var x => Str(x).Contains(Str(args[1]), StringComparison.Ordinal),
                    });
                case "tolower":
                    return JsonValue.Create(Str(args[0]).ToLowerInvariant());
                case "toupper":
                    return JsonValue.Create(Str(args[0]).ToUpperInvariant());
                case "take":
                    {
                        var n = (int)ToLong(args[1], "take count");
                        return args[0] is JsonArray a
                            ? new JsonArray(a.Take(n).Select(x => x?.DeepClone()).ToArray())
                            : JsonValue.Create(new string(Str(args[0]).Take(n).ToArray()));
                    }
                case "union":
                    {
                        var o = new JsonObject();
                        foreach (var a in args.OfType<JsonObject>())
                            foreach (var (k, x) in a) o[k] = x?.DeepClone();
                        return o;
                    }
                case "bool":
                    return JsonValue.Create(ToBool(args[0]));
                case "int":
                    return JsonValue.Create(ToLong(args[0], "int()"));
                case "uniquestring":
                    // Azure's is a 13-character base-32 hash of the arguments; any fixed function of them will do here.
                    return JsonValue.Create(Hash(args).ToLowerInvariant()[..13]);
                case "guid":
                    return JsonValue.Create(new Guid(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("|", args.Select(StringOf))))[..16]).ToString());
                case "resourceid":
                    {
                        var type = Str(args[0]);
                        return JsonValue.Create(ResourceId(type, string.Join('/', args.Skip(1).Select(Str))));
                    }
                case "subscriptionresourceid":
                    {
                        var type = Str(args[0]);
                        var id = ResourceId(type, string.Join('/', args.Skip(1).Select(Str)));
                        return JsonValue.Create(id.Replace($"/resourceGroups/{ResourceGroupName}", "", StringComparison.Ordinal));
                    }
                default:
                    return Unknown(function, args);
            }
        }

        private static Opaque Unknown(string function, IEnumerable<object?> args) => new($"{function}({string.Join(", ", args.Select(Render))})");

        public static object? Member(object? target, string member) => target switch
        {
            Opaque o => new Opaque($"{o.Text}.{member}"),
            JsonObject obj when obj.TryGetPropertyValue(member, out var value) => Clone(value),
            JsonObject obj => throw new InvalidOperationException($"the object has no property '{member}' (it has "
                + $"{string.Join(", ", obj.Select(p => p.Key))})"),
            _ => throw new InvalidOperationException($"'.{member}' on {Render(target)}"),
        };

        public static object? Index(object? target, object? index) => (target, index) switch
        {
            (Opaque o, _) => new Opaque($"{o.Text}[{Render(index)}]"),
            (_, Opaque i) => new Opaque($"{Render(target)}[{i.Text}]"),
            (JsonArray a, JsonValue n) when n.GetValueKind() == JsonValueKind.Number => Clone(a[(int)n.GetValue<long>()]),
            (JsonObject o, JsonValue k) => Member(o, k.GetValue<string>()),
            _ => throw new InvalidOperationException($"cannot index {Render(target)} with {Render(index)}"),
        };

        private static string Format(string format, List<object?> args)
        {
            var sb = new StringBuilder();
            for (var i = 0; i < format.Length; i++)
            {
                var c = format[i];
                if (c == '{' && i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i++; continue; }
                if (c == '}' && i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i++; continue; }
                if (c != '{') { sb.Append(c); continue; }
                var end = format.IndexOf('}', i);
                var spec = format[(i + 1)..end];
                var n = int.Parse(spec.Split(':')[0], CultureInfo.InvariantCulture);
                sb.Append(StringOf(args[n]));
                i = end;
            }
            return sb.ToString();
        }

        private static string Hash(IEnumerable<object?> args) =>
            Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("|", args.Select(StringOf)))));
    }

    // ---- values ----

    private static object? Clone(object? value) => value is JsonNode n ? n.DeepClone() : value;

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        Opaque o => JsonValue.Create($"[{o.Text}]"),
        JsonNode n => n.Parent is null ? n : n.DeepClone(),
        _ => throw new InvalidOperationException("unexpected value"),
    };

    private static string Text(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String
        ? v.GetValue<string>() : node?.ToJsonString() ?? "";

    private static string Str(object? value) => value is JsonValue v && v.GetValueKind() == JsonValueKind.String
        ? v.GetValue<string>() : throw new InvalidOperationException($"a string expected, got {Render(value)}");

    private static long ToLong(object? value, string what) => value is JsonValue v && v.GetValueKind() == JsonValueKind.Number
        ? v.GetValue<long>() : value is JsonValue s && s.GetValueKind() == JsonValueKind.String ? long.Parse(s.GetValue<string>(), CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"{what}: a number expected, got {Render(value)}");

    private static bool ToBool(object? value) => value switch
    {
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => bool.Parse(v.GetValue<string>()),
        _ => throw new InvalidOperationException($"a bool expected, got {Render(value)}"),
    };

    /// <summary>ARM's string(): strings as they are, booleans as True/False, numbers invariant, the rest as JSON.</summary>
    private static string StringOf(object? value) => value switch
    {
        null => "",
        Opaque o => $"[{o.Text}]",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>() ? "True" : "False",
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        JsonNode n => n.ToJsonString(),
        _ => throw new InvalidOperationException("unexpected value"),
    };

    /// <summary>A value as ARM expression text, for expressions left to Azure.</summary>
    private static string Render(object? value) => value switch
    {
        null => "null()",
        Opaque o => o.Text,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => $"'{v.GetValue<string>().Replace("'", "''", StringComparison.Ordinal)}'",
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>() ? "true()" : "false()",
        JsonNode n => n.ToJsonString(),
        _ => "?",
    };

    /// <summary>Recursive descent over one ARM expression: literals, calls, `.member` and `[index]`.</summary>
    private sealed class Parser(Scope scope, string text)
    {
        private int _pos;

        public object? ParseAll()
        {
            var value = Expression();
            Skip();
            if (_pos != text.Length) throw Error("unexpected text");
            return value;
        }

        private object? Expression()
        {
            var value = Primary();
            while (true)
            {
                Skip();
                if (Peek('.'))
                {
                    _pos++;
                    value = Scope.Member(value, Identifier());
                }
                else if (Peek('['))
                {
                    _pos++;
                    var index = Expression();
                    Expect(']');
                    value = Scope.Index(value, index);
                }
                else
                {
                    return value;
                }
            }
        }

        private object? Primary()
        {
            Skip();
            if (Peek('\''))
            {
                var sb = new StringBuilder();
                _pos++;
                while (true)
                {
                    if (_pos >= text.Length) throw Error("unterminated string");
                    if (text[_pos] == '\'')
                    {
                        if (_pos + 1 < text.Length && text[_pos + 1] == '\'') { sb.Append('\''); _pos += 2; continue; }
                        _pos++;
                        return JsonValue.Create(sb.ToString());
                    }
                    sb.Append(text[_pos++]);
                }
            }
            if (_pos < text.Length && (char.IsDigit(text[_pos]) || text[_pos] == '-'))
            {
                var start = _pos++;
                while (_pos < text.Length && char.IsDigit(text[_pos])) _pos++;
                return JsonValue.Create(long.Parse(text[start.._pos], CultureInfo.InvariantCulture));
            }
            var name = Identifier();
            Skip();
            Expect('(');
            var args = new List<Func<object?>>();
            Skip();
            if (!Peek(')'))
            {
                while (true)
                {
                    // Arguments are parsed now (to find the end) but evaluated when the function asks: if() is lazy.
                    var start = _pos;
                    SkipArgument();
                    var argText = text[start.._pos];
                    args.Add(() => new Parser(scope, argText).ParseAll());
                    Skip();
                    if (Peek(',')) { _pos++; continue; }
                    break;
                }
            }
            Expect(')');
            return name switch
            {
                "true" when args.Count == 0 => JsonValue.Create(true),
                "false" when args.Count == 0 => JsonValue.Create(false),
                "null" when args.Count == 0 => null,
                _ => scope.Call(name, args),
            };
        }

        /// <summary>Moves past one argument: up to the next top-level ',' or ')', strings and brackets respected.</summary>
        private void SkipArgument()
        {
            var depth = 0;
            while (_pos < text.Length)
            {
                var c = text[_pos];
                if (c == '\'')
                {
                    for (_pos++; _pos < text.Length; _pos++)
                    {
                        if (text[_pos] != '\'') continue;
                        if (_pos + 1 < text.Length && text[_pos + 1] == '\'') { _pos++; continue; }
                        break;
                    }
                    _pos++;
                    continue;
                }
                if (c is '(' or '[') depth++;
                else if (c is ')' or ']')
                {
                    if (depth == 0) return;
                    depth--;
                }
                else if (c == ',' && depth == 0) return;
                _pos++;
            }
        }

        private string Identifier()
        {
            Skip();
            var start = _pos;
            while (_pos < text.Length && (char.IsLetterOrDigit(text[_pos]) || text[_pos] is '_' or '$')) _pos++;
            if (_pos == start) throw Error("identifier expected");
            return text[start.._pos];
        }

        private void Skip()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        private bool Peek(char c) => _pos < text.Length && text[_pos] == c;

        private void Expect(char c)
        {
            Skip();
            if (!Peek(c)) throw Error($"'{c}' expected");
            _pos++;
        }

        private InvalidOperationException Error(string what) => new($"ARM expression [{text}] at {_pos}: {what}");
    }
}
