// Types of @pricedaemon/client: every frame of PriceDaemon's WebSocket protocol (DESIGN.md) and every call of
// PriceSocket. Server frames are a discriminated union on `type`, built from ServerFrameMap: a new channel is
// one more entry in that map (here, or by declaration merging from an app), and onFrame, ServerFrame and
// ServerFrameType all follow.

// ---- client to server ------------------------------------------------------------------------------------

export type InstrumentKey = string;

export interface SubscribeMessage {
  action: 'subscribe';
  instruments: InstrumentKey[];
  /** DESIGN.md "Beyond prices": without one it is 'price'. */
  channel?: MarketChannel;
  /** candles only */
  interval?: string;
  /** candles only: how many past candles to send first */
  history?: number;
  /** price channel: frames of this connection carry data.received_at from now on (false: no longer) */
  timing?: boolean;
}

export interface UnsubscribeMessage {
  action: 'unsubscribe';
  instruments: InstrumentKey[];
  channel?: MarketChannel;
}

/** Declared ahead of the daemon: DESIGN.md "Beyond prices". */
export interface TopicSubscribeMessage {
  action: 'subscribe' | 'unsubscribe';
  channel: 'topic';
  topics: string[];
}

/** Declared ahead of the daemon: acknowledges notifications by id (DESIGN.md "Beyond prices"). */
export interface AckMessage {
  action: 'ack';
  ids: string[];
}

/** A request id (at most 64 characters) the daemon echoes as `req` on the answer and on any error: see RequestFields. */
export interface RequestFields {
  req?: string;
}

/** A price alert: see AlertInput for the fields. */
export type AlertCreateMessage = { action: 'alert_create' } & AlertInput & RequestFields;

export interface AlertListMessage extends RequestFields {
  action: 'alert_list';
}

export interface AlertDeleteMessage extends RequestFields {
  action: 'alert_delete';
  id: string;
}

export type ClientMessage = SubscribeMessage | UnsubscribeMessage | TopicSubscribeMessage | AckMessage | AlertCreateMessage | AlertListMessage | AlertDeleteMessage;

export type MarketChannel = 'price' | 'depth' | 'book' | 'candles' | 'volume_alerts';

// ---- server to client: what the daemon sends today ---------------------------------------------------------

export type PriceSource = 'live' | 'simulated' | 'replay' | 'stored';

export interface PriceData {
  last_price: number;
  /** ISO 8601 */
  timestamp: string;
  change_percent?: number;
  volume?: number;
  /** per-instrument version that only grows within one epoch */
  seq?: number;
  source?: PriceSource;
  /** true when the price comes from cache or storage while the feed is down */
  stale?: boolean;
  /** with "timing": true on subscribe: when the daemon received the tick, ISO 8601 UTC with microseconds */
  received_at?: string;
}

export interface PriceUpdateFrame {
  type: 'price_update';
  instrument_key: InstrumentKey;
  data: PriceData;
}

export type FeedStatusValue = 'connected' | 'disconnected' | 'error';

export interface StatusFrame {
  type: 'status';
  status: FeedStatusValue;
  message?: string;
  /** changes when the daemon lost its state; sent on connect */
  epoch?: string;
}

export interface RejectedInstrument {
  instrument_key: InstrumentKey;
  code: ErrorCode | (string & {});
}

export interface SubscribedFrame {
  type: 'subscribed';
  /** the action acknowledged */
  action?: 'subscribe' | 'unsubscribe' | (string & {});
  /** every instrument the connection holds after the change */
  instruments: InstrumentKey[];
  rejected: RejectedInstrument[];
  channel?: MarketChannel;
}

export type ErrorCode =
  | 'invalid_message'
  | 'unknown_action'
  | 'unknown_instrument'
  | 'subscription_limit'
  | 'rate_limited'
  | 'message_too_large'
  | 'alert_limit'
  | 'unknown_alert'
  | 'alerts_unavailable'
  | 'slow_consumer';

export interface ErrorFrame {
  type: 'error';
  code: ErrorCode | (string & {});
  message: string;
  instruments?: InstrumentKey[];
  /** with rate_limited */
  retry_after_ms?: number;
  /** the request id of the alert_* message that caused it */
  req?: string;
}

