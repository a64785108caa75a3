using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class LocalKeyStoreTests
{
    [Fact]
    public void Created_keys_are_owner_only_current_and_rotate_by_id()
    {
        using var folder = new TempDirectory();
        var store = new LocalKeyStore(Path.Combine(folder.Path, "keys"));
        var first = store.CreateKey("st-marys");
        first.Key.Should().HaveCount(32);
        HospitalKey.IsValidKeyId(first.KeyId).Should().BeTrue();
        var path = store.GetKeyPath("st-marys", first.KeyId);
        Path.GetFileName(path).Should().Be($"st-marys.{first.KeyId}.key");
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(path).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.GetUnixFileMode(store.Directory).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        store.GetKey("st-marys").Key.Should().Equal(first.Key);

        var second = store.CreateKey("st-marys");
        second.KeyId.Should().NotBe(first.KeyId);
        store.GetCurrentKeyId("st-marys").Should().Be(second.KeyId);
        store.GetKey("st-marys").Key.Should().Equal(second.Key);
        store.GetKey("st-marys", first.KeyId).Key.Should().Equal(first.Key, "blobs sealed before the rotation still open");
        store.SetCurrentKeyId("st-marys", first.KeyId);
        store.GetKey("st-marys").KeyId.Should().Be(first.KeyId);
        first.ToString().Should().NotContain("Key =");
    }

    [Fact]
    public void A_key_file_readable_by_others_is_refused_with_the_chmod_to_run()
    {
        if (OperatingSystem.IsWindows()) return; // ACLs, not modes, protect keys there.
        using var folder = new TempDirectory();
        var store = new LocalKeyStore(folder.Path);
        var key = store.CreateKey("st-marys");
        var path = store.GetKeyPath("st-marys", key.KeyId);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var load = () => store.GetKey("st-marys", key.KeyId);
        load.Should().Throw<KeyStoreException>().WithMessage($"*mode 644*run `chmod 600 {path}`*");

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        store.GetKey("st-marys", key.KeyId).Key.Should().Equal(key.Key);
    }

    [Fact]
    public async Task Unknown_hospitals_and_key_ids_are_unknown_keys()
    {
        using var folder = new TempDirectory();
        var store = new LocalKeyStore(folder.Path);
        var none = async () => await store.GetKeyAsync("st-marys", null);
        (await none.Should().ThrowAsync<ProtocolException>()).Which.Rejection.Should().Be(ProtocolRejection.UnknownKey);
        store.CreateKey("st-marys");
        var wrongId = () => store.GetKey("st-marys", "k-missing");
        wrongId.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.UnknownKey).WithMessage("*'k-missing'*");
        var traversal = () => store.GetKey("../etc", null);
        traversal.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void A_damaged_key_file_says_to_restore_it()
    {
        using var folder = new TempDirectory();
        var store = new LocalKeyStore(folder.Path);
        var key = store.CreateKey("st-marys");
        File.WriteAllText(store.GetKeyPath("st-marys", key.KeyId), Convert.ToBase64String(new byte[16]));
        var load = () => store.GetKey("st-marys");
        load.Should().Throw<KeyStoreException>().WithMessage("*16 bytes, not 32*restore*");
    }

    [Fact]
    public void Imported_keys_open_what_the_other_side_sealed()
    {
        using var hospital = new TempDirectory();
        using var cloud = new TempDirectory();
        var key = new LocalKeyStore(hospital.Path).CreateKey("st-marys");
        new LocalKeyStore(cloud.Path).ImportKey(key.HospitalId, key.KeyId, key.Key);
        var context = new CipherContext("run-1", "st-marys", 0, PayloadKind.Features, key.KeyId);
        var sealedBlob = FrameCipher.Seal(key.Key, context, "hello"u8);
        FrameCipher.Open(new LocalKeyStore(cloud.Path).GetKey("st-marys", key.KeyId).Key, context, sealedBlob).Should().Equal("hello"u8.ToArray());
    }
}
