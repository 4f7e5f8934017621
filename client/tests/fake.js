// A WebSocket the tests drive by hand, and a way to count the timers the client leaves running.

/** Every socket the client made, in order. */
export const sockets = [];

export class FakeSocket {
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    /** @type {string[]} */
    this.sent = [];
    /** @type {{code: number, reason: string} | null} */
    this.closed = null;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    sockets.push(this);
  }

  /** @param {string} text */
  send(text) {
    this.sent.push(text);
  }

  close(code, reason) {
    this.closed = { code, reason };
  }

  // What the server (the test) does.
  open() {
    this.onopen?.();
  }

  /** @param {unknown} frame A JSON value (sent as its text) or a string (sent as it is). */
  receive(frame) {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  drop(code = 1006, reason = "") {
    this.onclose?.({ code, reason });
  }

  /** The requests sent, parsed. */
  requests() {
    return this.sent.map((text) => JSON.parse(text));
  }

  /** The last request sent with `action`, parsed. */
  last(action) {
    return this.requests().filter((r) => r.action === action).at(-1);
  }

  /** Answers the last request with `action`: `answer` with its `ref`. */
  answer(action, answer) {
    const request = this.last(action);
    if (!request) throw new Error(`no ${action} was sent`);
    this.receive({ ...answer, ref: request.ref });
  }
}

/** Lets the client's promises and awaited tokens run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Wraps setTimeout and clearTimeout (after `mock.timers.enable`) to count the timers armed and not
 * yet fired or cleared.
 */
export function countTimers() {
  const live = new Set();
  const set = globalThis.setTimeout;
  const clear = globalThis.clearTimeout;
  globalThis.setTimeout = (fn, ms, ...args) => {
    const handle = set(() => {
      live.delete(handle);
      fn(...args);
    }, ms);
    live.add(handle);
    return handle;
  };
  globalThis.clearTimeout = (handle) => {
    live.delete(handle);
    clear(handle);
  };
  return {
    live: () => live.size,
    restore: () => {
      globalThis.setTimeout = set;
      globalThis.clearTimeout = clear;
    },
  };
}

/** A message frame of `channel`, as the gateway delivers it. */
export function message(channel, offset, epoch = "e1", data = offset) {
  return {
    type: "message",
    channel,
    id: `00000000-0000-4000-8000-${String(offset).padStart(12, "0")}`,
    offset,
    epoch,
    sentAt: 1_800_000_000_000 + offset,
    data,
  };
}