// ---- server to client: DESIGN.md "Beyond prices" -------------------------------------------------------
// Some are declared ahead of the daemon: a daemon of this version may not send them yet. They reach
// PriceSocket.onFrame(type) listeners as they arrive; the client keeps state for depth and book (subscribeDepth).

/** [price, quantity, orders]; orders is 0 when the source does not say (Upstox V3) */
export type DepthLevel = [number, number, number];

export interface DepthFrame {
  type: 'depth';
  instrument_key: InstrumentKey;
  data: DepthData;
}

export interface BookFrame {
  type: 'book';
  instrument_key: InstrumentKey;
  data: DepthData;
}

export interface Candle {
  /** ISO 8601 start of the candle */
  t: string;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
}

export interface CandlesFrame {
  type: 'candles';
  instrument_key: InstrumentKey;
  interval: string;
  data: Candle[];
}

export interface CandleFrame {
  type: 'candle';
  instrument_key: InstrumentKey;
  interval: string;
  /** per (instrument, interval) version within one daemon run: never lower after higher */
  seq?: number;
  data: Candle & { closed: boolean };
}

export interface VolumeAlertFrame {
  type: 'volume_alert';
  instrument_key: InstrumentKey;
  data: { volume_1m: number; baseline: number; ratio: number; timestamp: string };
}

export interface TopicFrame<T = unknown> {
  type: 'topic';
  topic: string;
  seq: number;
  data: T;
}

export interface NotificationFrame<T = unknown> {
  type: 'notification';
  id: string;
  kind: string;
  created_at: string;
  data: T;
}

export interface AnnouncementFrame {
  type: 'announcement';
  id: string;
  level: 'info' | 'warning' | 'critical' | (string & {});
  message: string;
  expires_at?: string;
}

/** The publisher withdrew an announcement before it expired. */
export interface AnnouncementRemovedFrame {
  type: 'announcement_removed';
  id: string;
}

/** The answer to an ack: the ids the daemon removed from the user's inbox. */
export interface AckedFrame {
  type: 'acked';
  ids: string[];
}

/** The answer to a topic subscribe or unsubscribe. */
export interface TopicsSubscribedFrame {
  type: 'subscribed';
  action: 'subscribe' | 'unsubscribe';
  channel: 'topic';
  /** every topic the connection holds after the change */
  topics: string[];
  rejected: { topic: string; code: 'unknown_topic' | 'topic_forbidden' | (string & {}) }[];
}

/** The answer to alert_create, once the alert is stored. */
export interface AlertCreatedFrame {
  type: 'alert_created';
  alert: PriceAlert;
  /** the request id of the alert_create, when it had one */
  req?: string;
}

/** The answer to alert_list. */
export interface AlertsFrame {
  type: 'alerts';
  alerts: PriceAlert[];
  req?: string;
}

export interface AlertDeletedFrame {
  type: 'alert_deleted';
  id: string;
  req?: string;
}

/** A notification as a handler gets it: replayed is true when it is delivered again on a later connect. */
export type Notification<T = unknown> = NotificationFrame<T> & { replayed?: boolean };

/** What onAnnouncement hears: an announcement, or the withdrawal of one. */
export type AnnouncementEvent = AnnouncementFrame | { id: string; removed: true } | { removed: true; all: true };

/** The connection could not keep up: prices now come at most once per interval_ms per instrument. */
export interface WarningFrame {
  type: 'warning';
  code: 'slow_consumer' | (string & {});
  message: string;
  interval_ms?: number;
}

/** The warning of the same code is over: full rate again. */
export interface WarningClearedFrame {
  type: 'warning_cleared';
  code: 'slow_consumer' | (string & {});
  message: string;
}

/** Every server frame type and its shape. Add a channel by adding an entry (declaration merging works). */
export interface ServerFrameMap {
  price_update: PriceUpdateFrame;
  status: StatusFrame;
  subscribed: SubscribedFrame;
  error: ErrorFrame;
  depth: DepthFrame;
  book: BookFrame;
  candles: CandlesFrame;
  candle: CandleFrame;
  volume_alert: VolumeAlertFrame;
  topic: TopicFrame;
  notification: NotificationFrame;
  announcement: AnnouncementFrame;
  announcement_removed: AnnouncementRemovedFrame;
  acked: AckedFrame;
  alert_created: AlertCreatedFrame;
  alerts: AlertsFrame;
  alert_deleted: AlertDeletedFrame;
  warning: WarningFrame;
  warning_cleared: WarningClearedFrame;
}

