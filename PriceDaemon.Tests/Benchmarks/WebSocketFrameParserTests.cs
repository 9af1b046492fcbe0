using System.Text;
using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class WebSocketFrameParserTests
{
    [Test]
    public void TryReadHeader_ReadsShortTextFrame()
    {
        byte[] frame = [0x81, 0x05, .. "hello"u8];

        Assert.That(WebSocketFrameParser.TryReadHeader(frame, out var header), Is.True);
        Assert.That(header, Is.EqualTo(new WebSocketFrameHeader(WebSocketOpcode.Text, true, 2, 5)));
    }

    [Test]
    public void TryReadHeader_ReadsSixteenBitLength()
    {
        byte[] frame = [0x81, 126, 0x01, 0x2C];

        Assert.That(WebSocketFrameParser.TryReadHeader(frame, out var header), Is.True);
        Assert.That((header.HeaderLength, header.PayloadLength, header.FrameLength), Is.EqualTo((4, 300, 304)));
    }

    [Test]
    public void TryReadHeader_ReadsSixtyFourBitLength()
    {
        byte[] frame = [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];

        Assert.That(WebSocketFrameParser.TryReadHeader(frame, out var header), Is.True);
        Assert.That((header.Opcode, header.HeaderLength, header.PayloadLength), Is.EqualTo((WebSocketOpcode.Binary, 10, 65_536)));
    }

    [TestCase(new byte[] { })]
    [TestCase(new byte[] { 0x81 })]
    [TestCase(new byte[] { 0x81, 126, 0x01 })]
    [TestCase(new byte[] { 0x81, 127, 0, 0, 0 })]
    public void TryReadHeader_ReturnsFalse_WhenHeaderIsIncomplete(byte[] partial)
    {
        Assert.That(WebSocketFrameParser.TryReadHeader(partial, out _), Is.False);
    }

    [Test]
    public void TryReadHeader_ReadsControlFrames_AndFin()
    {
        byte[] ping = [0x89, 0x00];
        byte[] firstFragment = [0x01, 0x01, (byte)'x'];

        WebSocketFrameParser.TryReadHeader(ping, out var pingHeader);
        WebSocketFrameParser.TryReadHeader(firstFragment, out var fragmentHeader);

        Assert.That((pingHeader.Opcode, pingHeader.Fin, fragmentHeader.Fin), Is.EqualTo((WebSocketOpcode.Ping, true, false)));
    }

    [Test]
    public void TryReadHeader_Throws_WhenServerFrameIsMasked()
    {
        byte[] masked = [0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0];
        Assert.That(() => WebSocketFrameParser.TryReadHeader(masked, out _), Throws.InstanceOf<InvalidDataException>());
    }

    [Test]
    public void TryReadHeader_Throws_WhenReservedBitsAreSet()
    {
        byte[] compressed = [0xC1, 0x00];
        Assert.That(() => WebSocketFrameParser.TryReadHeader(compressed, out _), Throws.InstanceOf<InvalidDataException>());
    }

    [TestCase(5)]
    [TestCase(300)]
    [TestCase(70_000)]
    public void WriteMaskedFrame_MasksPayload_SoThatUnmaskingRestoresIt(int length)
    {
        var payload = Encoding.ASCII.GetBytes(new string('a', length));
        var frame = new byte[WebSocketFrameParser.MaskedFrameLength(length)];

        var written = WebSocketFrameParser.WriteMaskedFrame(frame, WebSocketOpcode.Text, payload, 0x11223344);

        var headerLength = written - length;
        var mask = frame.AsSpan(headerLength - 4, 4).ToArray();
        var unmasked = frame.Skip(headerLength).Select((b, i) => (byte)(b ^ mask[i & 3])).ToArray();
        Assert.That((written, frame[0], frame[1] & 0x80, mask), Is.EqualTo((frame.Length, (byte)0x81, 0x80, new byte[] { 0x11, 0x22, 0x33, 0x44 })));
        Assert.That(unmasked, Is.EqualTo(payload));
    }

    [Test]
    public void WriteServerFrame_IsReadBackByTryReadHeader()
    {
        var payload = new byte[200];
        var frame = new byte[204];

        var written = WebSocketFrameParser.WriteServerFrame(frame, WebSocketOpcode.Text, payload);

        Assert.That(WebSocketFrameParser.TryReadHeader(frame, out var header), Is.True);
        Assert.That((written, header.FrameLength, header.Opcode), Is.EqualTo((204, 204, WebSocketOpcode.Text)));
    }

    [Test]
    public void ExpectedAccept_MatchesRfc6455Example()
    {
        Assert.That(WebSocketHandshake.ExpectedAccept("dGhlIHNhbXBsZSBub25jZQ=="), Is.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    [Test]
    public void Validate_AcceptsUpgrade_AndRejectsWrongAcceptOrStatus()
    {
        const string key = "dGhlIHNhbXBsZSBub25jZQ==";
        const string ok = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

        Assert.That(WebSocketHandshake.Validate(ok, key), Is.Null);
        Assert.That(WebSocketHandshake.Validate(ok.Replace("s3p", "xxx", StringComparison.Ordinal), key), Does.StartWith("wrong Sec-WebSocket-Accept"));
        Assert.That(WebSocketHandshake.Validate("HTTP/1.1 400 Bad Request", key), Is.EqualTo("upgrade refused: HTTP/1.1 400 Bad Request"));
    }
}
