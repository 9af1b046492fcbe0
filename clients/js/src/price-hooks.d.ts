import type { Context, FunctionComponent, ReactNode } from 'react';
import type { ConnectionStatusValue, FeedState, InstrumentKey, Price, PriceSocket } from './price-socket.js';

export interface UsePriceWebSocketResult {
  /** the prices of the keys this component subscribed */
  prices: Record<InstrumentKey, Price>;
  connectionStatus: ConnectionStatusValue;
  statusDetail: string;
  feedStatus: FeedState | null;
  subscribe(keys: InstrumentKey | InstrumentKey[]): void;
  unsubscribe(keys: InstrumentKey | InstrumentKey[]): void;
  socket: PriceSocket;
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
  usePriceWebSocket(): UsePriceWebSocketResult;
}

/** Binds the hooks to a React (18 or later). */
export declare function createPriceHooks(react: typeof import('react')): PriceHooks;
