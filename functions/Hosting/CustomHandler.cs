using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The Azure Functions custom-handler contract (REFERENCES.md): the host POSTs `/ProcessFeatures` with the queue message
/// JSON-encoded as a string in `Data.message` and the delivery in `Metadata`; we answer `{Outputs, Logs, ReturnValue}`.
/// A 2xx tells the host to delete the message; a non-2xx makes it retry and, after maxDequeueCount, poison it.
/// Rejected messages are poisoned here with their reason and answered 200, so they do not burn five retries.
/// </summary>
public static partial class CustomHandler
{
    /// <summary>Function name: the folder `ProcessFeatures/` with its function.json.</summary>
    public const string FunctionName = "ProcessFeatures";

    /// <summary>The queue trigger's binding name in function.json.</summary>
    public const string BindingName = "message";

    /// <summary>How long an invocation waits for a run held by another instance before asking the host to retry.</summary>
    public static readonly TimeSpan LeaseWait = TimeSpan.FromSeconds(45);

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/" + FunctionName, InvokeAsync);
    }

    private static async Task<IResult> InvokeAsync(HttpContext context, IMessageProcessor processor, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(typeof(CustomHandler));
        var ct = context.RequestAborted;
        string messageText;
        long dequeueCount;
        try
        {
            var payload = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: ct).ConfigureAwait(false);
            (messageText, dequeueCount) = ReadInvocation(payload);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            return Respond(StatusCodes.Status400BadRequest, $"invocation payload is not the custom-handler shape: {e.Message}");
        }

        var deadline = DateTimeOffset.UtcNow + LeaseWait;
        try
        {
            while (true)
            {
                var outcome = await processor.ProcessAsync(messageText, dequeueCount, ct).ConfigureAwait(false);
                switch (outcome.Kind)
                {
                    case OutcomeKind.Completed:
                        return Respond(StatusCodes.Status200OK, outcome.Detail);
                    case OutcomeKind.Rejected:
                        await processor.PoisonAsync(messageText, dequeueCount, outcome.Detail, ct).ConfigureAwait(false);
                        LogRejected(logger, outcome.Detail);
                        return Respond(StatusCodes.Status200OK, "rejected and moved to features-poison: " + outcome.Detail);
                    case OutcomeKind.Deferred when DateTimeOffset.UtcNow < deadline:
                        await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                        continue;
                    default:
                        return Respond(StatusCodes.Status503ServiceUnavailable, "deferred: " + outcome.Detail);
                }
            }
        }
#pragma warning disable CA1031 // Any failure becomes a failed invocation the host retries; the process keeps serving.
        catch (Exception e) when (!ct.IsCancellationRequested)
#pragma warning restore CA1031
        {
            LogFailed(logger, e.GetType().Name, e.Message);
            return Respond(StatusCodes.Status500InternalServerError, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Extracts the message text and dequeue count from the host's invocation payload.</summary>
    public static (string MessageText, long DequeueCount) ReadInvocation(JsonNode? payload)
    {
        var data = payload?["Data"] as JsonObject ?? throw new InvalidDataException("missing object 'Data'");
        var node = data[BindingName] ?? throw new InvalidDataException($"missing 'Data.{BindingName}'");
        string text;
        if (node is JsonValue value && value.TryGetValue<string>(out var s))
        {
            text = s;
            // The host JSON-encodes the message text; a JSON message may arrive encoded once more.
            if (text.Length > 1 && text[0] == '"')
            {
                text = JsonSerializer.Deserialize<string>(text) ?? throw new InvalidDataException("message is JSON null");
            }
        }
        else
        {
            text = node.ToJsonString();
        }
        long dequeueCount = 1;
        var count = payload!["Metadata"]?["DequeueCount"];
        if (count is JsonValue cv)
        {
            if (cv.TryGetValue<long>(out var n)) dequeueCount = n;
            else if (cv.TryGetValue<string>(out var ns) && long.TryParse(ns, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed)) dequeueCount = parsed;
        }
        return (text, dequeueCount);
    }

    private static IResult Respond(int status, string log) =>
        Results.Json(new InvocationResponse(new Dictionary<string, object?>(), [log], null), HostJson, statusCode: status);

    // The host reads Outputs/Logs/ReturnValue exactly as named: no camel-casing.
    private static readonly JsonSerializerOptions HostJson = new() { PropertyNamingPolicy = null };

    private sealed record InvocationResponse(Dictionary<string, object?> Outputs, string[] Logs, object? ReturnValue);

    [LoggerMessage(Level = LogLevel.Warning, Message = "custom handler: message rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "custom handler: invocation failed ({Type}: {Reason}); the host will retry")]
    private static partial void LogFailed(ILogger logger, string type, string reason);
}
