using System.Net.WebSockets;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

public enum TokenLocation
{
    AuthorizationHeader,
    QueryString,
    Subprotocol,
}

public enum TokenCase
{
    Valid,
    Expired,
    NotYetValid,
    WrongKey,
    WrongAudience,
    WrongIssuer,
    AlgNone,
}

/// <summary>Auth:Mode=Jwt: tokens minted here, offered in each place a client can put one.</summary>
public sealed class AuthTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    private static readonly DateTimeOffset _start = new(2026, 1, 19, 9, 15, 0, TimeSpan.Zero);

    private TestDaemon _daemon = null!;
    private FakeTimeProvider _time = null!;

    [OneTimeSetUp]
    public async Task StartDaemon()
    {
        _time = new FakeTimeProvider(_start);
        _daemon = await TestDaemon.StartAsync(Jwts.Settings(), _time);
    }

    [OneTimeTearDown]
    public async Task StopDaemon() => await _daemon.DisposeAsync();

    [Test]
    public async Task Handshake_AcceptsOrRefusesWith401_ForEachTokenAndLocation([Values] TokenLocation location, [Values] TokenCase tokenCase)
    {
        var now = _time.GetUtcNow();
        var token = tokenCase switch
        {
            TokenCase.Valid => Jwts.Valid("alice", now),
            TokenCase.Expired => Jwts.Mint("alice", now.AddHours(-2), now.AddMinutes(-1)),
            TokenCase.NotYetValid => Jwts.Mint("alice", now.AddMinutes(5), now.AddHours(1)),
            TokenCase.WrongKey => Jwts.Valid("alice", now, Jwts.SecretCredentials("another-secret-also-at-least-32-bytes!")),
            TokenCase.WrongAudience => Jwts.Mint("alice", now.AddMinutes(-1), now.AddHours(1), audience: "another-service"),
            TokenCase.WrongIssuer => Jwts.Mint("alice", now.AddMinutes(-1), now.AddHours(1), issuer: "https://evil.test"),
            TokenCase.AlgNone => Jwts.Unsigned("alice", now),
            _ => throw new ArgumentOutOfRangeException(nameof(tokenCase)),
        };

        var (client, status) = await ConnectWithAsync(location, token);
        await using var owned = client;
        if (tokenCase == TokenCase.Valid)
        {
            Assert.That(status, Is.EqualTo(101));
            Assert.That(client!.Socket.SubProtocol, Is.EqualTo(location == TokenLocation.Subprotocol ? "bearer" : null));
            var ack = await client.SubscribeAckAsync(Reliance);
            Assert.That(SecureClient.Keys(ack, "instruments"), Is.EqualTo(new[] { Reliance }));
        }
        else
        {
            Assert.That(status, Is.EqualTo(401));
            Assert.That(client, Is.Null);
        }
    }

    [Test]
    public async Task Handshake_Refused401_WithoutToken()
    {
        var (client, status) = await SecureClient.TryConnectAsync(_daemon.WebSocketUri);
        Assert.That(client, Is.Null);
        Assert.That(status, Is.EqualTo(401));
    }

    [Test]
    public async Task Handshake_Refused401_WithGarbageToken()
    {
        var (client, status) = await ConnectWithAsync(TokenLocation.AuthorizationHeader, "not.a.jwt");
        Assert.That(client, Is.Null);
        Assert.That(status, Is.EqualTo(401));
    }

    [Test]
    public async Task Refusal_ExplainsWhy_WithoutEchoingTheToken()
    {
        var now = _time.GetUtcNow();
        var token = Jwts.Mint("alice", now.AddHours(-2), now.AddMinutes(-1));
        using var http = _daemon.Http();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/ws/prices");
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
        request.Headers.Add("Authorization", "Bearer " + token);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();

        Assert.That((int)response.StatusCode, Is.EqualTo(401));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
        Assert.That(body, Does.Contain("unauthorized").And.Contain("expired"));
        Assert.That(body, Does.Not.Contain(token));
    }

    [Test]
    public async Task Token_ExpiringWhileConnected_ClosesWith1008AtThatMoment()
    {
        var now = _time.GetUtcNow();
        var token = Jwts.Mint("bob", now.AddMinutes(-1), now.AddMinutes(10));
        await using var client = await SecureClient.ConnectAsync(_daemon.WebSocketUri, o => o.SetRequestHeader("Authorization", "Bearer " + token));
        await client.SubscribeAckAsync(Reliance);

        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        // Still served one second before exp: a change is answered.
        await client.UnsubscribeAsync(Reliance);
        await client.NextAsync("subscribed");
        Assert.That(client.Socket.State, Is.EqualTo(WebSocketState.Open));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(client.CloseDescription, Is.EqualTo("token expired"));
    }

    [TestCase("RS256")]
    [TestCase("ES256")]
    public async Task PublicKeyFromPem_AcceptsTokensSignedWithItsPrivateKey_AndNoOtherKey(string algorithm)
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-jwt-").FullName;
        try
        {
            var credentials = algorithm == "RS256" ? Jwts.Rs256(out var pem) : Jwts.Es256(out pem);
            var other = algorithm == "RS256" ? Jwts.Rs256(out _) : Jwts.Es256(out _);
            var path = Path.Combine(folder, "backend-public.pem");
            await File.WriteAllTextAsync(path, pem);
            var settings = Jwts.Settings(("Auth:Jwt:SigningKey", ""), ("Auth:Jwt:PublicKeyPath", path));
            await using var daemon = await TestDaemon.StartAsync(settings);
            var now = DateTimeOffset.UtcNow;

            var (good, goodStatus) = await ConnectWithAsync(TokenLocation.QueryString, Jwts.Valid("carol", now, credentials), daemon);
            await using var goodClient = good;
            Assert.That(goodStatus, Is.EqualTo(101));
            Assert.That(SecureClient.Keys(await good!.SubscribeAckAsync(Reliance), "instruments"), Is.EqualTo(new[] { Reliance }));

            var (_, otherKey) = await ConnectWithAsync(TokenLocation.QueryString, Jwts.Valid("carol", now, other), daemon);
            Assert.That(otherKey, Is.EqualTo(401));
            // HS256 "signed" with the public key's text: the classic algorithm-confusion attack.
            var confused = Jwts.Valid("carol", now, Jwts.SecretCredentials(pem));
            var (_, confusedStatus) = await ConnectWithAsync(TokenLocation.QueryString, confused, daemon);
            Assert.That(confusedStatus, Is.EqualTo(401));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase("Auth:Jwt:Issuer", "", "Auth:Jwt:Issuer: required")]
    [TestCase("Auth:Jwt:Audience", "", "Auth:Jwt:Audience: required")]
    [TestCase("Auth:Jwt:SigningKey", "too-short", "Auth:Jwt:SigningKey: must be at least 32 bytes (got 9)")]
    [TestCase("Auth:Jwt:PublicKeyPath", "/etc/hostname", "Auth:Jwt:SigningKey: set exactly one")]
    public void JwtMode_RefusesToStart_WithIncompleteSettings(string key, string value, string expected)
    {
        var failure = StartupChecks.Failure(Jwts.Settings((key, value)));
        Assert.That(failure, Does.Contain(expected));
        Assert.That(failure, Does.Not.Contain(Jwts.Secret).And.Not.Contain("too-short"));
    }

    [Test]
    public void JwtMode_RefusesToStart_WithUnreadablePublicKey()
    {
        var failure = StartupChecks.Failure(Jwts.Settings(("Auth:Jwt:SigningKey", ""), ("Auth:Jwt:PublicKeyPath", "/nonexistent/key.pem")));
        Assert.That(failure, Does.Contain("Auth:Jwt:PublicKeyPath: cannot read '/nonexistent/key.pem'"));
    }

    private Task<(SecureClient? Client, int Status)> ConnectWithAsync(TokenLocation location, string token, TestDaemon? daemon = null)
    {
        var uri = (daemon ?? _daemon).WebSocketUri;
        return location switch
        {
            TokenLocation.AuthorizationHeader => SecureClient.TryConnectAsync(uri, o => o.SetRequestHeader("Authorization", "Bearer " + token)),
            TokenLocation.QueryString => SecureClient.TryConnectAsync(new Uri(uri + "?token=" + Uri.EscapeDataString(token))),
            TokenLocation.Subprotocol => SecureClient.TryConnectAsync(uri, o =>
            {
                o.AddSubProtocol("bearer");
                o.AddSubProtocol(token);
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(location)),
        };
    }
}
