using System.Text;
using BenchmarkDotNet.Attributes;
using PriceDaemon.Sockets;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>Parsing client messages: rare next to ticks, but a subscribe with 50 keys is the campus page's opening message.</summary>
[MemoryDiagnoser]
public class ClientMessageParsingBenchmarks
{
    private readonly List<string> _keys = new(100);
    private byte[] _subscribeOne = [];
    private byte[] _subscribeFifty = [];
    private byte[] _malformed = [];

    [GlobalSetup]
    public void Setup()
    {
        _subscribeOne = Encoding.UTF8.GetBytes("""{"action":"subscribe","instruments":["NSE_EQ|INE002A01018"]}""");
        var fifty = string.Join(",", Enumerable.Range(1, 50).Select(i => $"\"NSE_EQ|SYN{i:D7}\""));
        _subscribeFifty = Encoding.UTF8.GetBytes($$"""{"action":"subscribe","instruments":[{{fifty}}],"client":"campus-board"}""");
        _malformed = Encoding.UTF8.GetBytes("""{"action":"subscribe","instruments":["NSE_EQ|INE002A01018" """);
    }

    [Benchmark]
    public int Parse_SubscribeOne() => Parse(_subscribeOne);

    [Benchmark]
    public int Parse_SubscribeFifty() => Parse(_subscribeFifty);

    [Benchmark]
    public int Parse_Malformed() => Parse(_malformed);

    private int Parse(byte[] message)
    {
        var error = ClientMessageParser.Parse(message, out _, _keys);
        return error is null ? _keys.Count : -1;
    }
}
