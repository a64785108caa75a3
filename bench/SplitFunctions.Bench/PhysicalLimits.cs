using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Bench;

/// <summary>What this machine can do at best, measured in the same run as a figure: AES-256-GCM, TCP loopback, Azurite.</summary>
public sealed record MachineLimits(double AesEncryptMiBps, double AesDecryptMiBps, double LoopbackMiBps, double AzuriteUploadMiBps, double AzuriteDownloadMiBps)
{
    /// <summary>
    /// Floors for moving <paramref name="bytesPerStep"/> bytes of sealed frames per step (each byte sealed, uploaded,
    /// downloaded and opened once), in milliseconds: AES-GCM alone, the kernel's loopback alone, Azurite's clear transfers.
    /// </summary>
    public (double CryptoMs, double LoopbackMs, double AzuriteMs) Floors(double bytesPerStep)
    {
        var mib = bytesPerStep / (1 << 20);
        return (1000 * (mib / AesEncryptMiBps + mib / AesDecryptMiBps), 1000 * 2 * mib / LoopbackMiBps,
            1000 * (mib / AzuriteUploadMiBps + mib / AzuriteDownloadMiBps));
    }

    public JsonObject ToJson() => new()
    {
        ["aes_gcm_encrypt_mib_per_s"] = AesEncryptMiBps,
        ["aes_gcm_decrypt_mib_per_s"] = AesDecryptMiBps,
        ["tcp_loopback_mib_per_s"] = LoopbackMiBps,
        ["azurite_clear_upload_mib_per_s"] = AzuriteUploadMiBps,
        ["azurite_clear_download_mib_per_s"] = AzuriteDownloadMiBps,
    };

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"AES-256-GCM encrypt {AesEncryptMiBps:F0} / decrypt {AesDecryptMiBps:F0} MiB/s, TCP loopback {LoopbackMiBps:F0} MiB/s, Azurite clear upload "
            + $"{AzuriteUploadMiBps:F0} / download {AzuriteDownloadMiBps:F0} MiB/s");
}

/// <summary>Measures <see cref="MachineLimits"/>: the physical limits a benchmark's figures are set against.</summary>
public static class PhysicalLimits
{
    /// <summary>All limits, over buffers of <paramref name="mib"/> MiB (a frame's size), median of <paramref name="repetitions"/>.</summary>
    public static async Task<MachineLimits> MeasureAsync(StorageConnection storage, int mib, int repetitions)
    {
        var (encrypt, decrypt) = AesGcmMiBPerSecond(mib, repetitions);
        var loopback = await LoopbackMiBPerSecondAsync(mib, repetitions).ConfigureAwait(false);
        var (upload, download) = await AzuriteMiBPerSecondAsync(storage, mib, repetitions).ConfigureAwait(false);
        return new MachineLimits(encrypt, decrypt, loopback, upload, download);
    }

    /// <summary>Raw AES-256-GCM in place over one frame-sized buffer (the floor under seal and open): median of the repetitions.</summary>
    public static (double Encrypt, double Decrypt) AesGcmMiBPerSecond(int mib, int repetitions)
    {
        var data = RandomNumberGenerator.GetBytes(mib * 1024 * 1024);
        var nonce = new byte[FrameCipher.NonceSize];
        var tag = new byte[FrameCipher.TagSize];
        using var aes = new AesGcm(RandomNumberGenerator.GetBytes(FrameCipher.KeySize), FrameCipher.TagSize);
        var encrypt = new List<double>();
        var decrypt = new List<double>();
        for (var i = 0; i < repetitions + 2; i++)
        {
            var clock = Stopwatch.StartNew();
            aes.Encrypt(nonce, data, data, tag);
            var encrypted = clock.Elapsed.TotalSeconds;
            aes.Decrypt(nonce, data, tag, data);
            var decrypted = clock.Elapsed.TotalSeconds - encrypted;
            if (i < 2) continue; // warm-up
            encrypt.Add(mib / encrypted);
            decrypt.Add(mib / decrypted);
        }
        return (BenchStats.Median(encrypt), BenchStats.Median(decrypt));
    }

    /// <summary>Bytes through one TCP connection on 127.0.0.1 (the kernel's loopback, under any HTTP transfer here).</summary>
    public static async Task<double> LoopbackMiBPerSecondAsync(int mib, int repetitions)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port).ConfigureAwait(false);
        using var server = await listener.AcceptTcpClientAsync().ConfigureAwait(false);
        var send = new byte[mib * 1024 * 1024];
        var receive = new byte[1 << 20];
        var rates = new List<double>();
        await using var outbound = client.GetStream();
        await using var inbound = server.GetStream();
        for (var i = 0; i < repetitions + 1; i++)
        {
            var clock = Stopwatch.StartNew();
            var writing = outbound.WriteAsync(send).AsTask();
            var left = send.Length;
            while (left > 0) left -= await inbound.ReadAsync(receive.AsMemory(0, Math.Min(receive.Length, left))).ConfigureAwait(false);
            await writing.ConfigureAwait(false);
            if (i > 0) rates.Add(mib / clock.Elapsed.TotalSeconds); // the first one warms up
        }
        return BenchStats.Median(rates);
    }

    /// <summary>Upload and download of one frame-sized blob in clear on this Azurite (in memory, loopback): the storage floor.</summary>
    public static async Task<(double Upload, double Download)> AzuriteMiBPerSecondAsync(StorageConnection storage, int mib, int repetitions)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var container = storage.GetBlobContainerClient("limits");
        await container.CreateIfNotExistsAsync().ConfigureAwait(false);
        var blob = container.GetBlobClient("frame.bin");
        var data = BinaryData.FromBytes(RandomNumberGenerator.GetBytes(mib * 1024 * 1024));
        var up = new List<double>();
        var down = new List<double>();
        for (var i = 0; i < repetitions + 1; i++)
        {
            var clock = Stopwatch.StartNew();
            await blob.UploadReplacingAsync(data).ConfigureAwait(false); // one Put Blob, as frames go
            var uploaded = clock.Elapsed.TotalSeconds;
            _ = (await blob.DownloadContentAsync().ConfigureAwait(false)).Value.Content;
            var downloaded = clock.Elapsed.TotalSeconds - uploaded;
            if (i == 0) continue; // warm-up
            up.Add(mib / uploaded);
            down.Add(mib / downloaded);
        }
        await container.DeleteIfExistsAsync().ConfigureAwait(false);
        return (BenchStats.Median(up), BenchStats.Median(down));
    }
}
