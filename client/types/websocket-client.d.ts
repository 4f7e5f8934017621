export { RequestError };
/** @typedef {import("./types.js").State} State */
/** @typedef {import("./types.js").Delivery} Delivery */
/** @typedef {import("./types.js").Member} Member */
/** @typedef {import("./types.js").Presence} Presence */
/** @typedef {import("./types.js").JoinLeave} JoinLeave */
/** @typedef {import("./types.js").Position} Position */
/** @typedef {import("./types.js").Options} Options */
/** @typedef {import("./types.js").ClientEventMap} ClientEventMap */
/** @typedef {import("./types.js").StateChange} StateChange */
/** @typedef {import("./types.js").Recovered} Recovered */
/** @typedef {import("./types.js").Gap} Gap */
/** @typedef {import("./types.js").ErrorDetail} ErrorDetail */
/** @typedef {import("./types.js").Resubscribed} Resubscribed */
/** @typedef {import("./types.js").Disconnected} Disconnected */
export class WebSocketClient extends EventTarget {
    /**
     * @param {string} url The stage's `ws://` or `wss://` URL.
     * @param {Options} [options]
     */
    constructor(url: string, options?: Options);
    url: string;
    options: {
        /**
         * A JWT, or a function returning a
         * fresh one, called before every attempt (tokens expire; connections outlive them).
         */
        token?: string | (() => string | Promise<string>) | undefined;
        /**
         * The first reconnect's ceiling (default 500); each failed
         * attempt doubles it, up to `maxBackoffMs`; the delay is drawn uniformly below it.
         */
        minBackoffMs: number;
        /**
         * Default 30,000.
         */
        maxBackoffMs: number;
        /**
         * How long the connection may stay silent before the client sends
         * a keepalive (default 540,000: nine minutes, under API Gateway's ten).
         */
        keepaliveMs: number;
        /**
         * How long a request waits for its answer (default 10,000).
         */
        requestTimeoutMs: number;
        /**
         * How many recent delivery ids are remembered (default 10,000).
         */
        dedupeSize: number;
        /**
         * How long a message that came ahead of a missing offset waits for
         * it before the client reads the missing range from history (default 1,000).
         */
        orderWaitMs: number;
        /**
         * The WebSocket implementation (default: the global one).
         */
        WebSocket?: {
            new (url: string | URL, protocols?: string | string[]): WebSocket;
            prototype: WebSocket;
            readonly CONNECTING: 0;
            readonly OPEN: 1;
            readonly CLOSING: 2;
            readonly CLOSED: 3;
        } | undefined;
    };
    /** The channels and patterns this client is subscribed to, restored after every reconnect. @type {Set<string>} */
    channels: Set<string>;
    /** The channels subscribed with `{joinLeave: true}`, watched again after every reconnect. @type {Set<string>} */
    watching: Set<string>;
    /** Connections made, the first included. */
    connections: number;
    /**
     * Listens for one of the client's events, with `event.detail` typed by {@link ClientEventMap}.
     * @template {keyof ClientEventMap} K
     * @overload
     * @param {K} type
     * @param {(event: ClientEventMap[K]) => void} listener
     * @param {boolean | AddEventListenerOptions} [options]
     * @returns {void}
     */
    addEventListener<K extends keyof ClientEventMap>(type: K, listener: (event: ClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions | undefined): void;
    /**
     * @overload
     * @param {string} type
     * @param {EventListenerOrEventListenerObject | null} listener
     * @param {boolean | AddEventListenerOptions} [options]
     * @returns {void}
     */
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions | undefined): void;
    /**
     * @template {keyof ClientEventMap} K
     * @overload
     * @param {K} type
     * @param {(event: ClientEventMap[K]) => void} listener
     * @param {boolean | EventListenerOptions} [options]
     * @returns {void}
     */
    removeEventListener<K extends keyof ClientEventMap>(type: K, listener: (event: ClientEventMap[K]) => void, options?: boolean | EventListenerOptions | undefined): void;
    /**
     * @overload
     * @param {string} type
     * @param {EventListenerOrEventListenerObject | null} listener
     * @param {boolean | EventListenerOptions} [options]
     * @returns {void}
     */
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions | undefined): void;
    /** Deliveries dropped as repeats of one already had. */
    get duplicatesDropped(): number;
    /**
     * The last position delivered on `channel`, which a resubscription recovers from.
     * @param {string} channel
     * @returns {Position | undefined}
     */
    position(channel: string): Position | undefined;
    /** @returns {State} */
    get state(): State;
    /** Starts connecting (and reconnecting after every drop, until `close()`). */
    connect(): void;
    /** Closes the connection for good: no reconnect, no timer left; requests not yet answered fail with `closed`. */
    close(): void;
    /**
     * Subscribes to a channel, or to every channel below a pattern ending in `/*`; resolves with the
     * channel's latest `offset` and its `epoch` (a channel's; a pattern has none). With
     * `{joinLeave: true}` (a channel only) the client also gets `join` and `leave` events for it.
     * @param {string} channel
     * @param {{joinLeave?: boolean}} [options]
     * @returns {Promise<{channel: string, offset?: number, epoch?: string}>}
     */
    subscribe(channel: string, options?: {
        joinLeave?: boolean;
    }): Promise<{
        channel: string;
        offset?: number;
        epoch?: string;
    }>;
    /**
     * Who is in a channel now (docs/protocol.md, Presence): exact counts, and the members, longest-standing
     * first.
     * @param {string} channel
     * @returns {Promise<Presence>}
     */
    presence(channel: string): Promise<Presence>;
    /**
     * @param {string} channel
     * @returns {Promise<{channel: string}>}
     */
    unsubscribe(channel: string): Promise<{
        channel: string;
    }>;
    /**
     * Publishes `data` to a channel; resolves once it is queued, with the `id` subscribers will see
     * and its place in the channel (`offset`, `epoch`). What one client publishes, each after the
     * last one resolved, reaches every subscriber in that order.
     * @param {string} channel
     * @param {unknown} data
     * @returns {Promise<{id: string, offset?: number, epoch?: string}>}
     */
    publish(channel: string, data: unknown): Promise<{
        id: string;
        offset?: number;
        epoch?: string;
    }>;
    /**
     * A channel's kept messages, oldest first: the newest `limit` (1 to 100, default 50), or with
     * `since` those after that position.
     * @param {string} channel
     * @param {{limit?: number, since?: {offset: number, epoch: string}}} [options]
     * @returns {Promise<Delivery[]>}
     */
    history(channel: string, options?: {
        limit?: number;
        since?: {
            offset: number;
            epoch: string;
        };
    }): Promise<Delivery[]>;
    /**
     * Sends `data` to every connection; resolves once it is queued, with its `id`.
     * @param {unknown} data
     * @returns {Promise<{id: string}>}
     */
    broadcast(data: unknown): Promise<{
        id: string;
    }>;
    /**
     * Has `data` sent back to this connection alone.
     * @param {unknown} data
     * @returns {Promise<unknown>}
     */
    echo(data: unknown): Promise<unknown>;
    #private;
}
export type State = import("./types.js").State;
export type Delivery = import("./types.js").Delivery;
export type Member = import("./types.js").Member;
export type Presence = import("./types.js").Presence;
export type JoinLeave = import("./types.js").JoinLeave;
export type Position = import("./types.js").Position;
export type Options = import("./types.js").Options;
export type ClientEventMap = import("./types.js").ClientEventMap;
export type StateChange = import("./types.js").StateChange;
export type Recovered = import("./types.js").Recovered;
export type Gap = import("./types.js").Gap;
export type ErrorDetail = import("./types.js").ErrorDetail;
export type Resubscribed = import("./types.js").Resubscribed;
export type Disconnected = import("./types.js").Disconnected;
import { RequestError } from "./requests.js";
