using System.Collections.Concurrent;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Plays the function's part over real Azurite with the real engine (the function itself lives on main): drains
/// `features`, opens each frame, runs the server layers, answers gradients / predictions / accepted, and keeps a
/// per-hospital watermark so a replayed sequence is answered from the stored reply and never applied twice.
/// </summary>
internal sealed class TestResponder : IAsyncDisposable
{
    private readonly StorageConnection _storage;
    private readonly LocalKeyStore _keys;
    private readonly RunManifest _manifest;
    private readonly Network _server;
    private readonly Optimizer _optimizer;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;

    public TestResponder(StorageConnection storage, LocalKeyStore keys, RunManifest manifest)
    {
        _storage = storage;
        _keys = keys;
        _manifest = manifest;
        TorchRuntime.Seed(manifest.Seed);
        _server = manifest.ModelDefinition.BuildServer(manifest.CutShape);
        _optimizer = Optimizer.Create(_server, manifest.Optimizer);
        _loop = Task.Run(() => LoopAsync(_cts.Token));
    }

    /// <summary>Sequences applied (train) per hospital, in order.</summary>
    public ConcurrentDictionary<string, List<long>> Applied { get; } = new();

    public ConcurrentDictionary<string, long> Watermarks { get; } = new();

    public int Replays;

    public int Rejections;

    /// <summary>
    /// When set, each train message is first "answered" by a rejection of the same run, hospital and sequence that names
    /// another message's MAC (what a forged message answered by an older server would leave): the agent must ignore it.
    /// </summary>
    public bool StrayRejections { get; set; }

    /// <summary>How long the first train message waits before it is answered (a slow or cold function).</summary>
    public TimeSpan FirstReplyDelay { get; set; }

    private int _trainSeen;

    /// <summary>When set, every message of this kind is rejected with this reason.</summary>
    public (FrameKind Kind, string Reason)? RejectKind { get; set; }

    public Exception? Failure { get; private set; }