export type ServerFrameType = keyof ServerFrameMap;
export type ServerFrame = ServerFrameMap[ServerFrameType];

// ---- the client ------------------------------------------------------------------------------------------

export declare const ConnectionStatus: Readonly<{
  connecting: 'connecting';
  connected: 'connected';
  reconnecting: 'reconnecting';
  error: 'error';
  closed: 'closed';
}>;
export type ConnectionStatusValue = (typeof ConnectionStatus)[keyof typeof ConnectionStatus];

/** A price as the client holds it: the daemon's data plus whether it is stale now. */
export type Price = Readonly<PriceData & { stale: boolean }>;

export interface FeedState {
  status: FeedStatusValue;
  message: string;
  epoch: string | null;
}

/** The events of PriceSocket.on. */
export interface PriceSocketEventMap {
  status: { status: ConnectionStatusValue; detail: string; attempt: number; delayMs?: number };
  feed: FeedState;
  price: { key: InstrumentKey; data: Price; stale: boolean; changed: boolean };
  subscribed: { action?: string; instruments: InstrumentKey[]; rejected: RejectedInstrument[] } | { action: string; channel: 'topic'; topics: string[]; rejected: TopicsSubscribedFrame['rejected'] };
  announcement: AnnouncementEvent;
  'server-error': { code: ErrorFrame['code']; message: string; instruments: InstrumentKey[]; req?: string };
  /** the user's alerts changed (listed, created, deleted or fired); also when a list failed (see alertsView.error) */
  alerts: PriceAlert[];
  slow: ({ slow: true } & SlowState) | { slow: false; message: string };
  latency: LatencySample;
}

/** The daemon's slow_consumer warning in force. */
export interface SlowState {
  message: string;
  /** the downsampled minimum interval per instrument */
  intervalMs: number | null;
  /** client time (ms) the warning arrived */
  since: number;
}

/** One price's latency, from its data.timestamp and data.received_at and the client's clock (timing option). */
export interface LatencySample {
  key: InstrumentKey;
  /** the daemon's receive time minus the exchange's trade time; null when the trade time does not parse */
  exchangeToDaemonMs: number | null;
  /** the client's receive time minus the daemon's (includes the daemon's throttle and queues; needs synced clocks) */
  daemonToClientMs: number;
  /** client time (ms) of the sample */
  at: number;
}

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  factor?: number;
  jitter?: number;
}

export interface PriceStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface PriceSocketOptions {
  /** default: /api/ws/prices on the page's own host */
  url?: string;
  /** a JWT for daemons in JWT mode */
  token?: string | null;
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  backoffFactor?: number;
  jitter?: number;
  /** where last prices persist between page loads (default localStorage; null for none) */
  storage?: PriceStorage | null;
  debug?: boolean;
  /** when onKey listeners (the hooks) hear of a change: once per animation frame (default, in a browser) or at once */
  notify?: 'frame' | 'sync';
  requestAnimationFrame?: (callback: () => void) => unknown;
  /** connect in the constructor (default true) */
  connect?: boolean;
  /** ask for the daemon's receive time on every price (default false); fills `latency` */
  timing?: boolean;
  /** how long createAlert, listAlerts and deleteAlert wait for an answer before rejecting with 'timeout' (default 10000; 0: no limit) */
  requestTimeoutMs?: number;
  WebSocket?: new (url: string) => WebSocket;
  fetch?: typeof fetch;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  random?: () => number;
  now?: () => number;
  console?: Pick<Console, 'log' | 'error'>;
}

export interface SubscribeOptions {
  /** tell the daemon at the end of the task, coalesced with other changes (what the hooks use) */
  deferred?: boolean;
}

/** Stops listening, or releases references; calling it again does nothing. */
export type Release = () => void;

