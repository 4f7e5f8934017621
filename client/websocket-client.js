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
 *   (about a second) for it, then the client reads the missing range from the channel's `history`;
 * - after a reconnect, subscribe again from the last position it delivered (`since`), so that what
 *   was published while it was away comes too — replayed by the gateway, or, when it was more than
 *   the gateway replays, read from `history` page by page — or say plainly that it cannot (`gap`);
 * - send a keepalive before API Gateway's 10-minute idle timeout;
 * - answer each request with a promise, matched to its answer by `ref` (answers come back through
 *   separate Lambda invocations and may overtake one another);
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
 * What the client knows of one channel's stream: the last offset it delivered, and the messages
 * that came ahead of a missing one, waiting for it.
 * @typedef {object} Stream
 * @property {number} offset
 * @property {string} epoch
 * @property {Map<number, Delivery>} waiting
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 * @property {boolean} filling A history read for the missing range is under way.
 * @property {number} until The channel's latest offset when a resubscription had more to catch up
 *   on than the gateway replays: read from history, page by page, up to it.
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
 * @property {typeof WebSocket} [WebSocket] The WebSocket implementation (default: the browser's).
 */

/** The API refused a request, or it could not be made: `code` says which (README: Errors). */
export class RequestError extends Error {
  /**
   * @param {string} code `invalid_channel`, `forbidden_channel`, … or, from the client itself,
   *   `timeout`, `connection_lost`, `closed`.
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/** What a history answer marks as an offset that holds no message: stepped over, never delivered. */
const SKIP = /** @type {Delivery} */ (/** @type {unknown} */ ({ skip: true }));

/**
 * The `offset` and `epoch` of an answer, when it has them.
 * @param {Record<string, unknown>} answer
 * @returns {{offset?: number, epoch?: string}}
 */
function position(answer) {
  return typeof answer.offset === "number" && typeof answer.epoch === "string"
    ? { offset: answer.offset, epoch: answer.epoch }
    : {};
}

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
  #nextRef = 1;
  /** Requests sent on the current socket, by `ref`. @type {Map<string, Pending>} */
  #inFlight = new Map();
  /** Requests waiting for the socket to open. @type {Pending[]} */
  #outbox = [];
  /** Delivery ids seen, oldest first. @type {Set<string>} */
  #seen = new Set();
  /** Each channel's stream, by channel, once a position for it is known. @type {Map<string, Stream>} */
  #streams = new Map();

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
    /** The channels and patterns this client is subscribed to, restored after every reconnect. */
    this.channels = new Set();
    /** The channels subscribed with `{joinLeave: true}`, watched again after every reconnect. */
    this.watching = new Set();
    /** Deliveries dropped as repeats of one already had. */
    this.duplicatesDropped = 0;
    /** Connections made, the first included. */
    this.connections = 0;
  }

  /**
   * The last position delivered on `channel`, which a resubscription recovers from.
   * @param {string} channel
   * @returns {{offset: number, epoch: string} | undefined}
   */
  position(channel) {
    const stream = this.#streams.get(channel);
    return stream && { offset: stream.offset, epoch: stream.epoch };
  }

  /** @returns {State} */
  get state() {
    return this.#state;
  }

  /** Starts connecting (and reconnecting after every drop, until `close()`). */
  connect() {
    if (this.#state === "idle" || this.#state === "closed") {
      this.#setState("connecting");
      void this.#open();
    }
  }

  /** Closes the connection for good: no reconnect; requests not yet answered fail with `closed`. */
  close() {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#keepaliveTimer);
    this.#setState("closed");
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000, "client closed");
    this.#failAll("closed", "the client was closed");
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
      this.#subscribed(channel, answer, undefined, false);
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
   * Who is in a channel now (README: Presence): exact counts, and the members, longest-standing
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
    this.#forget(channel);
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
   * @typedef {object} Pending
   * @property {string} ref
   * @property {string} text
   * @property {(answer: Record<string, unknown>) => void} resolve
   * @property {(err: RequestError) => void} reject
   * @property {ReturnType<typeof setTimeout>} timer
   */

  /**
   * @param {Record<string, unknown>} message
   * @returns {Promise<Record<string, unknown>>}
   */
  #request(message) {
    if (this.#state === "idle" || this.#state === "closed") {
      return Promise.reject(new RequestError("closed", "connect() first"));
    }
    const ref = String(this.#nextRef++);
    const text = JSON.stringify({ ...message, ref });
    return new Promise((resolve, reject) => {
      /** @type {Pending} */
      const pending = {
        ref,
        text,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#inFlight.delete(ref);
          this.#outbox = this.#outbox.filter((p) => p !== pending);
          reject(new RequestError("timeout", `no answer to ${message.action} within ${this.options.requestTimeoutMs} ms`));
        }, this.options.requestTimeoutMs),
      };
      if (this.#state === "open" && this.#socket) {
        this.#send(pending);
      } else {
        this.#outbox.push(pending);
      }
    });
  }

  /** @param {Pending} pending */
  #send(pending) {
    this.#inFlight.set(pending.ref, pending);
    this.#socket?.send(pending.text);
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
    // The channels first, so that what the outbox publishes reaches this connection's subscriptions;
    // each from the last position delivered, so that what was published meanwhile comes too.
    const restored = resubscribing.map((channel) => {
      const since = this.position(channel);
      const joinLeave = this.watching.has(channel);
      return this.#request({ action: "subscribe", channel, ...(since && { since }), ...(joinLeave && { joinLeave }) }).then((answer) => {
        this.#subscribed(channel, answer, since, true);
        return answer;
      });
    });
    for (const pending of this.#outbox.splice(0)) {
      this.#send(pending);
    }
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
    const ref = typeof message.ref === "string" ? message.ref : undefined;
    const pending = ref === undefined ? undefined : this.#inFlight.get(ref);
    // Deliveries first: a broadcast or publish carrying a `ref` is someone's echo of it, not an answer.
    if ((message.type === "broadcast" || message.type === "message") && typeof message.id === "string") {
      if (this.#seen.has(message.id)) {
        this.duplicatesDropped += 1;
        return;
      }
      this.#arrived(/** @type {Delivery} */ (/** @type {unknown} */ (message)));
      return;
    }
    if ((message.type === "join" || message.type === "leave") && typeof message.id === "string") {
      if (this.#seen.has(message.id)) {
        this.duplicatesDropped += 1;
        return;
      }
      this.#remember(message.id);
      this.#emit(message.type, /** @type {JoinLeave} */ (/** @type {unknown} */ (message)));
      return;
    }
    const error = message.error && typeof message.error === "object" ? /** @type {Record<string, unknown>} */ (message.error) : null;
    if (pending && ref !== undefined) {
      this.#inFlight.delete(ref);
      clearTimeout(pending.timer);
      if (error) {
        pending.reject(new RequestError(String(error.code), String(error.message)));
      } else {
        pending.resolve(message);
      }
      return;
    }
    if (error) {
      this.#emit("error", { code: String(error.code), message: String(error.message) });
    } else if (typeof message.message === "string") {
      // API Gateway's own answers: past the stage's throttle, or a failed integration.
      const code = message.message === "Too Many Requests" ? "throttled" : "internal";
      this.#emit("error", { code, message: message.message });
    }
  }

  /**
   * A delivery, put in its channel's order: delivered when it is the next offset, held when it
   * came ahead of one, dropped when its offset (or its id) was delivered already.
   * @param {Delivery} delivery
   */
  #arrived(delivery) {
    const { channel, offset, epoch } = delivery;
    if (channel === undefined || typeof offset !== "number" || typeof epoch !== "string") {
      this.#deliver(delivery);
      return;
    }
    let stream = this.#streams.get(channel);
    if (stream && stream.epoch !== epoch) {
      // The channel's stream started again: what this client held of the old one means nothing now.
      this.#gap(channel, "the channel's history was lost (a new epoch)");
      stream = undefined;
    }
    if (!stream) {
      // First news of this channel (through a pattern, or before the subscribe's answer): from here.
      stream = this.#stream(channel, offset - 1, epoch);
    }
    if (offset <= stream.offset || stream.waiting.has(offset)) {
      this.duplicatesDropped += 1;
      return;
    }
    stream.waiting.set(offset, delivery);
    this.#flush(channel, stream);
  }

  /**
   * Delivers what is next in `stream` from what waits; if anything still waits for a missing
   * offset, arms the timer after which the missing range is read from history.
   * @param {string} channel
   * @param {Stream} stream
   */
  #flush(channel, stream) {
    this.#advance(stream);
    if (stream.waiting.size === 0) {
      clearTimeout(stream.timer);
      stream.timer = undefined;
    } else if (stream.timer === undefined && !stream.filling) {
      stream.timer = setTimeout(() => void this.#fill(channel, stream), this.options.orderWaitMs);
    }
  }

  /**
   * Reads the offsets a channel's waiting messages are missing from its history: those found are
   * delivered in order, those history says hold no message (a publish that failed once numbered)
   * are stepped over, and those no longer kept are a `gap`.
   * @param {string} channel
   * @param {Stream} stream
   */
  async #fill(channel, stream) {
    stream.timer = undefined;
    stream.filling = true;
    try {
      while ((stream.waiting.size > 0 || stream.offset < stream.until) && this.#streams.get(channel) === stream) {
        const before = stream.offset;
        const since = { offset: stream.offset, epoch: stream.epoch };
        const answer = await this.#request({ action: "history", channel, since, limit: 100 });
        if (this.#streams.get(channel) !== stream) {
          break;
        }
        if (answer.epoch !== stream.epoch) {
          this.#gap(channel, "the channel's history was lost (a new epoch)");
          break;
        }
        const messages = (Array.isArray(answer.messages) ? answer.messages : []).filter(
          (message) => typeof message.offset === "number",
        );
        for (const message of messages) {
          if (message.offset > stream.offset && !stream.waiting.has(message.offset)) {
            stream.waiting.set(message.offset, message);
          }
        }
        for (const offset of Array.isArray(answer.missing) ? answer.missing : []) {
          if (offset > stream.offset && !stream.waiting.has(offset)) {
            stream.waiting.set(offset, SKIP);
          }
        }
        // History answers the oldest it keeps after the position: what lies before its first message
        // is gone, and so is everything up to the first that waits when nothing more is kept.
        const marked = Array.isArray(answer.missing) ? answer.missing : [];
        const known = [...messages.map((message) => message.offset), ...marked];
        const first = known.length > 0 ? Math.min(...known) : undefined;
        const waited = stream.waiting.size > 0 ? Math.min(...stream.waiting.keys()) : undefined;
        const gone = first ?? (answer.more ? undefined : (waited ?? stream.until + 1));
        if (gone !== undefined && gone > stream.offset + 1) {
          this.#emit("gap", { channel, from: stream.offset + 1, to: gone - 1, reason: "no longer kept" });
          stream.offset = gone - 1;
        }
        this.#advance(stream);
        if (!answer.more && stream.waiting.size > 0) {
          // What still waits for an offset history neither holds nor marks: gone before it was read.
          const next = Math.min(...stream.waiting.keys());
          this.#emit("gap", { channel, from: stream.offset + 1, to: next - 1, reason: "no longer kept" });
          stream.offset = next - 1;
          this.#advance(stream);
        }
        if (stream.offset === before) {
          break;
        }
      }
    } catch (err) {
      if (err instanceof RequestError && err.code === "unrecoverable_position" && this.#streams.get(channel) === stream) {
        // The stream this client followed is gone (a new epoch): what it waits for can never come.
        this.#gap(channel, "the channel's history was lost (a new epoch)");
      } else {
        // Not answered (the connection dropped, or a timeout): the next arrival or resubscription retries.
        this.#emit("error", { code: err instanceof RequestError ? err.code : "internal", message: String(err) });
      }
    } finally {
      stream.filling = false;
      if (this.#streams.get(channel) === stream) {
        this.#flush(channel, stream);
      }
    }
  }

  /**
   * Delivers what waits from the next offset on, stepping over offsets history marked as holding
   * nothing.
   * @param {Stream} stream
   */
  #advance(stream) {
    let next;
    while ((next = stream.waiting.get(stream.offset + 1))) {
      stream.waiting.delete(stream.offset + 1);
      stream.offset += 1;
      if (next !== SKIP) {
        this.#deliver(next);
      }
    }
  }

  /**
   * Emits a delivery once per id.
   * @param {Delivery} delivery
   */
  #deliver(delivery) {
    if (this.#seen.has(delivery.id)) {
      this.duplicatesDropped += 1;
      return;
    }
    this.#remember(delivery.id);
    this.#emit("delivery", delivery);
  }

  /**
   * Remembers a delivery's (or a join's, a leave's) id, forgetting the oldest past `dedupeSize`.
   * @param {string} id
   */
  #remember(id) {
    this.#seen.add(id);
    if (this.#seen.size > this.options.dedupeSize) {
      this.#seen.delete(this.#seen.values().next().value ?? "");
    }
  }

  /**
   * What a `subscribed` answer says of the channel's stream. A first subscribe starts delivery
   * there, unless the client already follows the stream; a resubscription from a position says
   * whether what was missed is on its way (`recovered`) or the app must reload (`gap`).
   * @param {string} channel
   * @param {Record<string, unknown>} answer
   * @param {{offset: number, epoch: string} | undefined} since
   * @param {boolean} again Whether this is a resubscription after a reconnect.
   */
  #subscribed(channel, answer, since, again) {
    const latest = position(answer);
    if (latest.offset === undefined || latest.epoch === undefined) {
      if (again && channel.endsWith("/*")) {
        // A pattern has no one stream to recover from: what its channels had meanwhile is lost.
        this.#gap(channel, "a pattern's messages are not recovered");
      }
      return;
    }
    const old = this.#streams.get(channel);
    if (old && old.epoch === latest.epoch && (!since || answer.recovered === true)) {
      if (since) {
        this.#emit("recovered", { channel, count: Math.max(0, latest.offset - since.offset) });
      }
      return;
    }
    if (old && since && old.epoch === latest.epoch && since.offset <= latest.offset) {
      // Not replayed (more was missed than the gateway replays, or some of it is no longer kept):
      // read from history from where this client is, a page at a time; what history no longer
      // keeps is a `gap` of exactly those offsets.
      this.#emit("recovered", { channel, count: latest.offset - since.offset, fromHistory: true });
      old.until = Math.max(old.until, latest.offset);
      if (!old.filling) {
        clearTimeout(old.timer);
        void this.#fill(channel, old);
      }
      return;
    }
    if (old) {
      this.#emit("gap", {
        channel,
        reason: since ? "the position could not be recovered" : "the channel's history was lost (a new epoch)",
      });
    }
    this.#forget(channel);
    const stream = this.#stream(channel, latest.offset, latest.epoch);
    // Live messages that came before this answer, after its position, are still this stream's.
    for (const [offset, delivery] of old?.waiting ?? []) {
      if (offset > latest.offset && delivery.epoch === latest.epoch) {
        stream.waiting.set(offset, delivery);
      }
    }
    this.#flush(channel, stream);
  }

  /**
   * Says the app must reload `channel` (its position was lost) and starts it afresh.
   * @param {string} channel
   * @param {string} reason
   */
  #gap(channel, reason) {
    this.#forget(channel);
    this.#emit("gap", { channel, reason });
  }

  /**
   * @param {string} channel
   * @param {number} offset
   * @param {string} epoch
   * @returns {Stream}
   */
  #stream(channel, offset, epoch) {
    /** @type {Stream} */
    const stream = { offset, epoch, waiting: new Map(), timer: undefined, filling: false, until: 0 };
    this.#streams.set(channel, stream);
    return stream;
  }

  /** @param {string} channel */
  #forget(channel) {
    const stream = this.#streams.get(channel);
    if (stream) {
      clearTimeout(stream.timer);
      this.#streams.delete(channel);
    }
    if (channel.endsWith("/*")) {
      // Channels known only through the pattern start afresh with their next message.
      const prefix = channel.slice(0, -1);
      for (const known of [...this.#streams.keys()]) {
        if (known.startsWith(prefix) && !this.channels.has(known)) {
          clearTimeout(this.#streams.get(known)?.timer);
          this.#streams.delete(known);
        }
      }
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
    // Sent but unanswered: it may or may not have been done, which only the caller can judge.
    for (const pending of this.#inFlight.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError("connection_lost", "the connection closed before the answer came"));
    }
    this.#inFlight.clear();
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
   * @param {string} code
   * @param {string} message
   */
  #failAll(code, message) {
    for (const pending of [...this.#inFlight.values(), ...this.#outbox]) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError(code, message));
    }
    this.#inFlight.clear();
    this.#outbox = [];
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
