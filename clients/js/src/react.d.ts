import type { PriceHooks } from './price-hooks.js';

export type { PriceHooks, PriceSocketProviderProps, UseAlertsResult, UsePriceWebSocketResult, UseVolumeAlertsOptions } from './price-hooks.js';
export { createPriceHooks } from './price-hooks.js';
export { getPriceSocket, PriceSocket, ConnectionStatus, RequestError } from './price-socket.js';

export declare const PriceSocketContext: PriceHooks['PriceSocketContext'];
export declare const PriceSocketProvider: PriceHooks['PriceSocketProvider'];
export declare const usePriceSocket: PriceHooks['usePriceSocket'];
export declare const usePrice: PriceHooks['usePrice'];
export declare const usePrices: PriceHooks['usePrices'];
export declare const useConnectionStatus: PriceHooks['useConnectionStatus'];
export declare const useFeedStatus: PriceHooks['useFeedStatus'];
export declare const useSlowConnection: PriceHooks['useSlowConnection'];
export declare const useLatency: PriceHooks['useLatency'];
export declare const usePriceWebSocket: PriceHooks['usePriceWebSocket'];
export declare const useTopic: PriceHooks['useTopic'];
export declare const useDepth: PriceHooks['useDepth'];
export declare const useCandles: PriceHooks['useCandles'];
export declare const useNotifications: PriceHooks['useNotifications'];
export declare const useAnnouncements: PriceHooks['useAnnouncements'];
export declare const useAlerts: PriceHooks['useAlerts'];
export declare const useVolumeAlerts: PriceHooks['useVolumeAlerts'];
