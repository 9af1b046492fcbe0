using PriceDaemon.Security;

namespace PriceDaemon.Sockets;

/// <summary>What a session gives itself back to when it ends: the registry it is in and the gate that counted its slots.</summary>
internal readonly record struct SessionOwner(SessionRegistry Registry, ConnectionGate Gate);
