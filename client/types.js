// @ts-check
/**
 * The types the browser client speaks in: what it delivers and tells, its options, and the events
 * it dispatches ({@link ClientEventMap}), for editors and TypeScript consumers. Types only: nothing
 * here runs, and no module imports this one at run time.
 */

/**
 * `idle` before `connect()`, `connecting` for the first attempt, `open`, `reconnecting` between
 * attempts after a drop, `closed` after `close()`.
 * @typedef {"idle" | "connecting" | "open" | "reconnecting" | "closed"} State
 */

/**
 * A message delivered to this connection: a broadcast, or a message on a subscribed channel.
 * @typedef {object} Delivery
 * @property {"broadcast" | "message"} type
 * @property {string} id Unique per message; the client has already dropped repeats.
 * @property {string} [channel] The channel a message was published to.
 * @property {string} [from] The sender's connection id (absent when a backend published).
 * @property {string} [user] The sender's `sub`, when it connected with a token.
 * @property {number} sentAt When API Gateway received the message, epoch milliseconds.
 * @property {unknown} data What the sender sent.
 * @property {number} [offset] The message's place in its channel: 1 for the first, +1 for each after.
 * @property {string} [epoch] The channel stream's epoch, which changes when its history is lost.
 */

/**
 * A member of a channel: a connection subscribed to it by name.
 * @typedef {object} Member
 * @property {string} connection Its connection id.
 * @property {string} [user] Its token's `sub` (absent for an anonymous connection).
 * @property {Record<string, unknown>} [info] Its token's `info` claim, when it has one.
 * @property {number} since When it joined, epoch milliseconds.
 */

/**
 * Who is in a channel now: exact counts, and the longest-standing members (at most 1,000).
 * @typedef {object} Presence
 * @property {string} channel
 * @property {number} clients Connections that are members.
 * @property {number} users Distinct users among them.
 * @property {Member[]} members
 * @property {boolean} truncated Whether members were left out of `members`.
 */

/**
 * What a `join` or `leave` event says: a member came to or left a channel watched with
 * `{joinLeave: true}`.
 * @typedef {object} JoinLeave
 * @property {"join" | "leave"} type
 * @property {string} channel
 * @property {string} id Unique per frame; the client has already dropped repeats.
 * @property {string} connection
 * @property {string} [user]
 * @property {Record<string, unknown>} [info] On a `join`, the member's `info`.
 * @property {number} sentAt
 */

/**
 * A position in a channel's stream: the last message a client has of it.
 * @typedef {object} Position
 * @property {number} offset
 * @property {string} epoch
 */

/**
 * @typedef {object} Options
 * @property {string | (() => string | Promise<string>)} [token] A JWT, or a function returning a
 *   fresh one, called before every attempt (tokens expire; connections outlive them).
 * @property {number} [minBackoffMs] The first reconnect's ceiling (default 500); each failed
 *   attempt doubles it, up to `maxBackoffMs`; the delay is drawn uniformly below it.
 * @property {number} [maxBackoffMs] Default 30,000.
 * @property {number} [keepaliveMs] How long the connection may stay silent before the client sends
 *   a keepalive (default 540,000: nine minutes, under API Gateway's ten).
 * @property {number} [requestTimeoutMs] How long a request waits for its answer (default 10,000).
 * @property {number} [dedupeSize] How many recent delivery ids are remembered (default 10,000).
 * @property {number} [orderWaitMs] How long a message that came ahead of a missing offset waits for
 *   it before the client reads the missing range from history (default 1,000).
 * @property {typeof WebSocket} [WebSocket] The WebSocket implementation (default: the global one).
 */

/**
 * The `state` event: the client's new state; `attempt` and `delayMs` when it waits to reconnect.
 * @typedef {object} StateChange
 * @property {State} state
 * @property {number} [attempt]
 * @property {number} [delayMs]
 */

/**
 * The `recovered` event: what a resubscription missed is on its way — replayed by the gateway, or
 * (`fromHistory`) read from the channel's history by the client.
 * @typedef {object} Recovered
 * @property {string} channel
 * @property {number} count
 * @property {boolean} [fromHistory]
 */

/**
 * The `gap` event: messages of `channel` the app will not get. With `from` and `to`, exactly those
 * offsets (no longer kept); without, the channel's position was lost: reload its state.
 * @typedef {object} Gap
 * @property {string} channel
 * @property {string} reason
 * @property {number} [from]
 * @property {number} [to]
 */

/**
 * The `error` event: an error no request was waiting for, or API Gateway's own (`throttled`,
 * `internal`).
 * @typedef {object} ErrorDetail
 * @property {string} code
 * @property {string} message
 */

/**
 * The `resubscribed` event, after each reconnect: the channels subscribed again, and those refused.
 * @typedef {object} Resubscribed
 * @property {string[]} channels
 * @property {string[]} failed
 */

/**
 * The `disconnected` event: the socket closed, with its close code and reason.
 * @typedef {object} Disconnected
 * @property {number} code
 * @property {string} reason
 */

/**
 * The `disconnect` event: the app's backend is closing this connection (the server API's
 * `disconnect`), with its code (4000 to 4999) and reason; unless `reconnect`, the client then closes
 * for good, as after `close()`. The `disconnected` event follows when the socket closes.
 * @typedef {object} ServerDisconnect
 * @property {number} code
 * @property {string} reason
 * @property {boolean} reconnect
 */

/**
 * The `unsubscribed` event: the app's backend took this connection out of a channel (the server
 * API's `unsubscribe`); nothing of it follows, and it is not subscribed again after a reconnect.
 * @typedef {object} ServerUnsubscribe
 * @property {string} channel
 * @property {string} reason
 */

/**
 * Every event the client dispatches, by name: `addEventListener` types the listener's `event.detail`.
 * @typedef {object} ClientEventMap
 * @property {CustomEvent<StateChange>} state
 * @property {CustomEvent<Delivery>} delivery
 * @property {CustomEvent<Recovered>} recovered
 * @property {CustomEvent<Gap>} gap
 * @property {CustomEvent<JoinLeave>} join
 * @property {CustomEvent<JoinLeave>} leave
 * @property {CustomEvent<ErrorDetail>} error
 * @property {CustomEvent<Resubscribed>} resubscribed
 * @property {CustomEvent<Disconnected>} disconnected
 * @property {CustomEvent<ServerDisconnect>} disconnect
 * @property {CustomEvent<ServerUnsubscribe>} unsubscribed
 * @property {CustomEvent<{text: string}>} text
 */

export {};
