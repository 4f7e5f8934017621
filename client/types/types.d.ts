/**
 * `idle` before `connect()`, `connecting` for the first attempt, `open`, `reconnecting` between
 * attempts after a drop, `closed` after `close()`.
 */
export type State = "idle" | "connecting" | "open" | "reconnecting" | "closed";
/**
 * A message delivered to this connection: a broadcast, or a message on a subscribed channel.
 */
export type Delivery = {
    type: "broadcast" | "message";
    /**
     * Unique per message; the client has already dropped repeats.
     */
    id: string;
    /**
     * The channel a message was published to.
     */
    channel?: string | undefined;
    /**
     * The sender's connection id (absent when a backend published).
     */
    from?: string | undefined;
    /**
     * The sender's `sub`, when it connected with a token.
     */
    user?: string | undefined;
    /**
     * When API Gateway received the message, epoch milliseconds.
     */
    sentAt: number;
    /**
     * What the sender sent.
     */
    data: unknown;
    /**
     * The message's place in its channel: 1 for the first, +1 for each after.
     */
    offset?: number | undefined;
    /**
     * The channel stream's epoch, which changes when its history is lost.
     */
    epoch?: string | undefined;
};
/**
 * A member of a channel: a connection subscribed to it by name.
 */
export type Member = {
    /**
     * Its connection id.
     */
    connection: string;
    /**
     * Its token's `sub` (absent for an anonymous connection).
     */
    user?: string | undefined;
    /**
     * Its token's `info` claim, when it has one.
     */
    info?: Record<string, unknown> | undefined;
    /**
     * When it joined, epoch milliseconds.
     */
    since: number;
};
/**
 * Who is in a channel now: exact counts, and the longest-standing members (at most 1,000).
 */
export type Presence = {
    channel: string;
    /**
     * Connections that are members.
     */
    clients: number;
    /**
     * Distinct users among them.
     */
    users: number;
    members: Member[];
    /**
     * Whether members were left out of `members`.
     */
    truncated: boolean;
};
/**
 * What a `join` or `leave` event says: a member came to or left a channel watched with
 * `{joinLeave: true}`.
 */
export type JoinLeave = {
    type: "join" | "leave";
    channel: string;
    /**
     * Unique per frame; the client has already dropped repeats.
     */
    id: string;
    connection: string;
    user?: string | undefined;
    /**
     * On a `join`, the member's `info`.
     */
    info?: Record<string, unknown> | undefined;
    sentAt: number;
};
/**
 * A position in a channel's stream: the last message a client has of it.
 */
export type Position = {
    offset: number;
    epoch: string;
};
export type Options = {
    /**
     * A JWT, or a function returning a
     * fresh one, called before every attempt (tokens expire; connections outlive them).
     */
    token?: string | (() => string | Promise<string>) | undefined;
    /**
     * The first reconnect's ceiling (default 500); each failed
     * attempt doubles it, up to `maxBackoffMs`; the delay is drawn uniformly below it.
     */
    minBackoffMs?: number | undefined;
    /**
     * Default 30,000.
     */
    maxBackoffMs?: number | undefined;
    /**
     * How long the connection may stay silent before the client sends
     * a keepalive (default 540,000: nine minutes, under API Gateway's ten).
     */
    keepaliveMs?: number | undefined;
    /**
     * How long a request waits for its answer (default 10,000).
     */
    requestTimeoutMs?: number | undefined;
    /**
     * How many recent delivery ids are remembered (default 10,000).
     */
    dedupeSize?: number | undefined;
    /**
     * How long a message that came ahead of a missing offset waits for
     * it before the client reads the missing range from history (default 1,000).
     */
    orderWaitMs?: number | undefined;
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
/**
 * The `state` event: the client's new state; `attempt` and `delayMs` when it waits to reconnect.
 */
export type StateChange = {
    state: State;
    attempt?: number | undefined;
    delayMs?: number | undefined;
};
/**
 * The `recovered` event: what a resubscription missed is on its way — replayed by the gateway, or
 * (`fromHistory`) read from the channel's history by the client.
 */
export type Recovered = {
    channel: string;
    count: number;
    fromHistory?: boolean | undefined;
};
/**
 * The `gap` event: messages of `channel` the app will not get. With `from` and `to`, exactly those
 * offsets (no longer kept); without, the channel's position was lost: reload its state.
 */
export type Gap = {
    channel: string;
    reason: string;
    from?: number | undefined;
    to?: number | undefined;
};
/**
 * The `error` event: an error no request was waiting for, or API Gateway's own (`throttled`,
 * `internal`).
 */
export type ErrorDetail = {
    code: string;
    message: string;
};
/**
 * The `resubscribed` event, after each reconnect: the channels subscribed again, and those refused.
 */
export type Resubscribed = {
    channels: string[];
    failed: string[];
};
/**
 * The `disconnected` event: the socket closed, with its close code and reason.
 */
export type Disconnected = {
    code: number;
    reason: string;
};
/**
 * The `disconnect` event: the app's backend is closing this connection (the server API's
 * `disconnect`), with its code (4000 to 4999) and reason; unless `reconnect`, the client then closes
 * for good, as after `close()`. The `disconnected` event follows when the socket closes.
 */
export type ServerDisconnect = {
    code: number;
    reason: string;
    reconnect: boolean;
};
/**
 * The `unsubscribed` event: the app's backend took this connection out of a channel (the server
 * API's `unsubscribe`); nothing of it follows, and it is not subscribed again after a reconnect.
 */
export type ServerUnsubscribe = {
    channel: string;
    reason: string;
};
/**
 * Every event the client dispatches, by name: `addEventListener` types the listener's `event.detail`.
 */
export type ClientEventMap = {
    state: CustomEvent<StateChange>;
    delivery: CustomEvent<Delivery>;
    recovered: CustomEvent<Recovered>;
    gap: CustomEvent<Gap>;
    join: CustomEvent<JoinLeave>;
    leave: CustomEvent<JoinLeave>;
    error: CustomEvent<ErrorDetail>;
    resubscribed: CustomEvent<Resubscribed>;
    disconnected: CustomEvent<Disconnected>;
    disconnect: CustomEvent<ServerDisconnect>;
    unsubscribed: CustomEvent<ServerUnsubscribe>;
    text: CustomEvent<{
        text: string;
    }>;
};
