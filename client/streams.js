// @ts-check
/**
 * Each channel in order, and every delivery once: a message that arrives ahead of a missing offset
 * waits for it (`orderWaitMs`), then the missing range is read from the channel's `history`;
 * offsets history marks as holding nothing are stepped over, offsets no longer kept are a `gap`; a
 * resubscription from a position is recovered, read from history page by page, or a `gap`; repeats
 * are dropped by offset and by `id`.
 */

import { RequestError } from "./requests.js";

/** @typedef {import("./types.js").Delivery} Delivery */
/** @typedef {import("./types.js").Position} Position */

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
 * What the streams need of their client.
 * @typedef {object} Host
 * @property {(message: Record<string, unknown>) => Promise<Record<string, unknown>>} request
 * @property {(type: string, detail: unknown) => void} emit
 * @property {(channel: string) => boolean} subscribed Whether the client is subscribed to `channel` by name.
 */

/** What a history answer marks as an offset that holds no message: stepped over, never delivered. */
const SKIP = /** @type {Delivery} */ (/** @type {unknown} */ ({ skip: true }));

/**
 * The `offset` and `epoch` of an answer, when it has them.
 * @param {Record<string, unknown>} answer
 * @returns {{offset?: number, epoch?: string}}
 */
export function position(answer) {
  return typeof answer.offset === "number" && typeof answer.epoch === "string"
    ? { offset: answer.offset, epoch: answer.epoch }
    : {};
}

export class Streams {
  /** Each channel's stream, by channel, once a position for it is known. @type {Map<string, Stream>} */
  #streams = new Map();
  /** Delivery (and join, leave) ids seen, oldest first. @type {Set<string>} */
  #seen = new Set();
  /** Deliveries dropped as repeats of one already had. */
  duplicatesDropped = 0;
  /** Set while the client is closed: no timer is armed. */
  #stopped = false;

  /**
   * @param {{orderWaitMs: number, dedupeSize: number}} options
   * @param {Host} host
   */
  constructor(options, host) {
    this.options = options;
    this.host = host;
  }

  /**
   * The last position delivered on `channel`, which a resubscription recovers from.
   * @param {string} channel
   * @returns {Position | undefined}
   */
  position(channel) {
    const stream = this.#streams.get(channel);
    return stream && { offset: stream.offset, epoch: stream.epoch };
  }

  /**
   * Whether a frame with this `id` came already; if it did, it counts as a repeat dropped.
   * @param {string} id
   */
  repeated(id) {
    if (this.#seen.has(id)) {
      this.duplicatesDropped += 1;
      return true;
    }
    return false;
  }

  /**
   * Remembers a delivery's (or a join's, a leave's) id, forgetting the oldest past `dedupeSize`.
   * @param {string} id
   */
  remember(id) {
    this.#seen.add(id);
    if (this.#seen.size > this.options.dedupeSize) {
      this.#seen.delete(this.#seen.values().next().value ?? "");
    }
  }

