using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using PriceDaemon.Security;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary>
/// Kestrel connection middleware for the common case: a connection whose first request is a plain HTTP/1.1
/// WebSocket handshake for <c>/api/ws/prices</c>. It answers the handshake itself and runs the session
/// straight on the connection's pipes, so an open price socket does not keep an HTTP request alive under it
/// (Kestrel's request state, headers, HttpContext and body streams are ~6 KiB per connection, a third of an
/// idle socket's memory). Everything else (other paths, TLS, HTTP/2, a handshake after other requests on a
/// kept-alive connection, any request this parser does not fully accept) goes on to Kestrel untouched and
/// reaches the same endpoint through <see cref="PriceSocketEndpoint.HandleAsync"/>. The admission checks are
/// the same code on both paths: they read a <see cref="DefaultHttpContext"/> built from the handshake.
/// </summary>
internal sealed class DirectUpgrade
{
    /// <summary>A request head longer than this is left to Kestrel (its own limit is 32 KiB).</summary>
    private const int MaxHeadBytes = 16 * 1024;

    /// <summary>Kestrel answers a request with more header lines than this with 431; this path leaves it to Kestrel.</summary>
    private const int MaxHeaders = 100;

    private static readonly byte[] Prefix = Encoding.ASCII.GetBytes("GET " + PriceSocketEndpoint.Path);

    private readonly ConnectionDelegate _next;
    private readonly Func<IServiceProvider> _services;
    private Parts? _parts;

    /// <param name="next">Kestrel's own handling of the connection.</param>
    /// <param name="services">The application's services; known once the server starts.</param>
    /// <param name="enabled">False where this path must stay out of the way (see <see cref="AppliesTo"/>).</param>
    public DirectUpgrade(ConnectionDelegate next, Func<IServiceProvider> services, bool enabled)
    {
        _next = next;
        _services = services;
        Enabled = enabled;
    }

    public bool Enabled { get; }

    /// <param name="Stopping">The drain's end (<see cref="SessionRegistry.Closed"/>): a handshake still arriving then is cut.</param>
    private sealed record Parts(
        bool DirectSends, SessionRegistry Registry, SessionServices Services, ConnectionGate Gate, KestrelServerLimits Limits, CancellationToken Stopping);

    /// <summary>
    /// Whether an endpoint gets this path: only one that speaks HTTP/1.1, and only while no configured endpoint
    /// terminates TLS. Kestrel applies endpoint defaults, where this middleware is installed, before it adds TLS
    /// to an https endpoint, so the middleware would run ahead of TLS and must never answer the raw bytes of
    /// such a port; Kestrel does not say which endpoint will get TLS, but the configured URLs do (the scheme is
    /// the operator's own statement). A daemon behind a TLS-terminating proxy (the shipped nginx config) keeps
    /// the path; one that terminates TLS itself serves every socket through Kestrel's endpoint.
    /// </summary>
    public static bool AppliesTo(HttpProtocols protocols, IEnumerable<string> configuredUrls) =>
        (protocols & HttpProtocols.Http1) != 0
        && !configuredUrls.Any(static url => url.StartsWith(Uri.UriSchemeHttps + "://", StringComparison.OrdinalIgnoreCase));

    /// <remarks>
    /// Not an async method: what Kestrel awaits for the socket's life is the session's own task, reached through one
    /// small unwrapping promise, rather than this method's state machine with the handshake's result in it (~0.14 KiB
    /// of every idle socket).
    /// </remarks>
    public Task OnConnectionAsync(ConnectionContext connection) => Enabled ? AcceptAsync(connection).Unwrap() : _next(connection);

    /// <summary>The handshake, then what runs the connection from there: the session, Kestrel's own handling, or nothing.</summary>
    private async Task<Task> AcceptAsync(ConnectionContext connection)
    {
        // The handshake runs in its own method, so its request, headers and HttpContext are garbage once it
        // is answered instead of living as long as the socket in this method's state.
        var parts = _parts ??= CreateParts(_services());
        Handshake handshake;
        try
        {
            handshake = await HandshakeAsync(connection, parts).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConnectionAbortedException
            || (ex is OperationCanceledException && connection.ConnectionClosed.IsCancellationRequested))
        {
            // Reset or aborted mid-handshake: nothing to answer, nothing worth an error in the log.
            return Task.CompletedTask;
        }

        if (handshake.PassOn)
        {
            // Outside the catch above: what Kestrel's own handling of the connection throws is Kestrel's to log.
            return _next(connection);
        }

        if (handshake.Accepted is var (socket, sender, client))
        {
            Interlocked.Increment(ref parts.Services.Metrics.HandshakesDirect);
            return PriceSocketEndpoint.RunSessionAsync(socket, sender, parts.Registry, parts.Services, parts.Gate, client);
        }

        return Task.CompletedTask;
    }

