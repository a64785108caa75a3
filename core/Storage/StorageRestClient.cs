using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace SplitFunctions.Core.Storage;

/// <summary>What every blob and queue client shares: the pipeline, the service version and how failures are raised.</summary>
internal sealed class StorageRestClient(HttpPipeline pipeline, StorageClientOptions options)
{
    public HttpPipeline Pipeline { get; } = pipeline;

    public StorageClientOptions Options { get; } = options;

    public HttpMessage CreateMessage(RequestMethod method, Uri uri, params (string Name, string? Value)[] query)
    {
        var message = Pipeline.CreateMessage();
        var request = message.Request;
        request.Method = method;
        request.Uri.Reset(uri);
        foreach (var (name, value) in query)
        {
            if (value is not null) request.Uri.AppendQuery(name, value);
        }
        request.Headers.SetValue("x-ms-version", Options.ServiceVersion);
        return message;
    }

    /// <summary>Sends and returns the response when its status is one of <paramref name="expected"/>; throws <see cref="RequestFailedException"/> otherwise.</summary>
    public async ValueTask<Response> SendAsync(HttpMessage message, CancellationToken cancellationToken, params int[] expected)
    {
        await Pipeline.SendAsync(message, cancellationToken).ConfigureAwait(false);
        var response = message.Response;
        if (Array.IndexOf(expected, response.Status) < 0)
        {
            throw await StorageErrorParser.CreateExceptionAsync(response, cancellationToken).ConfigureAwait(false);
        }
        return response;
    }

    public static HttpPipeline BuildPipeline(StorageClientOptions options, HttpPipelinePolicy? perCall, HttpPipelinePolicy? perRetry) =>
        HttpPipelineBuilder.Build(
            options,
            perCall is null ? [] : [perCall],
            perRetry is null ? [] : [perRetry],
            new ResponseClassifier());

    public static Uri Append(Uri baseUri, string segment) =>
        new(baseUri.AbsoluteUri.TrimEnd('/') + "/" + segment);
}
