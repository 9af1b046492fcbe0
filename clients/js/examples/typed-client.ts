// A typed use of '@pricedaemon/client' outside React, run by the tests after `npm pack` and an install of
// the tarball into a scratch app:  node --experimental-websocket typed-client.js ws://HOST:PORT/api/ws/prices KEY
// It touches every type the main entry exports, prints the first price of KEY as one JSON line, and exits.
import {
  backoffDelay,
  ConnectionStatus,
  defaultUrl,
  getPriceSocket,
  parseTimeMs,
  PriceSocket,
  RequestError,
  type AckMessage,
  type AckedFrame,
  type AlertCondition,
  type AlertCreatedFrame,
  type AlertCreateMessage,
  type AlertDeletedFrame,
  type AlertDeleteMessage,
  type AlertInput,
  type AlertListMessage,
  type AlertsFrame,
  type AlertsView,
  type RequestErrorCode,
  type RequestFields,
  type RequestOptions,
  type VolumeAlert,
  type PriceAlert,
  type PriceAlertFired,
  type VolumeAlertData,
  type AnnouncementEvent,
  type AnnouncementFrame,
  type AnnouncementRemovedFrame,
  type BackoffOptions,
  type BookFrame,
  type Candle,
  type CandleEvent,
  type CandleFrame,
  type CandlesFrame,
  type ClientMessage,
  type ConnectionStatusValue,
  type DepthData,
  type DepthFrame,
  type DepthLevel,
  type ErrorCode,
  type ErrorFrame,
  type FeedState,
  type FeedStatusValue,
  type InstrumentKey,
  type LatencySample,
  type MarketChannel,
  type Notification,
  type NotificationFrame,
  type Price,
  type PriceData,
  type PriceSocketEventMap,
  type PriceSocketOptions,
  type PriceSource,
  type PriceStorage,
  type PriceUpdateFrame,
  type RejectedInstrument,
  type Release,
  type ServerFrame,
  type ServerFrameMap,
  type ServerFrameType,
  type SlowState,
  type StatusFrame,
  type SubscribedFrame,
  type SubscribeMessage,
  type SubscribeOptions,
  type TopicFrame,
  type TopicSubscribeMessage,
  type TopicsSubscribedFrame,
  type UnsubscribeMessage,
  type VolumeAlertFrame,
  type WarningClearedFrame,
  type WarningFrame,
} from '@pricedaemon/client';

declare const process: { argv: string[]; exit(code: number): never };

const [url, key] = [process.argv[2], process.argv[3] as InstrumentKey];

// Every frame, by its discriminant: a switch over ServerFrame is exhaustive.
function describe(frame: ServerFrame): string {
  switch (frame.type) {
    case 'price_update': return `${frame.instrument_key} ${frame.data.last_price}`;
    case 'status': return `feed ${frame.status satisfies FeedStatusValue}`;
    case 'subscribed': return `holding ${frame.instruments.length}, refused ${frame.rejected.map((r: RejectedInstrument) => r.code).join(',')}`;
    case 'error': return `error ${frame.code}`;
    case 'depth': return `depth ${(frame.data.bids[0] satisfies DepthLevel | undefined)?.[0]}`;
    case 'book': return `book ${frame.data.asks.length}`;
    case 'candles': return `candles ${frame.data.map((c: Candle) => c.c).join(',')}`;
    case 'candle': return `candle ${frame.data.closed}`;
    case 'volume_alert': return `volume ${frame.data.ratio}`;
    case 'topic': return `topic ${frame.topic}#${frame.seq}`;
    case 'notification': return `notification ${frame.kind} ${frame.id}`;
    case 'announcement': return `announcement ${frame.level}: ${frame.message}`;
    case 'announcement_removed': return `announcement ${frame.id} withdrawn`;
    case 'acked': return `acked ${frame.ids.join(',')}`;
    case 'alert_created': return `alert ${frame.alert.id} ${frame.alert.state}`;
    case 'alerts': return `alerts ${frame.alerts.length}`;
    case 'alert_deleted': return `alert ${frame.id} deleted`;
    case 'warning': return `warning ${frame.code} every ${frame.interval_ms} ms`;
    case 'warning_cleared': return `cleared ${frame.code}`;
    default: {
      const never: never = frame;
      return String(never);
    }
  }
}