    private static Parts CreateParts(IServiceProvider services) => new(
        services.GetRequiredService<IOptions<TransportOptions>>().Value.DirectSocketSends,
        services.GetRequiredService<SessionRegistry>(),
        services.GetRequiredService<SessionServices>(),
        services.GetRequiredService<ConnectionGate>(),
        services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits,
        services.GetRequiredService<SessionRegistry>().Closed);

    /// <summary>What became of a connection's first bytes: an accepted socket, Kestrel's to handle, or answered (refused, cut).</summary>
    private readonly record struct Handshake(bool PassOn, (IClientSocket Socket, SocketSender Sender, ClientIdentity Client)? Accepted);

    private async Task<Handshake> HandshakeAsync(ConnectionContext connection, Parts parts)
    {
        var (request, passOn) = await ReadHeadAsync(connection, parts.Limits, parts.Stopping).ConfigureAwait(false);
        if (request is null)
        {
            return new Handshake(passOn, null);
        }

        var transport = connection.Transport;
        var remoteEndPoint = connection.RemoteEndPoint as IPEndPoint;
        if (parts.Registry.IsStopping)
        {
            await RefuseAsync(transport.Output, StatusCodes.Status503ServiceUnavailable, null, null).ConfigureAwait(false);
            return default;
        }

        var context = request.ToHttpContext(connection, remoteEndPoint);
        var admission = await parts.Gate.AdmitAsync(context).ConfigureAwait(false);
        if (admission.Client is not { } client)
        {
            var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(
                new Http.ErrorBody(admission.Code, admission.Message), Http.DaemonJsonContext.Relaxed.ErrorBody);
            await RefuseAsync(transport.Output, admission.StatusCode, context.Response.Headers, body).ConfigureAwait(false);
            return default;
        }

        try
        {
            // On Kestrel's socket transport the session writes straight to the socket; the 101 goes the same
            // way (the sink's first write), so nothing of ours ever waits in Kestrel's output pipe behind it.
            var direct = parts.DirectSends ? connection.Features.Get<IConnectionSocketFeature>()?.Socket : null;
            IFrameSink sink = direct is null
                ? new PipeFrameSink(transport.Output.AsStream(leaveOpen: true), transport.Output.CancelPendingFlush)
                : new SocketFrameSink(direct);
            await sink.WriteAsync(SwitchingProtocols(request.Key, client.Subprotocol)).ConfigureAwait(false);

            var sender = new SocketSender(parts.Registry.NextId(), (object?)remoteEndPoint ?? ":", sink, connection.Abort, parts.Services);
            // Client frames are read straight from the connection's pipe, with no WebSocket over a stream: the pipes
            // and the socket are the connection's, and Kestrel closes them when it ends; an abort only has to end
            // what is pending on them. Pings come from the session sweep (SocketSender.KeepAlive.cs).
            return new Handshake(false, (new PipeClientSocket(transport.Input, sender, sink), sender, client));
        }
        catch
        {
            parts.Gate.Release(client);
            throw;
        }
    }

