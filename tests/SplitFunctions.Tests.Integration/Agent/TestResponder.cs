using System.Collections.Concurrent;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Plays the function's part over real Azurite for agent tests that need replies the function would not send (stray
/// rejections, a slow first reply, rejections on demand) and a record of what was applied. The step itself is the
/// function's: its server layers (<see cref="ServerModel"/>), its frame store (<see cref="ServerFrameStore"/>: open,
/// seal, upload) and its replies (<see cref="HospitalReplies"/>). It drains `features`, answers gradients / predictions /
/// accepted, and keeps a per-hospital watermark so a replayed sequence is answered from the stored reply and never
/// applied twice. No journal, lease or checkpoint: tests of those run the function itself (<see cref="DrainFunction"/>).
/// </summary>
internal sealed class TestResponder : IAsyncDisposable
{
    private readonly StorageConnection _storage;
    private readonly RunManifest _manifest;
    private readonly ServerModel _server;
    private readonly ServerFrameStore _frames;
    private readonly HospitalReplies _replies;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;

    public TestResponder(StorageConnection storage, LocalKeyStore keys, RunManifest manifest)
    {
        _storage = storage;
        _manifest = manifest;
        _server = new ServerModel(manifest, TorchSharp.torch.CPU);
        _frames = new ServerFrameStore(storage, keys);
        _replies = new HospitalReplies(_frames, NullLogger<HospitalReplies>.Instance);
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

    /// <summary>
    /// Before each train reply, a `rejected` reply answering exactly that message (its MAC is on `features` for anyone to
    /// read) but not signed with the hospital's key: what anyone with write access to the reply queue could forge.
    /// </summary>
    public bool ForgedRejections { get; set; }

    /// <summary>How long the first train message waits before it is answered (a slow or cold function).</summary>
    public TimeSpan FirstReplyDelay { get; set; }

    private int _trainSeen;

    /// <summary>When set, changes the gradient of a train message before it is sealed (a malicious server steering the client layer).</summary>
    public Action<long, float[]>? TamperGradient { get; set; }

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
        Task Reply(ReplyKind kind, (string Blob, long Length, string Sha256)? frame = null, double? loss = null) =>
            _replies.SendAsync(message, kind, frame?.Blob, frame?.Length ?? 0, frame?.Sha256, loss, null, ct);

        if (message.Kind == FrameKind.Train && Interlocked.Increment(ref _trainSeen) == 1
            && FirstReplyDelay > TimeSpan.Zero) await Task.Delay(FirstReplyDelay, ct);
        if (StrayRejections && message.Kind == FrameKind.Train)
        {
            // Signed like a real reply, so the agent gets as far as seeing it answers another message.
            var key = await _frames.Keys.GetKeyAsync(message.HospitalId, message.KeyId!, ct);
            await _frames.Replies(message.HospitalId).SendMessageAsync(MessageCodec.Serialize(MessageAuthentication.SignReply(new ReplyMessage
            {
                RunId = message.RunId,
                HospitalId = message.HospitalId,
                Sequence = message.Sequence,
                Kind = ReplyKind.Rejected,
                Reason = "blob does not exist",
                Answers = new string('e', MessageAuthentication.MacHexLength),
            }, key)), cancellationToken: ct);
        }
        if (ForgedRejections && message.Kind == FrameKind.Train)
        {
            await _frames.Replies(message.HospitalId).SendMessageAsync(MessageCodec.Serialize(new ReplyMessage
            {
                RunId = message.RunId,
                HospitalId = message.HospitalId,
                Sequence = message.Sequence,
                Kind = ReplyKind.Rejected,
                Reason = "forged: the run was stopped by the operator",
                Answers = message.Mac,
                Mac = new string('0', MessageAuthentication.MacHexLength),
            }), cancellationToken: ct);
        }
        if (RejectKind is { } reject && reject.Kind == message.Kind)
        {
            Interlocked.Increment(ref Rejections);
            await _replies.RejectAsync(message, reject.Reason, ct);
            return;
        }
        var replay = message.Sequence <= Watermarks.GetValueOrDefault(message.HospitalId, -1);
        if (message.Kind == FrameKind.Done)
        {
            await Reply(ReplyKind.Accepted);
            return;
        }
        if (message.Kind == FrameKind.Train && replay)
        {
            // Answer from the record: the stored gradient blob, never a second step.
            Interlocked.Increment(ref Replays);
            var stored = await _frames.TryReadWrittenAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, ct)
                ?? throw new InvalidOperationException($"{message.HospitalId}#{message.Sequence} was applied but its gradient blob is gone");
            await Reply(ReplyKind.Gradients, stored, 0.0);
            return;
        }
        var (tensors, _) = await _frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256,
            message.KeyId, ct, inline: message.Inline);
        var n = (int)tensors[0].Shape[0];
        switch (message.Kind)
        {
            case FrameKind.Train:
                {
                    var (loss, gradient) = _server.TrainStep(tensors[0].Values, tensors[1].Values, n);
                    TamperGradient?.Invoke(message.Sequence, gradient);
                    var written = await _frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, message.KeyId!,
                        _manifest.FeatureType, [(gradient, tensors[0].Shape)], ct);
                    Watermarks[message.HospitalId] = message.Sequence;
                    Applied.GetOrAdd(message.HospitalId, _ => []).Add(message.Sequence);
                    await Reply(ReplyKind.Gradients, (written.Blob, written.Length, written.Sha256), loss);
                    break;
                }
            case FrameKind.Evaluate:
                {
                    var predictions = _server.Predict(tensors[0].Values, n);
                    var written = await _frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Predictions, message.KeyId!,
                        ElementType.Float32, [(predictions, [n, 1])], ct);
                    await _replies.SendAsync(message, ReplyKind.Predictions, written.Blob, written.Length, written.Sha256, null, null, ct,
                        _manifest.Mode == TrainingMode.Temporal
                            ? new ModelVersion
                            {
                                Mode = _manifest.Mode,
                                Step = 0,
                                Epoch = _manifest.Epochs,
                                Epochs = _manifest.Epochs,
                                Checkpoint = 0,
                                Final = true,
                            }
                            : new ModelVersion { Mode = _manifest.Mode, Step = 0, Checkpoint = 0, Final = false });
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
        _server.Dispose();
        _cts.Dispose();
    }
}
