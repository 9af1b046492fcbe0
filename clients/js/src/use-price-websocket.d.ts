import type { ConnectionStatusValue, FeedState, InstrumentKey, Price, PriceSocket, PriceSocketOptions } from './price-socket.js';

/** The first hook: re-renders on every price of any key. Kept for pages that use it; prefer '@pricedaemon/client/react'. */
export interface LegacyUsePriceWebSocketResult {
  prices: Record<InstrumentKey, Price>;
  connectionStatus: ConnectionStatusValue;
  statusDetail: string;
  feedStatus: FeedState | null;
  subscribe(keys: InstrumentKey | InstrumentKey[]): void;
  unsubscribe(keys: InstrumentKey | InstrumentKey[]): void;
  socket: PriceSocket;
}

/** @deprecated use usePriceWebSocket from '@pricedaemon/client/react' */
export declare function createUsePriceWebSocket(react: typeof import('react'), options?: PriceSocketOptions): () => LegacyUsePriceWebSocketResult;