const messages: ClientMessage[] = [
  { action: 'subscribe', instruments: [key], timing: true } satisfies SubscribeMessage,
  { action: 'unsubscribe', instruments: [key], channel: 'price' satisfies MarketChannel } satisfies UnsubscribeMessage,
  { action: 'subscribe', channel: 'topic', topics: ['leaderboard'] } satisfies TopicSubscribeMessage,
  { action: 'ack', ids: ['trade-1'] } satisfies AckMessage,
  { action: 'alert_create', instrument_key: key, condition: 'above', price: 1 } satisfies AlertCreateMessage,
  { action: 'alert_create', instrument_key: key, condition: 'change_pct_below' satisfies AlertCondition, percent: -2, repeat: true, note: 'dip' } satisfies AlertCreateMessage,
  { action: 'alert_list', req: 'l-1' } satisfies AlertListMessage & RequestFields,
  { action: 'alert_delete', id: 'al-1' } satisfies AlertDeleteMessage,
];
const alertInput: AlertInput = { instrument_key: key, condition: 'below', price: 1 };
const alert: PriceAlert = { ...alertInput, id: 'al-1', owner: 'user', state: 'armed', created_at: '', fire_count: 0, fired_at: null, fired_price: null };
const fired: PriceAlertFired = { alert_id: alert.id, instrument_key: key, symbol: 'X', condition: 'below', price: 1, last_price: 0.95, fired_at: '', repeat: false, fire_count: 1, note: '' };
const sample: ServerFrame[] = [
  { type: 'depth', instrument_key: key, data: { bids: [[1, 2, 3]], asks: [], timestamp: '', seq: 1, source: 'live' } } satisfies DepthFrame,
  { type: 'book', instrument_key: key, data: { bids: [], asks: [[1, 2, 3]], timestamp: '', seq: 1, source: 'live' } } satisfies BookFrame,
  { type: 'candles', instrument_key: key, interval: '1m', data: [{ t: '', o: 1, h: 2, l: 0.5, c: 1.5, v: 9 }] } satisfies CandlesFrame,
  { type: 'candle', instrument_key: key, interval: '1m', data: { t: '', o: 1, h: 2, l: 0.5, c: 1.5, v: 9, closed: false } } satisfies CandleFrame,
  { type: 'volume_alert', instrument_key: key, data: { volume_1m: 5, baseline: 1, ratio: 5, timestamp: '' } } satisfies VolumeAlertFrame,
  { type: 'topic', topic: 'leaderboard', seq: 1, data: {} } satisfies TopicFrame,
  { type: 'notification', id: 'trade-1', kind: 'trade', created_at: '', data: {} } satisfies NotificationFrame,
  { type: 'announcement', id: 'a', level: 'warning', message: 'maintenance' } satisfies AnnouncementFrame,
  { type: 'announcement_removed', id: 'a' } satisfies AnnouncementRemovedFrame,
  { type: 'acked', ids: ['trade-1'] } satisfies AckedFrame,
  { type: 'alert_created', alert } satisfies AlertCreatedFrame,
  { type: 'alerts', alerts: [alert] } satisfies AlertsFrame,
  { type: 'alert_deleted', id: fired.alert_id } satisfies AlertDeletedFrame,
  { type: 'warning', code: 'slow_consumer', message: 'not keeping up', interval_ms: 1000 } satisfies WarningFrame,
  { type: 'warning_cleared', code: 'slow_consumer', message: 'full rate' } satisfies WarningClearedFrame,
  { type: 'error', code: 'rate_limited' satisfies ErrorCode, message: '', retry_after_ms: 10 } satisfies ErrorFrame,
];
const topicAck: TopicsSubscribedFrame = { type: 'subscribed', action: 'subscribe', channel: 'topic', topics: ['leaderboard'], rejected: [{ topic: 'secret', code: 'topic_forbidden' }] };
const described = sample.map(describe).length + messages.length + topicAck.topics.length;