export declare class PriceSocket {
  constructor(options?: PriceSocketOptions);
  readonly url: string;
  token: string | null;
  debug: boolean;
  readonly status: ConnectionStatusValue;
  readonly statusDetail: string;
  readonly feed: FeedState | null;
  readonly epoch: string | null;
  readonly attempt: number;
  /** grows whenever any price changes */
  readonly version: number;
  /** keys with at least one reference */
  readonly subscriptions: InstrumentKey[];
  /** keys the daemon refused in its last ack, with the reason code */
  readonly rejected: Map<InstrumentKey, string>;
  /** whether price subscribes ask for the daemon's receive time */
  readonly timing: boolean;
  /** the slow_consumer warning in force, or null at full rate */
  readonly slow: SlowState | null;
  /** the last latency sample (timing on), or null */
  readonly latency: LatencySample | null;
  /** turns timing on or off for this and later connections (one subscription change at the daemon) */
  setTiming(on: boolean): void;

  on<E extends keyof PriceSocketEventMap>(event: E, callback: (detail: PriceSocketEventMap[E]) => void): Release;
  onFrame<T extends ServerFrameType>(type: T, callback: (frame: ServerFrameMap[T]) => void): Release;
  onKey(key: InstrumentKey, callback: () => void): Release;

  subscribe(keys: InstrumentKey | Iterable<InstrumentKey>, options?: SubscribeOptions): Release;
  unsubscribe(keys: InstrumentKey | Iterable<InstrumentKey>, options?: SubscribeOptions): void;
  /** sends deferred subscription changes now */
  flush(): void;
  refCount(key: InstrumentKey): number;

  /** a fresh copy of the last price of `key` */
  price(key: InstrumentKey): Price | undefined;
  /** the last price of `key`: the same object until it changes */
  priceSnapshot(key: InstrumentKey): Price | undefined;
  prices(): Record<InstrumentKey, Price>;

  /** announcements in force, by id */
  readonly announcements: Map<string, AnnouncementFrame>;
  /** the same, as an array replaced on every change */
  readonly announcementList: AnnouncementFrame[];
  /**
   * Handles the user's notifications; each is acked once every handler returned (a promise is awaited). A
   * handler that throws leaves it unacked: the daemon delivers it again on the next connect.
   */
  onNotification<T = unknown>(handler: (notification: Notification<T>) => void | Promise<void>): Release;
  onAnnouncement(callback: (event: AnnouncementEvent) => void): Release;
  /** holds topics (reference counted); `callback` hears their current and every later value */
  subscribeTopic<T = unknown>(topics: string | Iterable<string>, callback?: (topic: string, data: T, seq: number) => void): Release;
  /** the last value of a held topic */
  topic<T = unknown>(name: string): T | undefined;
  /**
   * holds the order book of `keys` (reference counted, resubscribed after a reconnect): the best 5 levels a side,
   * or up to 30 with `{ levels: 30 }`; `callback` hears the current and every later book
   */
  subscribeDepth(keys: string | Iterable<string>, callback?: (instrumentKey: string, data: DepthData, seq: number) => void, options?: DepthOptions): Release;
  /** the last book of a held instrument */
  depth(instrumentKey: string, options?: DepthOptions): DepthData | undefined;
  /** holds an instrument's bars at an interval (reference counted); `callback` hears the history and every bar after */
  subscribeCandles(key: InstrumentKey, interval: CandleInterval, options?: { history?: number }, callback?: (event: CandleEvent) => void): Release;
  subscribeCandles(key: InstrumentKey, interval: CandleInterval, callback: (event: CandleEvent) => void): Release;
  /** the held bars of an instrument at an interval */
  candles(key: InstrumentKey, interval: CandleInterval): CandleView | undefined;

  /**
   * sets a price alert; resolves once the daemon stored it, rejects with a RequestError carrying the daemon's `code`
   * (or not_connected, connection_closed, timeout). Answers are matched to calls by the echoed request id.
   */
  createAlert(alert: AlertInput, options?: RequestOptions): Promise<PriceAlert>;
  /** the user's alerts and their state; also kept in `alertList` (event 'alerts' on every change) */
  listAlerts(options?: RequestOptions): Promise<PriceAlert[]>;
  deleteAlert(id: string, options?: RequestOptions): Promise<string>;
  /** the user's alerts as last heard of (after listAlerts, creates, deletes and fired price_alert notifications) */
  readonly alertList: PriceAlert[];
  /** the same, whether a list has come, and why the last one failed; a new frozen object on every change */
  readonly alertsView: AlertsView;
  /** keeps `alertList` current (lists now or on connect, and after every reconnect) until released */
  watchAlerts(): Release;
  /** unusual-volume alerts for `keys` (null: every instrument), held across reconnects */
  subscribeVolumeAlerts(keys: string | Iterable<string> | null, callback: (key: string, data: VolumeAlertData) => void): Release;

