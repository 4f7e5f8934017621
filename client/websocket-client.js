// @ts-check
/**
 * A browser client for the serverless WebSocket API: one ES module, no dependencies, no build step.
 *
 * What every client of the API must do, done once:
 * - connect with an optional token (`?token=`, the `$connect` authorizer's identity source: browsers
 *   cannot set headers on a WebSocket);
 * - reconnect after any drop with exponential backoff and full jitter, so that a fleet of clients
 *   cut off at once does not come back at once;
 * - subscribe again to its channels after a reconnect (subscriptions belong to a connection);
 * - drop deliveries it has already had, by `id` and by offset (delivery is at least once);
 * - deliver each channel's messages in offset order: one that arrives ahead of a missing offset waits
 *   (about a second) for it, then the client reads the missing range from the channel's `history`
 *   (`streams.js`, which also drops repeats and recovers after a reconnect);
 * - after a reconnect, subscribe again from the last position it delivered (`since`), so that what
 *   was published while it was away comes too — replayed by the gateway, or, when it was more than
 *   the gateway replays, read from `history` page by page — or say plainly that it cannot (`gap`);
 * - send a keepalive before API Gateway's 10-minute idle timeout;
 * - answer each request with a promise, matched to its answer by `ref` (answers come back through
 *   separate Lambda invocations and may overtake one another: `requests.js`);
 * - tell who is in a channel (`presence`), and who joins and leaves it (`join`, `leave` events for
 *   the channels subscribed with `{joinLeave: true}`, kept across reconnects).
 *
 * ```js
 * import { WebSocketClient } from "./websocket-client.js";
 * const client = new WebSocketClient("wss://abc.execute-api.eu-west-1.amazonaws.com/Prod", { token });
 * client.addEventListener("delivery", (event) => console.log(event.detail.channel, event.detail.data));
 * client.addEventListener("state", (event) => console.log(event.detail.state));
 * client.addEventListener("gap", (event) => reload(event.detail.channel)); // positions lost: reload
 * client.addEventListener("recovered", (event) => console.log(event.detail.channel, event.detail.count));
 * client.connect();
 * await client.subscribe("chat/*");
 * const { id } = await client.publish("chat/general", { text: "hello" });
 * ```
 */

