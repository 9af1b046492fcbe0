import type { Context, FunctionComponent, ReactNode } from 'react';
import type { AlertInput, AlertsView, AnnouncementEvent, AnnouncementFrame, CandleInterval, CandleView, ConnectionStatusValue, DepthData, DepthOptions, FeedState, InstrumentKey, LatencySample, Notification, Price, PriceAlert, PriceSocket, Release, RequestOptions, SlowState, VolumeAlert } from './price-socket.js';

export interface UsePriceWebSocketResult {
  /** the prices of the keys this component subscribed */
  prices: Record<InstrumentKey, Price>;
  connectionStatus: ConnectionStatusValue;
  statusDetail: string;
  feedStatus: FeedState | null;
  subscribe(keys: InstrumentKey | InstrumentKey[]): void;
  unsubscribe(keys: InstrumentKey | InstrumentKey[]): void;
  socket: PriceSocket;
  onNotification: PriceSocket['onNotification'];
  onAnnouncement(callback: (event: AnnouncementEvent) => void): Release;
  subscribeTopic: PriceSocket['subscribeTopic'];
  subscribeCandles: PriceSocket['subscribeCandles'];
}

/** What useAlerts returns: the socket's AlertsView and the calls that change it. */
export interface UseAlertsResult extends AlertsView {
  /** resolves with the stored alert; rejects with a RequestError (code alert_limit, ..., timeout, connection_closed) */
  createAlert(alert: AlertInput, options?: RequestOptions): Promise<PriceAlert>;
  deleteAlert(id: string, options?: RequestOptions): Promise<string>;
  /** lists the alerts again */
  refresh(options?: RequestOptions): Promise<PriceAlert[]>;
}

export interface UseVolumeAlertsOptions {
  /** most alerts kept, newest first (default 20) */
  limit?: number;
}

export interface PriceSocketProviderProps {
  socket: PriceSocket;
  children?: ReactNode;
}

export interface PriceHooks {
  PriceSocketContext: Context<PriceSocket | null>;
  PriceSocketProvider: FunctionComponent<PriceSocketProviderProps>;
  usePriceSocket(): PriceSocket;
  usePrice(key: InstrumentKey | null | undefined): Price | undefined;
  usePrices(keys: readonly InstrumentKey[]): Record<InstrumentKey, Price>;
  useConnectionStatus(): ConnectionStatusValue;
  useFeedStatus(): FeedState | null;
  /** the daemon's slow_consumer warning in force, or null at full rate */
  useSlowConnection(): SlowState | null;
  /** the last latency sample (a socket made with { timing: true }), or null */
  useLatency(): LatencySample | null;
  usePriceWebSocket(): UsePriceWebSocketResult;
  /** the last value of a topic, held while mounted */
  useTopic<T = unknown>(topic: string | null | undefined): T | undefined;
  /** the order book of an instrument (5 levels a side; `{ levels: 30 }` for the book), held while mounted */
  useDepth(instrumentKey: InstrumentKey | null | undefined, options?: DepthOptions): DepthData | undefined;
  /** the bars of an instrument at an interval, held while mounted; undefined until the history has come */
  useCandles(key: InstrumentKey | null | undefined, interval: CandleInterval | null | undefined, history?: number): CandleView | undefined;
  /** handles this user's notifications while mounted; each is acked once the handler returned */
  useNotifications<T = unknown>(handler: (notification: Notification<T>) => void | Promise<void>): void;
  /** the announcements in force */
  useAnnouncements(): AnnouncementFrame[];
  /** the user's price alerts, kept current while mounted, with create and delete */
  useAlerts(): UseAlertsResult;
  /** the unusual-volume alerts of `keys` (null: every instrument) heard while mounted, newest first */
  useVolumeAlerts(keys: readonly InstrumentKey[] | null | undefined, options?: UseVolumeAlertsOptions): VolumeAlert[];
}

/** Binds the hooks to a React (18 or later). */
export declare function createPriceHooks(react: typeof import('react')): PriceHooks;