    /// <summary>
    /// Reads until the connection's first bytes are one of our handshakes (consumed, returned) or cannot be
    /// (nothing consumed, pass on: Kestrel reads the same bytes). Kestrel's own limits apply while waiting: its
    /// keep-alive timeout for the first byte, its request-headers timeout for the rest of a head; a connection
    /// that runs out of either, or whose head is still arriving when the daemon stops, is cut.
    /// </summary>
    /// <remarks>
    /// The wait is linked to the registry's <see cref="SessionRegistry.Closed"/> (the drain's end, just before Kestrel
    /// stops), not to the connection's own close request (<see cref="IConnectionLifetimeNotificationFeature"/>): a
    /// registration leaves a registration table and a node on the token's source for that source's life, and the
    /// connection's source lives as long as the socket (144 B of every idle one), while the one source keeps only as many
    /// nodes as handshakes ever waited at once. Not the host's stopping token either: it fires at SIGTERM, before the
    /// drain, and every new connection would be cut unanswered while the drain runs.
    /// </remarks>
    private static async Task<(UpgradeRequest? Request, bool PassOn)> ReadHeadAsync(ConnectionContext connection, KestrelServerLimits limits, CancellationToken stopping)
    {
        var input = connection.Transport.Input;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(limits.KeepAliveTimeout);
        var waited = false;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var verdict = UpgradeRequest.TryParse(buffer, out var request, out var headEnd);
                if (verdict == Verdict.NeedMore && !result.IsCompleted && !result.IsCanceled && buffer.Length < MaxHeadBytes)
                {
                    // The start matched; wait for the rest of the head, but not forever.
                    if (!waited)
                    {
                        timeout.CancelAfter(limits.RequestHeadersTimeout);
                        waited = true;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (verdict == Verdict.Ours)
                {
                    input.AdvanceTo(headEnd);
                    return (request, false);
                }

                if (!waited)
                {
                    // Nothing consumed and nothing examined: Kestrel reads the same bytes at once.
                    input.AdvanceTo(buffer.Start);
                    return (null, true);
                }

                // Examined cannot move back, so after waiting a read would wait for bytes the client may never
                // send. The read stays open instead: Kestrel's first read gets it, and its AdvanceTo ends it.
                connection.Transport = new ReplayedPipe(connection.Transport, result);
                return (null, true);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            connection.Abort(new ConnectionAbortedException(stopping.IsCancellationRequested ? "the server is stopping" : "request head timed out"));
            return (null, false);
        }
    }

    private static byte[] SwitchingProtocols(string key, string? subprotocol)
    {
        // RFC 6455 §4.2.2: the accept value is base64(SHA-1(key + the protocol's GUID)).
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
        SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"), hash);
        var head = new StringBuilder(160)
            .Append("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ")
            .Append(Convert.ToBase64String(hash)).Append("\r\n");
        if (subprotocol is not null)
        {
            head.Append("Sec-WebSocket-Protocol: ").Append(subprotocol).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(head.Append("\r\n").ToString());
    }

    private static async Task RefuseAsync(PipeWriter output, int status, IHeaderDictionary? headers, byte[]? body)
    {
        var head = new StringBuilder(256).Append("HTTP/1.1 ").Append(status).Append(' ').Append(ReasonPhrases.GetReasonPhrase(status)).Append("\r\n");
        if (body is not null)
        {
            head.Append("Content-Type: application/json; charset=utf-8\r\n");
        }

        foreach (var (name, values) in headers ?? (IEnumerable<KeyValuePair<string, StringValues>>)[])
        {
            foreach (var value in values)
            {
                head.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }

        head.Append("Content-Length: ").Append(body?.Length ?? 0).Append("\r\nConnection: close\r\n\r\n");
        await output.WriteAsync(Encoding.ASCII.GetBytes(head.ToString())).ConfigureAwait(false);
        if (body is not null)
        {
            await output.WriteAsync(body).ConfigureAwait(false);
        }
    }

    internal enum Verdict
    {
        NeedMore,
        NotOurs,
        Ours,
    }

    /// <summary>The head of a handshake this path takes: every check a well-formed client passes, nothing more.</summary>
    internal sealed class UpgradeRequest
    {
        private readonly IHeaderDictionary _headers;

        private UpgradeRequest(string target, IHeaderDictionary headers, string key)
        {
            var query = target.IndexOf('?', StringComparison.Ordinal);
            Path = query < 0 ? target : target[..query];
            Query = query < 0 ? "" : target[query..];
            _headers = headers;
            Key = key;
        }

        public string Path { get; }

        public string Query { get; }

        public string Key { get; }

        public IHeaderDictionary Headers => _headers;

        /// <summary>
        /// <see cref="Verdict.Ours"/> with the request and the position after its head; <see cref="Verdict.NeedMore"/>
        /// while what has arrived could still become one; <see cref="Verdict.NotOurs"/> for anything else.
        /// </summary>
        public static Verdict TryParse(ReadOnlySequence<byte> buffer, out UpgradeRequest? request, out SequencePosition headEnd)
        {
            request = null;
            headEnd = buffer.Start;
            var start = buffer.Length >= Prefix.Length ? buffer.Slice(0, Prefix.Length) : buffer;
            Span<byte> first = stackalloc byte[Prefix.Length];
            start.CopyTo(first);
            if (!first[..(int)start.Length].SequenceEqual(Prefix.AsSpan(0, (int)start.Length)))
            {
                return Verdict.NotOurs;
            }

            var reader = new SequenceReader<byte>(buffer);
            if (!reader.TryReadTo(out ReadOnlySequence<byte> head, "\r\n\r\n"u8))
            {
                return buffer.Length >= MaxHeadBytes ? Verdict.NotOurs : Verdict.NeedMore;
            }

            if (head.Length > MaxHeadBytes || Parse(Encoding.Latin1.GetString(head)) is not { } parsed)
            {
                return Verdict.NotOurs;
            }

            request = parsed;
            headEnd = reader.Position;
            return Verdict.Ours;
        }

        private static UpgradeRequest? Parse(string head)
        {
            var lines = head.Split("\r\n");
            var requestLine = lines[0].Split(' ');
            if (requestLine is not ["GET", var target, "HTTP/1.1"]
                || !(target.Length == PriceSocketEndpoint.Path.Length || target[PriceSocketEndpoint.Path.Length] == '?')
                || !IsVisibleAscii(target)
                || lines.Length - 1 > MaxHeaders)
            {
                return null;
            }

            IHeaderDictionary headers = new HeaderDictionary();
            foreach (var line in lines.AsSpan(1))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                // No name, a name that is not a token (whitespace before the colon, a folded line) or a value
                // with control or non-ASCII bytes: Kestrel answers those (400) or reads them its own way.
                if (colon <= 0 || !IsToken(line.AsSpan(0, colon)))
                {
                    return null;
                }

                var name = line[..colon];
                var value = line[(colon + 1)..].Trim(' ', '\t');
                if (!IsFieldValue(value))
                {
                    return null;
                }

                headers[name] = StringValues.Concat(headers[name], value);
            }

            // A body, or anything but a version 13 upgrade with a 16-byte key: Kestrel and the endpoint answer it.
            if (headers.ContainsKey("Content-Length") || headers.ContainsKey("Transfer-Encoding")
                || headers.Host is not { Count: 1 } host || !IsHost(host[0]!)
                || !HasToken(headers.Upgrade, "websocket") || !HasToken(headers.Connection, "upgrade")
                || headers.SecWebSocketVersion != "13"
                || headers.SecWebSocketKey is not { Count: 1 } keys || !IsKey(keys[0]!))
            {
                return null;
            }

            return new UpgradeRequest(target, headers, keys[0]!);
        }

        private static bool HasToken(StringValues values, string token)
        {
            foreach (var value in values)
            {
                foreach (var part in (value ?? "").Split(','))
                {
                    if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }
            }

            return false;
        }

        private static bool IsVisibleAscii(ReadOnlySpan<char> text) => !text.IsEmpty && !text.ContainsAnyExceptInRange('!', '~');

        // Visible ASCII, space and tab: no control bytes, nothing Kestrel would decode its own way.
        private static bool IsFieldValue(ReadOnlySpan<char> text) => !text.ContainsAnyExcept(FieldChars);

        // RFC 9110 §5.6.2: tchar.
        private static bool IsToken(ReadOnlySpan<char> name) => !name.ContainsAnyExcept(TokenChars);

        private static bool IsHost(string host) => host.Length > 0 && !host.AsSpan().ContainsAnyExcept(HostChars);

        private static readonly System.Buffers.SearchValues<char> TokenChars =
            System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

        private static readonly System.Buffers.SearchValues<char> FieldChars =
            System.Buffers.SearchValues.Create("\t " + string.Concat(Enumerable.Range('!', '~' - '!' + 1).Select(static c => (char)c)));

        private static readonly System.Buffers.SearchValues<char> HostChars =
            System.Buffers.SearchValues.Create("-.:[]_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

        private static bool IsKey(string key)
        {
            if (key.Length != 24)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[24];
            return Convert.TryFromBase64String(key, bytes, out var written) && written == 16;
        }

        /// <summary>The handshake as an <see cref="HttpContext"/>, for the admission checks; not kept afterwards.</summary>
        public HttpContext ToHttpContext(ConnectionContext connection, IPEndPoint? remote)
        {
            var features = new FeatureCollection();
            features.Set<IHttpRequestFeature>(new HttpRequestFeature
            {
                Method = HttpMethods.Get,
                Protocol = "HTTP/1.1",
                Scheme = "http",
                Path = Path,
                QueryString = Query,
                Headers = _headers,
            });
            features.Set<IHttpResponseFeature>(new HttpResponseFeature());
            features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
            var local = connection.LocalEndPoint as IPEndPoint;
            features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
            {
                ConnectionId = connection.ConnectionId,
                RemoteIpAddress = remote?.Address,
                RemotePort = remote?.Port ?? 0,
                LocalIpAddress = local?.Address,
                LocalPort = local?.Port ?? 0,
            });
            return new DefaultHttpContext(features);
        }
    }

    /// <summary>The connection's pipes, with a reader whose first read is one already made and not yet advanced.</summary>
    private sealed class ReplayedPipe(IDuplexPipe inner, ReadResult pending) : IDuplexPipe
    {
        public PipeReader Input { get; } = new Reader(inner.Input, pending);

        public PipeWriter Output => inner.Output;

        private sealed class Reader(PipeReader inner, ReadResult pending) : PipeReader
        {
            private bool _replayed;

            public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
            {
                if (!_replayed)
                {
                    _replayed = true;
                    return new ValueTask<ReadResult>(pending);
                }

                return inner.ReadAsync(cancellationToken);
            }

            public override bool TryRead(out ReadResult result)
            {
                if (!_replayed)
                {
                    _replayed = true;
                    result = pending;
                    return true;
                }

                return inner.TryRead(out result);
            }

            public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

            public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

            public override void CancelPendingRead() => inner.CancelPendingRead();

            public override void Complete(Exception? exception = null) => inner.Complete(exception);

            public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        }
    }
}