import { RequestError, Requests } from "./requests.js";
import { Streams, position } from "./streams.js";

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
  /** @type {State} */
  #state = "idle";
  /** @type {WebSocket | null} */
  #socket = null;
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #keepaliveTimer;
  /** @type {Requests} */
  #requests;
  /** @type {Streams} */
  #streams;

  /**
   * @param {string} url The stage's `ws://` or `wss://` URL.
   * @param {Options} [options]
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {
      minBackoffMs: 500,
      maxBackoffMs: 30_000,
      keepaliveMs: 540_000,
      requestTimeoutMs: 10_000,
      dedupeSize: 10_000,
      orderWaitMs: 1_000,
      ...options,
    };
    /** The channels and patterns this client is subscribed to, restored after every reconnect. @type {Set<string>} */
    this.channels = new Set();
    /** The channels subscribed with `{joinLeave: true}`, watched again after every reconnect. @type {Set<string>} */
    this.watching = new Set();
    /** Connections made, the first included. */
    this.connections = 0;
    this.#requests = new Requests(this.options.requestTimeoutMs);
    this.#streams = new Streams(this.options, {
      request: (message) => this.#request(message),
      emit: (type, detail) => this.#emit(type, detail),
      subscribed: (channel) => this.channels.has(channel),
    });
  }

  /**
   * Listens for one of the client's events, with `event.detail` typed by {@link ClientEventMap}.
   * @template {keyof ClientEventMap} K
   * @overload
   * @param {K} type
   * @param {(event: ClientEventMap[K]) => void} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
  }

  /**
   * @template {keyof ClientEventMap} K
   * @overload
   * @param {K} type
   * @param {(event: ClientEventMap[K]) => void} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  removeEventListener(type, listener, options) {
    super.removeEventListener(type, listener, options);
  }

  /** Deliveries dropped as repeats of one already had. */
  get duplicatesDropped() {
    return this.#streams.duplicatesDropped;
  }

  /**
   * The last position delivered on `channel`, which a resubscription recovers from.
   * @param {string} channel
   * @returns {Position | undefined}
   */
  position(channel) {
    return this.#streams.position(channel);
  }

  /** @returns {State} */
  get state() {
    return this.#state;
  }

  /** Starts connecting (and reconnecting after every drop, until `close()`). */
  connect() {
    if (this.#state === "idle" || this.#state === "closed") {
      this.#streams.start();
      this.#setState("connecting");
      void this.#open();
    }
  }

  /** Closes the connection for good: no reconnect, no timer left; requests not yet answered fail with `closed`. */
  close() {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#keepaliveTimer);
    this.#streams.stop();
    this.#setState("closed");
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000, "client closed");
    this.#requests.failAll("closed", "the client was closed");
  }

  /**
   * Subscribes to a channel, or to every channel below a pattern ending in `/*`; resolves with the
   * channel's latest `offset` and its `epoch` (a channel's; a pattern has none). With
   * `{joinLeave: true}` (a channel only) the client also gets `join` and `leave` events for it.
   * @param {string} channel
   * @param {{joinLeave?: boolean}} [options]
   * @returns {Promise<{channel: string, offset?: number, epoch?: string}>}
   */
  async subscribe(channel, options = {}) {
    const joinLeave = options.joinLeave === true;
    this.channels.add(channel);
    if (joinLeave) {
      this.watching.add(channel);
    } else {
      this.watching.delete(channel);
    }
    try {
      const answer = await this.#request({ action: "subscribe", channel, ...(joinLeave && { joinLeave }) });
      this.#streams.subscribed(channel, answer, undefined, false);
      return { channel: String(answer.channel), ...position(answer) };
    } catch (err) {
      // Refused (forbidden, invalid, too many): not to be restored after a reconnect either.
      if (err instanceof RequestError && !["timeout", "connection_lost", "closed"].includes(err.code)) {
        this.channels.delete(channel);
        this.watching.delete(channel);
      }
      throw err;
    }
  }

  /**
   * Who is in a channel now (docs/protocol.md, Presence): exact counts, and the members, longest-standing
   * first.
   * @param {string} channel
   * @returns {Promise<Presence>}
   */
  async presence(channel) {
    const answer = await this.#request({ action: "presence", channel });
    return {
      channel: String(answer.channel),
      clients: Number(answer.clients),
      users: Number(answer.users),
      members: Array.isArray(answer.members) ? answer.members : [],
      truncated: answer.truncated === true,
    };
  }

  /**
   * @param {string} channel
   * @returns {Promise<{channel: string}>}
   */
  async unsubscribe(channel) {
    this.channels.delete(channel);
    this.watching.delete(channel);
    this.#streams.forget(channel);
    const answer = await this.#request({ action: "unsubscribe", channel });
    return { channel: String(answer.channel) };
  }

  /**
   * Publishes `data` to a channel; resolves once it is queued, with the `id` subscribers will see
   * and its place in the channel (`offset`, `epoch`). What one client publishes, each after the
   * last one resolved, reaches every subscriber in that order.
   * @param {string} channel
   * @param {unknown} data
   * @returns {Promise<{id: string, offset?: number, epoch?: string}>}
   */
  async publish(channel, data) {
    const answer = await this.#request({ action: "publish", channel, data });
    return { id: String(answer.id), ...position(answer) };
  }

  /**
   * A channel's kept messages, oldest first: the newest `limit` (1 to 100, default 50), or with
   * `since` those after that position.
   * @param {string} channel
   * @param {{limit?: number, since?: {offset: number, epoch: string}}} [options]
   * @returns {Promise<Delivery[]>}
   */
  async history(channel, options = {}) {
    const answer = await this.#request({ action: "history", channel, ...options });
    return Array.isArray(answer.messages) ? answer.messages : [];
  }

  /**
   * Sends `data` to every connection; resolves once it is queued, with its `id`.
   * @param {unknown} data
   * @returns {Promise<{id: string}>}
   */
  async broadcast(data) {
    const answer = await this.#request({ action: "broadcast", data });
    return { id: String(answer.id) };
  }

  /**
   * Has `data` sent back to this connection alone.
   * @param {unknown} data
   * @returns {Promise<unknown>}
   */
  async echo(data) {
    const answer = await this.#request({ action: "echo", data });
    return answer.data;
  }

  /**
   * @param {Record<string, unknown>} message
   * @returns {Promise<Record<string, unknown>>}
   */
  #request(message) {
    if (this.#state === "idle" || this.#state === "closed") {
      return Promise.reject(new RequestError("closed", "connect() first"));
    }
    const socket = this.#state === "open" ? this.#socket : null;
    return this.#requests.make(message, socket && ((text) => this.#send(socket, text)));
  }

  /**
   * @param {WebSocket} socket
   * @param {string} text
   */
  #send(socket, text) {
    socket.send(text);
    this.#armKeepalive();
  }

  async #open() {
    let url = this.url;
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    if (this.#state === "closed") {
      return;
    }
    if (token) {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    }
    const Socket = this.options.WebSocket ?? WebSocket;
    let socket;
    try {
      socket = new Socket(url);
    } catch (err) {
      this.#emit("error", { code: "invalid_url", message: String(err) });
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    socket.onopen = () => this.#opened(socket);
    socket.onmessage = (event) => this.#received(event.data);
    socket.onclose = (event) => this.#closed(socket, event.code, event.reason);
  }

  /** @param {WebSocket} socket */
  #opened(socket) {
    if (socket !== this.#socket) {
      return;
    }
    this.#attempt = 0;
    this.connections += 1;
    const resubscribing = this.connections > 1 ? [...this.channels] : [];
    this.#setState("open");
    // The channels first, so that what waited to be sent reaches this connection's subscriptions;
    // each from the last position delivered, so that what was published meanwhile comes too.
    const restored = resubscribing.map((channel) => {
      const since = this.position(channel);
      const joinLeave = this.watching.has(channel);
      return this.#request({ action: "subscribe", channel, ...(since && { since }), ...(joinLeave && { joinLeave }) }).then((answer) => {
        this.#streams.subscribed(channel, answer, since, true);
        return answer;
      });
    });
    this.#requests.flush((text) => this.#send(socket, text));
    if (resubscribing.length > 0) {
      void Promise.allSettled(restored).then((results) => {
        const failed = resubscribing.filter((_, i) => results[i].status === "rejected");
        this.#emit("resubscribed", { channels: resubscribing, failed });
      });
    }
    this.#armKeepalive();
  }

  /** @param {unknown} data */
  #received(data) {
    this.#armKeepalive();
    if (typeof data !== "string") {
      return;
    }
    /** @type {Record<string, unknown> | null} */
    let message = null;
    try {
      const parsed = JSON.parse(data);
      message = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : null;
    } catch {
      // Plain text: an echo of plain text, which this client never sends.
    }
    if (message === null) {
      this.#emit("text", { text: data });
      return;
    }
    // Deliveries first: a broadcast or publish carrying a `ref` is someone's echo of it, not an answer.
    if ((message.type === "broadcast" || message.type === "message") && typeof message.id === "string") {
      if (!this.#streams.repeated(message.id)) {
        this.#streams.arrived(/** @type {Delivery} */ (/** @type {unknown} */ (message)));
      }
      return;
    }
    if ((message.type === "join" || message.type === "leave") && typeof message.id === "string") {
      if (!this.#streams.repeated(message.id)) {
        this.#streams.remember(message.id);
        this.#emit(message.type, /** @type {JoinLeave} */ (/** @type {unknown} */ (message)));
      }
      return;
    }
    // The app's backend, through the server API: this connection is being closed, or taken out of
    // a channel. Neither answers a request (they carry no `ref`).
    if (message.type === "disconnect" && message.ref === undefined) {
      const detail = { code: Number(message.code), reason: String(message.reason ?? ""), reconnect: message.reconnect === true };
      this.#emit("disconnect", detail);
      if (!detail.reconnect) {
        // Told not to come back: closed for good, as close() does, rather than reconnecting into a ban.
        this.close();
      }
      return;
    }
    if (message.type === "unsubscribed" && message.ref === undefined && typeof message.channel === "string") {
      // Not subscribed again after a reconnect: the backend ended it.
      this.channels.delete(message.channel);
      this.watching.delete(message.channel);
      this.#emit("unsubscribed", { channel: message.channel, reason: String(message.reason ?? "") });
      return;
    }
    if (this.#requests.settle(message)) {
      return;
    }
    const error = message.error && typeof message.error === "object" ? /** @type {Record<string, unknown>} */ (message.error) : null;
    if (error) {
      this.#emit("error", { code: String(error.code), message: String(error.message) });
    } else if (typeof message.message === "string") {
      // API Gateway's own answers: past the stage's throttle, or a failed integration.
      const code = message.message === "Too Many Requests" ? "throttled" : "internal";
      this.#emit("error", { code, message: message.message });
    }
  }

  /**
   * @param {WebSocket} socket
   * @param {number} code
   * @param {string} reason
   */
  #closed(socket, code, reason) {
    if (socket !== this.#socket) {
      return;
    }
    this.#socket = null;
    clearTimeout(this.#keepaliveTimer);
    this.#requests.lost();
    this.#emit("disconnected", { code, reason });
    if (this.#state !== "closed") {
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect() {
    const ceiling = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** this.#attempt);
    this.#attempt += 1;
    const delay = Math.random() * ceiling;
    this.#setState("reconnecting", { attempt: this.#attempt, delayMs: Math.round(delay) });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#open(), delay);
  }

  /** Restarts the idle countdown; when it runs out, an echo keeps the connection alive. */
  #armKeepalive() {
    clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = setTimeout(() => {
      if (this.#state === "open") {
        this.echo("keepalive").catch(() => {});
      }
    }, this.options.keepaliveMs);
  }

  /**
   * @param {State} state
   * @param {Record<string, unknown>} [detail]
   */
  #setState(state, detail = {}) {
    this.#state = state;
    this.#emit("state", { state, ...detail });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
