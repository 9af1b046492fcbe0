using PriceDaemon.Nats;
using PriceDaemon.Push;

namespace PriceDaemon.Tests.Nats;

/// <summary>The push buckets' keys and values, without a server.</summary>
public sealed class PushCodecTests
{
    [TestCase("leaderboard")]
    [TestCase("maint 1/a.b*c>d=e")]
    [TestCase("")]
    [TestCase("ünï 🚀")]
    public void Key_IsAValidKeyValueKey_AndNamesItsTextBack(string name)
    {
        var key = PushCodec.Key(name);
        Assert.That(key, Does.Match("^[-_=a-zA-Z0-9]+$"), "one token of a valid key");
        Assert.That(PushCodec.Name(key), Is.EqualTo(name));
    }

    [Test]
    public void NotificationKey_IsOneUserPrefixAndOneId_AndBoundedForAnyUser()
    {
        Assert.That(PushCodec.NotificationKey("google-oauth2|1234/5678", "trade-1"), Is.EqualTo("google-oauth2=7C1234=2F5678.trade-1"));
        // 256 four-byte characters escape to 3,072 bytes, past what a subject line holds: named by the hash instead.
        var longUser = string.Concat(Enumerable.Repeat("🚀", 128));
        var key = PushCodec.NotificationKey(longUser, new string('x', 128));
        Assert.That(key, Does.Match("^_h[0-9a-f]{64}\\.x{128}$"));
        Assert.That(PushCodec.NotificationKey(longUser + "!", "x"), Is.Not.EqualTo(PushCodec.NotificationKey(longUser, "x")));
        Assert.That(new[] { ("a.b", "c"), ("a", "b.c"), ("a=2Eb", "c") }.Select(p => PushCodec.NotificationKey(p.Item1, p.Item2)), Is.Unique);
    }

    [Test]
    public void Notification_RoundTrips_WithItsDataAsSent_AndItsAck()
    {
        var entry = new InboxEntry("alice", "trade-1", "trade", DateTimeOffset.FromUnixTimeMilliseconds(1_764_547_200_123), """{"qty":10,"s":"ü"}""");
        var read = PushCodec.ReadNotification(PushCodec.Notification(entry))!;
        Assert.That((read.User, read.Id, read.Kind, read.CreatedAt, read.Data, read.Acked), Is.EqualTo((entry.User, entry.Id, entry.Kind, entry.CreatedAt, entry.Data, false)));
        Assert.That(read.Live, Is.EqualTo(entry.Live), "the same frame on every edge");
        Assert.That(PushCodec.ReadNotification(PushCodec.Notification(entry.MarkAcked()))!.Acked, Is.True);
    }

    [TestCase("not json")]
    [TestCase("""{"u":"alice"}""")]
    [TestCase("""{"u":1,"i":"x","k":"trade","c":0,"a":false,"d":{}}""")]
    public void Notification_ThatDoesNotRead_IsNull_NotAnException(string value)
    {
        Assert.That(PushCodec.ReadNotification(System.Text.Encoding.UTF8.GetBytes(value)), Is.Null);
    }

    [Test]
    public void Announcement_RoundTrips_AndAnUnknownLevelDoesNotRead()
    {
        var expires = DateTimeOffset.FromUnixTimeMilliseconds(1_764_590_400_000);
        var value = PushCodec.Announcement(new Announcement("maint-1", "warning", "Maintenance at 18:00", expires, []));
        Assert.That(PushCodec.ReadAnnouncement(value), Is.EqualTo(("warning", "Maintenance at 18:00", expires)));
        Assert.That(PushCodec.ReadAnnouncement("""{"level":"panic","message":"x","expires_at":0}"""u8.ToArray()), Is.Null);
    }
}
