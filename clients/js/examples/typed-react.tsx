// A typed React app on '@pricedaemon/client/react' (checked by `tsc --noEmit`): every hook and type the
// React entry exports, as a page of the campus app would use them.
import { StrictMode, useEffect, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import {
  ConnectionStatus,
  createPriceHooks,
  getPriceSocket,
  PriceSocket,
  PriceSocketContext,
  PriceSocketProvider,
  useConnectionStatus,
  useFeedStatus,
  useLatency,
  usePrice,
  usePrices,
  usePriceSocket,
  usePriceWebSocket,
  useAnnouncements,
  useNotifications,
  useSlowConnection,
  useTopic,
  useDepth,
  useCandles,
  useAlerts,
  useVolumeAlerts,
  RequestError,
  type PriceHooks,
  type PriceSocketProviderProps,
  type UseAlertsResult,
  type UsePriceWebSocketResult,
  type UseVolumeAlertsOptions,
} from '@pricedaemon/client/react';
import * as React from 'react';
import type { AnnouncementFrame, CandleView, DepthData, LatencySample, Notification, Price, PriceAlert, SlowState, VolumeAlert } from '@pricedaemon/client';
import { createUsePriceWebSocket, type LegacyUsePriceWebSocketResult } from '@pricedaemon/client/use-price-websocket';

function Quote({ instrument }: { instrument: string }): ReactElement {
  const price: Price | undefined = usePrice(instrument);
  return <span data-stale={price?.stale ?? true}>{price?.last_price.toFixed(2) ?? '—'}</span>;
}

function Watchlist({ keys }: { keys: string[] }): ReactElement {
  const prices: Record<string, Price> = usePrices(keys);
  return <ul>{keys.map((key) => <li key={key}>{key}: {prices[key]?.last_price ?? '—'}</li>)}</ul>;
}

function Header(): ReactElement {
  const status = useConnectionStatus();
  const feed = useFeedStatus();
  const socket: PriceSocket = usePriceSocket();
  const slow: SlowState | null = useSlowConnection();
  const latency: LatencySample | null = useLatency();
  return (
    <header>
      {status === ConnectionStatus.connected ? (slow ? `Slow connection (every ${slow.intervalMs} ms)` : 'Live') : status} {feed?.message} {socket.subscriptions.length}
      {latency && ` ${latency.exchangeToDaemonMs ?? '–'} ms + ${latency.daemonToClientMs} ms`}
    </header>
  );
}

// The original guide's page, ported by changing its import.
function GuidePage({ keys }: { keys: string[] }): ReactElement {
  const { prices, connectionStatus, subscribe, unsubscribe }: UsePriceWebSocketResult = usePriceWebSocket();
  useEffect(() => {
    subscribe(keys);
    return () => unsubscribe(keys);
  }, [keys, subscribe, unsubscribe]);
  return <div>{connectionStatus} {Object.keys(prices).length}</div>;
}

// Pushes: the leaderboard topic, the banner of announcements, a toast per trade confirmation.
function Pushes(): ReactElement {
  const leaderboard = useTopic<{ top: string[] }>('leaderboard');
  const depth: DepthData | undefined = useDepth('NSE_EQ|INE002A01018');
  const announcements: AnnouncementFrame[] = useAnnouncements();
  useNotifications<{ qty: number }>((notification: Notification<{ qty: number }>) => {
    console.log(notification.kind, notification.data.qty, notification.replayed === true);
  });
  return <aside>{leaderboard?.top.join(', ')} {depth?.bids[0]?.[0]} {announcements.map((a) => <p key={a.id} className={a.level}>{a.message}</p>)}</aside>;
}

// A chart's data: the closed 1m bars and the forming one, live.
function Bars({ instrument }: { instrument: string }): ReactElement {
  const view: CandleView | undefined = useCandles(instrument, '1m', 200);
  return <span>{view?.bars.length ?? 0} bars, last close {view?.forming?.c ?? view?.bars.at(-1)?.c}</span>;
}
void Bars;

// The user's alerts, a bell that sets one, and the unusual volume of the shown instruments.
function Alerts({ instrument }: { instrument: string }): ReactElement {
  const { alerts, loaded, error, createAlert, deleteAlert }: UseAlertsResult = useAlerts();
  const options: UseVolumeAlertsOptions = { limit: 5 };
  const bursts: VolumeAlert[] = useVolumeAlerts([instrument], options);
  const bell = (): void => {
    createAlert({ instrument_key: instrument, condition: 'above', price: 2500, note: 'take profit' })
      .then((alert: PriceAlert) => console.log('set', alert.id))
      .catch((e: unknown) => console.log(e instanceof RequestError && e.code === 'alert_limit' ? 'delete one first' : e));
  };
  return (
    <section>
      {error && <p>{error.code}</p>}
      <button onClick={bell}>🔔</button>
      <ul>{loaded && alerts.map((a) => <li key={a.id} onClick={() => void deleteAlert(a.id)}>{a.condition} {a.price} {a.state} {a.fired_price}</li>)}</ul>
      <ol>{bursts.map((b) => <li key={b.timestamp}>{b.instrument_key} {b.ratio.toFixed(1)}×</li>)}</ol>
    </section>
  );
}

const hooks: PriceHooks = createPriceHooks(React);
const useLegacy: () => LegacyUsePriceWebSocketResult = createUsePriceWebSocket(React, { url: 'ws://127.0.0.1:8080/api/ws/prices' });
void hooks;
void useLegacy;
void PriceSocketContext;

const socket = getPriceSocket({ url: 'ws://127.0.0.1:8080/api/ws/prices' });
const providerProps: PriceSocketProviderProps = { socket };
const keys = ['NSE_EQ|INE002A01018', 'NSE_EQ|INE467B01029'];

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <PriceSocketProvider {...providerProps}>
      <Header />
      <Quote instrument={keys[0]!} />
      <Watchlist keys={keys} />
      <GuidePage keys={keys} />
      <Pushes />
      <Alerts instrument={keys[0]!} />
    </PriceSocketProvider>
  </StrictMode>,
);