    private async Task LoopAsync(CancellationToken ct)
    {
        var queue = _storage.GetQueueClient(StorageNames.FeaturesQueue);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                QueueMessage[] messages = await queue.ReceiveMessagesAsync(8, TimeSpan.FromSeconds(30), ct);
                if (messages.Length == 0)
                {
                    await Task.Delay(50, ct);
                    continue;
                }
                foreach (var m in messages)
                {
                    var message = MessageCodec.ParseFrame(m.Body.ToString());
                    // Other tests' runs share the queue; they are not this responder's to answer.
                    if (message.RunId == _manifest.RunId) await HandleAsync(message, ct);
                    await queue.DeleteMessageAsync(m.MessageId, m.PopReceipt, ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Failure = e;
        }
    }

    private async Task HandleAsync(FrameMessage message, CancellationToken ct)
    {
        var container = _storage.GetBlobContainerClient(StorageNames.HospitalContainer(message.HospitalId));
        var replies = _storage.GetQueueClient(StorageNames.RepliesQueue(message.HospitalId));
        async Task Reply(ReplyKind kind, string? blob = null, SealedFrame? frame = null, double? loss = null, string? reason = null) =>
            await replies.SendMessageAsync(MessageCodec.Serialize(new ReplyMessage
            {
                RunId = message.RunId, HospitalId = message.HospitalId, Sequence = message.Sequence, Kind = kind,
                Blob = blob, Length = frame?.Length ?? 0, Sha256 = frame?.Sha256, KeyId = frame is null ? null : message.KeyId, Loss = loss, Reason = reason,
                Answers = message.Mac,
            }), cancellationToken: ct);

        if (message.Kind == FrameKind.Train && Interlocked.Increment(ref _trainSeen) == 1 && FirstReplyDelay > TimeSpan.Zero) await Task.Delay(FirstReplyDelay, ct);
        if (StrayRejections && message.Kind == FrameKind.Train)
        {
            await replies.SendMessageAsync(MessageCodec.Serialize(new ReplyMessage
            {
                RunId = message.RunId, HospitalId = message.HospitalId, Sequence = message.Sequence, Kind = ReplyKind.Rejected,
                Reason = "blob does not exist", Answers = new string('e', MessageAuthentication.MacHexLength),
            }), cancellationToken: ct);
        }
        if (RejectKind is { } reject && reject.Kind == message.Kind)
        {
            Interlocked.Increment(ref Rejections);
            await Reply(ReplyKind.Rejected, reason: reject.Reason);
            return;
        }
        var replay = message.Sequence <= Watermarks.GetValueOrDefault(message.HospitalId, -1);
        if (message.Kind == FrameKind.Done)
        {
            await Reply(ReplyKind.Accepted);
            return;
        }
        var key = _keys.GetKey(message.HospitalId, message.KeyId);
        if (message.Kind == FrameKind.Train && replay)
        {
            // Answer from the record: the stored gradient blob, never a second step.
            Interlocked.Increment(ref Replays);
            var name = StorageNames.FrameBlob(StorageNames.GradientsFolder, message.RunId, message.Sequence);
            var bytes = (await container.GetBlobClient(name).DownloadContentAsync(ct)).Value.Content.ToArray();
            await Reply(ReplyKind.Gradients, name, new SealedFrame(bytes, SecureFrameCodec.Digest(bytes)), 0.0);
            return;
        }
        var blob = (await container.GetBlobClient(message.Blob!).DownloadContentAsync(ct)).Value.Content.ToArray();
        var tensors = SecureFrameCodec.Open(key, message, blob);
        var n = (int)tensors[0].Shape[0];
        switch (message.Kind)
        {
            case FrameKind.Train:
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var x = TensorData.FromFloats(tensors[0].Values, tensors[0].Shape).requires_grad_();
                var y = TensorData.FromFloats(tensors[1].Values, [n, 1]);
                _optimizer.ZeroGrad();
                var p = _server.Forward(x, train: true);
                var loss = Loss.Compute(_manifest.Loss, p, y, backward: true);
                _optimizer.Step();
                var g = x.grad!;
                var name = StorageNames.FrameBlob(StorageNames.GradientsFolder, message.RunId, message.Sequence);
                var frame = SecureFrameCodec.Seal(key, new CipherContext(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, key.KeyId),
                    new FrameTensor(_manifest.FeatureType, tensors[0].Shape, g.ToFloats()));
                await container.GetBlobClient(name).UploadReplacingAsync(BinaryData.FromBytes(frame.Blob), ct);
                Watermarks[message.HospitalId] = message.Sequence;
                Applied.GetOrAdd(message.HospitalId, _ => []).Add(message.Sequence);
                await Reply(ReplyKind.Gradients, name, frame, loss);
                break;
            }
            case FrameKind.Evaluate:
            {
                using var x = TensorData.FromFloats(tensors[0].Values, tensors[0].Shape);
                using var p = _server.Forward(x, train: false);
                var name = StorageNames.FrameBlob(StorageNames.PredictionsFolder, message.RunId, message.Sequence);
                var frame = SecureFrameCodec.Seal(key, new CipherContext(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Predictions, key.KeyId),
                    new FrameTensor(ElementType.Float32, [n, 1], p.ToFloats()));
                await container.GetBlobClient(name).UploadReplacingAsync(BinaryData.FromBytes(frame.Blob), ct);
                await Reply(ReplyKind.Predictions, name, frame);
                break;
            }
            default:
                if (!replay)
                {
                    Watermarks[message.HospitalId] = message.Sequence;
                    Applied.GetOrAdd(message.HospitalId, _ => []).Add(message.Sequence);
                }
                await Reply(ReplyKind.Accepted);
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await _loop;
        _optimizer.Dispose();
        _server.Dispose();
        _cts.Dispose();
    }
}
