// @ts-check
/**
 * Requests and their answers, matched by the `ref` each request carries: answers come back through
 * separate Lambda invocations and may overtake one another. A request made while the socket is not
 * open waits for it; one sent on a socket that closes before its answer fails with
 * `connection_lost` (it may or may not have been done, which only its caller can judge); one whose
 * answer does not come within the timeout fails with `timeout`.
 */

/** The API refused a request, or it could not be made: `code` says which (docs/protocol.md, Errors). */
export class RequestError extends Error {
  /**
   * @param {string} code `invalid_channel`, `forbidden_channel`, `rate_limited`, … or, from the
   *   client itself, `timeout`, `connection_lost`, `closed`.
   * @param {string} message
   * @param {number} [retryAfterMs] With `rate_limited`: milliseconds until one more message fits.
   */
  constructor(code, message, retryAfterMs) {
    super(message);
    this.name = "RequestError";
    this.code = code;
    /** With `rate_limited`: when to send again, in milliseconds; else undefined. */
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * @typedef {object} Pending
 * @property {string} ref
 * @property {string} text
 * @property {(answer: Record<string, unknown>) => void} resolve
 * @property {(err: RequestError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

export class Requests {
  #nextRef = 1;
  /** Requests sent on the current socket, by `ref`. @type {Map<string, Pending>} */
  #inFlight = new Map();
  /** Requests waiting for the socket to open. @type {Pending[]} */
  #waiting = [];

  /** @param {number} timeoutMs How long a request waits for its answer. */
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
  }

  /**
   * A request for `message`, with a `ref` of its own: sent at once through `send` when there is a
   * socket to send on, else kept for {@link Requests#flush}.
   * @param {Record<string, unknown>} message
   * @param {((text: string) => void) | null} send
   * @returns {Promise<Record<string, unknown>>}
   */
  make(message, send) {
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
          this.#waiting = this.#waiting.filter((p) => p !== pending);
          reject(new RequestError("timeout", `no answer to ${message.action} within ${this.timeoutMs} ms`));
        }, this.timeoutMs),
      };
      if (send) {
        this.#send(pending, send);
      } else {
        this.#waiting.push(pending);
      }
    });
  }

  /**
   * Sends every request that waited for a socket.
   * @param {(text: string) => void} send
   */
  flush(send) {
    for (const pending of this.#waiting.splice(0)) {
      this.#send(pending, send);
    }
  }

  /**
   * Settles the request `message` answers, if it answers one: rejected with the API's error, or
   * resolved with the answer. Whether it did.
   * @param {Record<string, unknown>} message
   * @returns {boolean}
   */
  settle(message) {
    const ref = typeof message.ref === "string" ? message.ref : undefined;
    const pending = ref === undefined ? undefined : this.#inFlight.get(ref);
    if (!pending || ref === undefined) {
      return false;
    }
    this.#inFlight.delete(ref);
    clearTimeout(pending.timer);
    const error = message.error && typeof message.error === "object" ? /** @type {Record<string, unknown>} */ (message.error) : null;
    if (error) {
      const retryAfterMs = typeof error.retryAfterMs === "number" ? error.retryAfterMs : undefined;
      pending.reject(new RequestError(String(error.code), String(error.message), retryAfterMs));
    } else {
      pending.resolve(message);
    }
    return true;
  }

  /** The socket closed: what was sent on it and not answered fails with `connection_lost`. */
  lost() {
    for (const pending of this.#inFlight.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError("connection_lost", "the connection closed before the answer came"));
    }
    this.#inFlight.clear();
  }

  /**
   * Fails every request, sent or waiting, and stops their timers.
   * @param {string} code
   * @param {string} message
   */
  failAll(code, message) {
    for (const pending of [...this.#inFlight.values(), ...this.#waiting]) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError(code, message));
    }
    this.#inFlight.clear();
    this.#waiting = [];
  }

  /**
   * @param {Pending} pending
   * @param {(text: string) => void} send
   */
  #send(pending, send) {
    this.#inFlight.set(pending.ref, pending);
    send(pending.text);
  }
}