// Alert calls settle with their own answers (matched by the echoed request id), or a RequestError.
const requestOptions: RequestOptions = { timeoutMs: 5000 };
async function setAlert(on: PriceSocket): Promise<string> {
  try {
    const created: PriceAlert = await on.createAlert(alertInput, requestOptions);
    await on.deleteAlert(created.id);
    return (await on.listAlerts()).map((a: PriceAlert) => a.state).join(',');
  } catch (error) {
    if (error instanceof RequestError) {
      const code: ErrorCode | RequestErrorCode | (string & {}) = error.code;
      return `${code} ${error.req ?? ''}`;
    }
    throw error;
  }
}
void setAlert;
const volumeAlert: VolumeAlert = { instrument_key: key, volume_1m: 5, baseline: 1, ratio: 5, timestamp: '' };
void volumeAlert;

const storage: PriceStorage | null = null;
const backoff: BackoffOptions = { baseMs: 100, maxMs: 1000 };
const options: PriceSocketOptions = { url, storage, reconnectDelayMs: backoff.baseMs, connect: false };
const socket: PriceSocket = new PriceSocket(options);
const shared: PriceSocket = getPriceSocket(options);
shared.close();
const firstDelay: number = backoffDelay(1, backoff);
const derived: string = defaultUrl({ protocol: 'http:', host: '127.0.0.1:1' });
const subscribeOptions: SubscribeOptions = { deferred: true };

const timer = setTimeout(() => {
  console.error('no price within 20 s');
  process.exit(1);
}, 20_000);

const offs: Release[] = [
  socket.on('status', (event: PriceSocketEventMap['status']) => {
    const status: ConnectionStatusValue = event.status;
    if (status === ConnectionStatus.error) {
      console.error('socket error', event.detail);
    }
  }),
  socket.on('feed', (feed: FeedState) => void feed.status),
  socket.on('slow', (event: PriceSocketEventMap['slow']) => void (event.slow ? (event satisfies SlowState).intervalMs : event.message)),
  socket.on('latency', (sample: LatencySample) => void (sample.daemonToClientMs + (sample.exchangeToDaemonMs ?? 0) + parseTimeMs('2026-01-19T10:30:00.123456Z'))),
  socket.onNotification<{ qty: number }>((n: Notification<{ qty: number }>) => void (n.data.qty + (n.replayed ? 1 : 0))),
  socket.onAnnouncement((event: AnnouncementEvent) => void ('level' in event ? event.level : event.removed)),
  socket.subscribeDepth(key, (instrumentKey: string, data: DepthData, seq: number) => void `${instrumentKey}${data.bids[0]?.[0]}${seq}`, { levels: 30 }),
  socket.subscribeVolumeAlerts(null, (k: string, data: VolumeAlertData) => void `${k}${data.ratio}`),
  socket.subscribeTopic<{ top: string }>('leaderboard', (topic: string, data: { top: string }, seq: number) => void `${topic}${data.top}${seq}`),
  socket.subscribeCandles(key, '5m', { history: 100 }, (event: CandleEvent) => void (event.type === 'history' ? event.bars.length : event.bar?.c)),
  socket.watchAlerts(),
  socket.on('alerts', (alerts: PriceAlert[]) => void (alerts.length + (socket.alertsView satisfies AlertsView).alerts.length)),
  socket.on('server-error', (event: PriceSocketEventMap['server-error']) => void event.req),
  socket.onFrame('status', (frame: StatusFrame) => void frame.epoch),
  socket.onFrame('subscribed', (frame: SubscribedFrame) => void frame.instruments),
  socket.onFrame('price_update', (frame: PriceUpdateFrame) => {
    if (frame.instrument_key !== key) {
      return;
    }
    const data: PriceData = frame.data;
    const source: PriceSource | undefined = data.source;
    const price: Price | undefined = socket.priceSnapshot(key);
    const byType: ServerFrameType = 'price_update' satisfies ServerFrameMap['price_update']['type'];
    console.log(JSON.stringify({ key, last_price: price?.last_price, source, type: byType, described, firstDelay, derived, text: describe(frame) }));
    clearTimeout(timer);
    offs.forEach((off) => off());
    release();
    socket.close();
  }),
];
const release: Release = socket.subscribe([key], subscribeOptions);
socket.connect();