  connect(): void;
  close(): void;
}

/** A bar interval of the candles channel. */
export type CandleInterval = '1m' | '5m' | '15m' | '1h' | '1d';

/** What the client holds for one instrument and interval. */
export interface CandleView {
  /** closed bars, oldest first */
  bars: Candle[];
  /** the bar forming now, or null */
  forming: Candle | null;
}

export interface CandleEvent extends CandleView {
  type: 'history' | 'candle';
  instrument_key: InstrumentKey;
  interval: CandleInterval;
  /** the bar this event is about (type 'candle') */
  bar?: Candle;
}

export type AlertCondition = 'above' | 'below' | 'crosses_up' | 'crosses_down' | 'change_pct_above' | 'change_pct_below';

export interface AlertInput {
  instrument_key: string;
  condition: AlertCondition;
  /** for above, below, crosses_up, crosses_down */
  price?: number;
  /** the day change in percent, for change_pct_above and change_pct_below */
  percent?: number;
  /** re-arm after the price moves back past the hysteresis band (default false: one-shot) */
  repeat?: boolean;
  note?: string;
}

export interface PriceAlert extends AlertInput {
  id: string;
  owner: 'user' | 'connection';
  state: 'armed' | 'resetting' | 'fired';
  created_at: string;
  fire_count: number;
  fired_at: string | null;
  fired_price: number | null;
}

/** `data` of a `price_alert` notification */
export interface PriceAlertFired {
  alert_id: string;
  instrument_key: string;
  symbol: string;
  condition: AlertCondition;
  price?: number;
  percent?: number;
  last_price: number;
  fired_at: string;
  repeat: boolean;
  fire_count: number;
  note: string;
}

export interface VolumeAlertData {
  volume_1m: number;
  baseline: number;
  ratio: number;
  timestamp: string;
}

/** One unusual-volume alert as useVolumeAlerts keeps it. */
export type VolumeAlert = VolumeAlertData & { instrument_key: InstrumentKey };

/** The user's alerts with whether a list has come and why the last one failed. */
export interface AlertsView {
  alerts: PriceAlert[];
  /** false until the first list arrives */
  loaded: boolean;
  /** the last list's failure (e.g. code alerts_unavailable), null after one that worked */
  error: RequestError | null;
}

export interface RequestOptions {
  /** overrides the socket's requestTimeoutMs for this call (0: no limit) */
  timeoutMs?: number;
}

/** Client-side codes of RequestError, beside the daemon's ErrorCode. */
export type RequestErrorCode = 'not_connected' | 'connection_closed' | 'timeout' | 'unexpected_answer';

/** Why createAlert, listAlerts or deleteAlert failed. */
export declare class RequestError extends Error {
  constructor(code: string, message: string, req?: string);
  readonly code: ErrorCode | RequestErrorCode | (string & {});
  /** the request id sent (and echoed by the daemon), when one was sent */
  readonly req?: string;
}

export declare function getPriceSocket(options?: PriceSocketOptions): PriceSocket;
export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
/** Milliseconds since the epoch of an ISO 8601 UTC time, microseconds kept; NaN when it does not parse. */
export declare function parseTimeMs(text: string): number;
export declare function defaultUrl(location?: { protocol: string; host: string }): string;

/** The `data` of a `depth` or `book` frame. */
export interface DepthData {
  /** best (highest) first */
  bids: DepthLevel[];
  /** best (lowest) first */
  asks: DepthLevel[];
  timestamp: string;
  seq: number;
  source: PriceSource;
  /** true on a cached book served while the feed is down */
  stale?: boolean;
}

export interface DepthOptions {
  /** 5 (default: channel `depth`) or up to 30 (channel `book`) */
  levels?: number;
  /** the same as `levels: 30` */
  book?: boolean;
}
