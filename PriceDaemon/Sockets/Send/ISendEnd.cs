namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Told once when a <see cref="SocketSender"/>'s send side has ended (its close frame is out, or a write failed): the
/// session, which then gives the receive side its close timeout. A call instead of a task the session would await,
/// so an open socket holds neither the task nor the wait for it.
/// </summary>
internal interface ISendEnd
{
    void SendEnded();
}
