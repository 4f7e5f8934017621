/**
 * The `offset` and `epoch` of an answer, when it has them.
 * @param {Record<string, unknown>} answer
 * @returns {{offset?: number, epoch?: string}}
 */
export function position(answer: Record<string, unknown>): {
    offset?: number;
    epoch?: string;
};
export class Streams {
    /**
     * @param {{orderWaitMs: number, dedupeSize: number}} options
     * @param {Host} host
     */
    constructor(options: {
        orderWaitMs: number;
        dedupeSize: number;
    }, host: Host);
    /** Deliveries dropped as repeats of one already had. */
    duplicatesDropped: number;
    options: {
        orderWaitMs: number;
        dedupeSize: number;
    };
    host: Host;
    /**
     * The last position delivered on `channel`, which a resubscription recovers from.
     * @param {string} channel
     * @returns {Position | undefined}
     */
    position(channel: string): Position | undefined;
    /**
     * Whether a frame with this `id` came already; if it did, it counts as a repeat dropped.
     * @param {string} id
     */
    repeated(id: string): boolean;
    /**
     * Remembers a delivery's (or a join's, a leave's) id, forgetting the oldest past `dedupeSize`.
     * @param {string} id
     */
    remember(id: string): void;
    /**
     * A delivery, put in its channel's order: delivered when it is the next offset, held when it
     * came ahead of one, dropped when its offset (or its id) was delivered already.
     * @param {Delivery} delivery
     */
    arrived(delivery: Delivery): void;
    /**
     * What a `subscribed` answer says of the channel's stream. A first subscribe starts delivery
     * there, unless the client already follows the stream; a resubscription from a position says
     * whether what was missed is on its way (`recovered`) or the app must reload (`gap`).
     * @param {string} channel
     * @param {Record<string, unknown>} answer
     * @param {Position | undefined} since
     * @param {boolean} again Whether this is a resubscription after a reconnect.
     */
    subscribed(channel: string, answer: Record<string, unknown>, since: Position | undefined, again: boolean): void;
    /**
     * Says the app must reload `channel` (its position was lost) and starts it afresh.
     * @param {string} channel
     * @param {string} reason
     */
    gap(channel: string, reason: string): void;
    /**
     * Forgets `channel`'s stream, and, for a pattern, the streams of the channels known only
     * through it: they start afresh with their next message.
     * @param {string} channel
     */
    forget(channel: string): void;
    /** Stops every stream's timer, and arms none until {@link Streams#start}: the client was closed. */
    stop(): void;
    /** Arms timers again: the client connects. */
    start(): void;
    #private;
}
export type Delivery = import("./types.js").Delivery;
export type Position = import("./types.js").Position;
/**
 * What the client knows of one channel's stream: the last offset it delivered, and the messages
 * that came ahead of a missing one, waiting for it.
 */
export type Stream = {
    offset: number;
    epoch: string;
    waiting: Map<number, Delivery>;
    timer: ReturnType<typeof setTimeout> | undefined;
    /**
     * A history read for the missing range is under way.
     */
    filling: boolean;
    /**
     * The channel's latest offset when a resubscription had more to catch up
     * on than the gateway replays: read from history, page by page, up to it.
     */
    until: number;
};
/**
 * What the streams need of their client.
 */
export type Host = {
    request: (message: Record<string, unknown>) => Promise<Record<string, unknown>>;
    emit: (type: string, detail: unknown) => void;
    /**
     * Whether the client is subscribed to `channel` by name.
     */
    subscribed: (channel: string) => boolean;
};
