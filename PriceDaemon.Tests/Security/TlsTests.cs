using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>wss:// from Kestrel's standard endpoint configuration, with a certificate made here.</summary>
public sealed class TlsTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-tls-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Wss_WithPemCertificateAndKey_ServesPrices()
    {
        using var certificate = SelfSigned();
        var certPath = Path.Combine(_folder, "daemon.crt");
        var keyPath = Path.Combine(_folder, "daemon.key");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Kestrel:Endpoints:Https:Url"] = "https://127.0.0.1:0",
            ["Kestrel:Endpoints:Https:Certificate:Path"] = certPath,
            ["Kestrel:Endpoints:Https:Certificate:KeyPath"] = keyPath,
        });
        await AssertServesOverTlsAsync(daemon, certificate);
    }

    [Test]
    public async Task Wss_WithPasswordProtectedPfx_ServesPrices()
    {
        using var certificate = SelfSigned();
        await using var daemon = await StartWithPfxAsync(certificate);
        await AssertServesOverTlsAsync(daemon, certificate);
    }

    [Test]
    public async Task Wss_OverHttp2_ServesPrices_ThroughTheSameSender()
    {
        using var certificate = SelfSigned();
        await using var daemon = await StartWithPfxAsync(certificate);
        await daemon.TickAsync(Reliance, 1451.5);

        // RFC 8441: the WebSocket is one stream of an HTTP/2 connection (extended CONNECT), negotiated by ALPN.
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
            cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
        using var invoker = new HttpMessageInvoker(handler);
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.HttpVersion = HttpVersion.Version20;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(new Uri($"wss://{daemon.BaseUri.Authority}/api/ws/prices"), invoker, timeout.Token);
        Assert.That(socket.HttpStatusCode, Is.EqualTo(HttpStatusCode.OK), "an HTTP/2 WebSocket is accepted with 200, not 101");

        Assert.That(await SubscribeProbe.TypesUntilPriceAsync(socket, Reliance, timeout.Token), Is.EqualTo(new[] { "status", "subscribed", "price_update" }));
        await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "", timeout.Token);
        Assert.That(socket.CloseStatus, Is.EqualTo(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure));
    }

    /// <summary>The daemon on an https endpoint whose certificate is a password-protected PFX file.</summary>
    private async Task<TestDaemon> StartWithPfxAsync(X509Certificate2 certificate)
    {
        var pfxPath = Path.Combine(_folder, "daemon.pfx");
        await File.WriteAllBytesAsync(pfxPath, certificate.Export(X509ContentType.Pfx, "s3cret"));
        return await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Kestrel:Endpoints:Https:Url"] = "https://127.0.0.1:0",
            ["Kestrel:Endpoints:Https:Certificate:Path"] = pfxPath,
            ["Kestrel:Endpoints:Https:Certificate:Password"] = "s3cret",
        });
    }

    private static async Task AssertServesOverTlsAsync(TestDaemon daemon, X509Certificate2 certificate)
    {
        Assert.That(daemon.BaseUri.Scheme, Is.EqualTo("https"));
        var wss = new Uri($"wss://{daemon.BaseUri.Authority}/api/ws/prices");
        await daemon.TickAsync(Reliance, 1451.5);
        X509Certificate? presented = null;
        await using var client = await SecureClient.ConnectAsync(wss, o => o.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            presented = cert;
            // Trust exactly the certificate this test made, nothing else.
            return cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
        });

        Assert.That(presented, Is.Not.Null);
        var ack = await client.SubscribeAckAsync(Reliance);
        Assert.That(SecureClient.Keys(ack, "instruments"), Is.EqualTo(new[] { Reliance }));
        await client.NextAsync("price_update");

        // And a client that does not trust it gets no connection at all.
        var (untrusting, _) = await SecureClient.TryConnectAsync(wss);
        Assert.That(untrusting, Is.Null);

        // Nor does a plaintext handshake sent to the TLS port: nothing answers it in the clear.
        using var plain = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await plain.ConnectAsync(daemon.BaseUri.Host, daemon.BaseUri.Port);
        await plain.SendAsync(System.Text.Encoding.ASCII.GetBytes(
            $"GET /api/ws/prices HTTP/1.1\r\nHost: {daemon.BaseUri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {Convert.ToBase64String(RandomNumberGenerator.GetBytes(16))}\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        var answer = new byte[512];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read;
        try
        {
            read = await plain.ReceiveAsync(answer, wait.Token);
        }
        catch (System.Net.Sockets.SocketException)
        {
            read = 0;
        }

        Assert.That(System.Text.Encoding.ASCII.GetString(answer, 0, read), Does.Not.Contain("101"));
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }
}
