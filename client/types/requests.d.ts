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
    constructor(code: string, message: string, retryAfterMs?: number);
    code: string;
    /** With `rate_limited`: when to send again, in milliseconds; else undefined. */
    retryAfterMs: number | undefined;
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
    /** @param {number} timeoutMs How long a request waits for its answer. */
    constructor(timeoutMs: number);
    timeoutMs: number;
    /**
     * A request for `message`, with a `ref` of its own: sent at once through `send` when there is a
     * socket to send on, else kept for {@link Requests#flush}.
     * @param {Record<string, unknown>} message
     * @param {((text: string) => void) | null} send
     * @returns {Promise<Record<string, unknown>>}
     */
    make(message: Record<string, unknown>, send: ((text: string) => void) | null): Promise<Record<string, unknown>>;
    /**
     * Sends every request that waited for a socket.
     * @param {(text: string) => void} send
     */
    flush(send: (text: string) => void): void;
    /**
     * Settles the request `message` answers, if it answers one: rejected with the API's error, or
     * resolved with the answer. Whether it did.
     * @param {Record<string, unknown>} message
     * @returns {boolean}
     */
    settle(message: Record<string, unknown>): boolean;
    /** The socket closed: what was sent on it and not answered fails with `connection_lost`. */
    lost(): void;
    /**
     * Fails every request, sent or waiting, and stops their timers.
     * @param {string} code
     * @param {string} message
     */
    failAll(code: string, message: string): void;
    #private;
}
export type Pending = {
    ref: string;
    text: string;
    resolve: (answer: Record<string, unknown>) => void;
    reject: (err: RequestError) => void;
    timer: ReturnType<typeof setTimeout>;
};