  /**
   * A delivery, put in its channel's order: delivered when it is the next offset, held when it
   * came ahead of one, dropped when its offset (or its id) was delivered already.
   * @param {Delivery} delivery
   */
  arrived(delivery) {
    const { channel, offset, epoch } = delivery;
    if (channel === undefined || typeof offset !== "number" || typeof epoch !== "string") {
      this.#deliver(delivery);
      return;
    }
    let stream = this.#streams.get(channel);
    if (stream && stream.epoch !== epoch) {
      // The channel's stream started again: what this client held of the old one means nothing now.
      this.gap(channel, "the channel's history was lost (a new epoch)");
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
   * What a `subscribed` answer says of the channel's stream. A first subscribe starts delivery
   * there, unless the client already follows the stream; a resubscription from a position says
   * whether what was missed is on its way (`recovered`) or the app must reload (`gap`).
   * @param {string} channel
   * @param {Record<string, unknown>} answer
   * @param {Position | undefined} since
   * @param {boolean} again Whether this is a resubscription after a reconnect.
   */
  subscribed(channel, answer, since, again) {
    const latest = position(answer);
    if (latest.offset === undefined || latest.epoch === undefined) {
      if (again && channel.endsWith("/*")) {
        // A pattern has no one stream to recover from: what its channels had meanwhile is lost.
        this.gap(channel, "a pattern's messages are not recovered");
      }
      return;
    }
    const old = this.#streams.get(channel);
    if (old && old.epoch === latest.epoch && (!since || answer.recovered === true)) {
      if (since) {
        this.host.emit("recovered", { channel, count: Math.max(0, latest.offset - since.offset) });
      }
      return;
    }
    if (old && since && old.epoch === latest.epoch && since.offset <= latest.offset) {
      // Not replayed (more was missed than the gateway replays, or some of it is no longer kept):
      // read from history from where this client is, a page at a time; what history no longer
      // keeps is a `gap` of exactly those offsets.
      this.host.emit("recovered", { channel, count: latest.offset - since.offset, fromHistory: true });
      old.until = Math.max(old.until, latest.offset);
      if (!old.filling) {
        clearTimeout(old.timer);
        void this.#fill(channel, old);
      }
      return;
    }
    if (old) {
      this.host.emit("gap", {
        channel,
        reason: since ? "the position could not be recovered" : "the channel's history was lost (a new epoch)",
      });
    }
    this.forget(channel);
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
  gap(channel, reason) {
    this.forget(channel);
    this.host.emit("gap", { channel, reason });
  }

  /**
   * Forgets `channel`'s stream, and, for a pattern, the streams of the channels known only
   * through it: they start afresh with their next message.
   * @param {string} channel
   */
  forget(channel) {
    const stream = this.#streams.get(channel);
    if (stream) {
      clearTimeout(stream.timer);
      this.#streams.delete(channel);
    }
    if (channel.endsWith("/*")) {
      const prefix = channel.slice(0, -1);
      for (const known of [...this.#streams.keys()]) {
        if (known.startsWith(prefix) && !this.host.subscribed(known)) {
          clearTimeout(this.#streams.get(known)?.timer);
          this.#streams.delete(known);
        }
      }
    }
  }

  /** Stops every stream's timer, and arms none until {@link Streams#start}: the client was closed. */
  stop() {
    this.#stopped = true;
    for (const stream of this.#streams.values()) {
      clearTimeout(stream.timer);
      stream.timer = undefined;
    }
  }

  /** Arms timers again: the client connects. */
  start() {
    this.#stopped = false;
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
    } else if (stream.timer === undefined && !stream.filling && !this.#stopped) {
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
        const answer = await this.host.request({ action: "history", channel, since, limit: 100 });
        if (this.#streams.get(channel) !== stream) {
          break;
        }
        if (answer.epoch !== stream.epoch) {
          this.gap(channel, "the channel's history was lost (a new epoch)");
          break;
        }
        /** @type {Delivery[]} */
        const messages = (Array.isArray(answer.messages) ? answer.messages : []).filter(
          (message) => typeof message.offset === "number",
        );
        for (const message of messages) {
          const offset = /** @type {number} */ (message.offset);
          if (offset > stream.offset && !stream.waiting.has(offset)) {
            stream.waiting.set(offset, message);
          }
        }
        /** @type {number[]} */
        const marked = Array.isArray(answer.missing) ? answer.missing : [];
        for (const offset of marked) {
          if (offset > stream.offset && !stream.waiting.has(offset)) {
            stream.waiting.set(offset, SKIP);
          }
        }
        // History answers the oldest it keeps after the position: what lies before its first message
        // is gone, and so is everything up to the first that waits when nothing more is kept.
        const known = [...messages.map((message) => /** @type {number} */ (message.offset)), ...marked];
        const first = known.length > 0 ? Math.min(...known) : undefined;
        const waited = stream.waiting.size > 0 ? Math.min(...stream.waiting.keys()) : undefined;
        const gone = first ?? (answer.more ? undefined : (waited ?? stream.until + 1));
        if (gone !== undefined && gone > stream.offset + 1) {
          this.host.emit("gap", { channel, from: stream.offset + 1, to: gone - 1, reason: "no longer kept" });
          stream.offset = gone - 1;
        }
        this.#advance(stream);
        if (!answer.more && stream.waiting.size > 0) {
          // What still waits for an offset history neither holds nor marks: gone before it was read.
          const next = Math.min(...stream.waiting.keys());
          this.host.emit("gap", { channel, from: stream.offset + 1, to: next - 1, reason: "no longer kept" });
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
        this.gap(channel, "the channel's history was lost (a new epoch)");
      } else if (!(err instanceof RequestError && err.code === "closed")) {
        // Not answered (the connection dropped, or a timeout): the next arrival or resubscription retries.
        this.host.emit("error", { code: err instanceof RequestError ? err.code : "internal", message: String(err) });
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
    if (this.repeated(delivery.id)) {
      return;
    }
    this.remember(delivery.id);
    this.host.emit("delivery", delivery);
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
}
