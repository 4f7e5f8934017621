// The browser client's behaviours, each against a fake WebSocket under mocked timers:
// `node --test client/tests/` (scripts/test runs it).
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { RequestError, WebSocketClient } from "../websocket-client.js";
import { FakeSocket, countTimers, message, settle, sockets } from "./fake.js";

const EVENTS = ["state", "delivery", "recovered", "gap", "join", "leave", "error", "resubscribed", "disconnected", "disconnect", "unsubscribed"];

let timers;

beforeEach(() => {
  sockets.length = 0;
  mock.timers.enable({ apis: ["setTimeout"] });
  timers = countTimers();
});

afterEach(() => {
  timers.restore();
  mock.timers.reset();
  mock.restoreAll();
});

/** A client over fake sockets, and every event it dispatched, in order. */
function client(options = {}) {
  const c = new WebSocketClient("ws://gateway.test/local", { WebSocket: FakeSocket, ...options });
  const events = [];
  for (const type of EVENTS) {
    c.addEventListener(type, (event) => events.push([type, event.detail]));
  }
  const of = (type) => events.filter(([t]) => t === type).map(([, detail]) => detail);
  return { c, events, of };
}

/** Connects `c` and opens its socket; the socket. */
async function connected(c) {
  c.connect();
  await settle();
  const socket = sockets.at(-1);
  socket.open();
  return socket;
}

/** Subscribes `c` to `channel` on `socket`, answered at offset `offset`. */
async function subscribed(c, socket, channel, offset = 0, epoch = "e1") {
  const answer = c.subscribe(channel);
  socket.answer("subscribe", { type: "subscribed", channel, offset, epoch });
  return answer;
}

async function tick(ms) {
  mock.timers.tick(ms);
  await settle();
}

test("a dropped connection is tried again after a random wait below a ceiling that doubles up to its maximum", async () => {
  mock.method(Math, "random", () => 0.5);
  const { c, of } = client({ minBackoffMs: 100, maxBackoffMs: 300 });
  const first = await connected(c);
  first.drop();
  assert.deepEqual(of("state").at(-1), { state: "reconnecting", attempt: 1, delayMs: 50 });
  await tick(49);
  assert.equal(sockets.length, 1, "not before its wait");
  await tick(1);
  assert.equal(sockets.length, 2);
  sockets[1].drop();
  assert.equal(of("state").at(-1).delayMs, 100, "the ceiling doubled");
  await tick(100);
  sockets[2].drop();
  assert.equal(of("state").at(-1).delayMs, 150, "at its maximum, 300");
  Math.random.mock.mockImplementation(() => 0.1);
  await tick(150);
  sockets[3].drop();
  assert.equal(of("state").at(-1).delayMs, 30, "jitter: drawn anew below the ceiling");
  await tick(30);
  sockets[4].open();
  sockets[4].drop();
  assert.equal(of("state").at(-1).delayMs, 10, "an open connection starts the count again");
  assert.deepEqual(of("disconnected")[0], { code: 1006, reason: "" });
});

test("after a reconnect each channel is subscribed again from the last position delivered, and what it missed comes", async () => {
  mock.method(Math, "random", () => 0);
  const { c, of } = client();
  const first = await connected(c);
  await subscribed(c, first, "news");
  first.receive(message("news", 1));
  first.receive(message("news", 2));
  first.drop();
  await tick(0);
  const second = sockets[1];
  second.open();
  const again = second.last("subscribe");
  assert.deepEqual([again.channel, again.since], ["news", { offset: 2, epoch: "e1" }]);
  second.answer("subscribe", { type: "subscribed", channel: "news", offset: 4, epoch: "e1", recovered: true });
  await settle();
  assert.deepEqual(of("recovered"), [{ channel: "news", count: 2 }]);
  second.receive(message("news", 3));
  second.receive(message("news", 4));
  assert.deepEqual(of("delivery").map((d) => d.offset), [1, 2, 3, 4]);
  assert.deepEqual(of("resubscribed"), [{ channels: ["news"], failed: [] }]);
});

test("a message ahead of a missing one waits, then the hole is read from history and delivered in order", async () => {
  const { c, of } = client({ orderWaitMs: 1000 });
  const socket = await connected(c);
  await subscribed(c, socket, "news");
  socket.receive(message("news", 1));
  socket.receive(message("news", 3));
  assert.deepEqual(of("delivery").map((d) => d.offset), [1], "3 waits for 2");
  await tick(999);
  assert.equal(socket.last("history"), undefined, "not before orderWaitMs");
  await tick(1);
  const read = socket.last("history");
  assert.deepEqual([read.channel, read.since, read.limit], ["news", { offset: 1, epoch: "e1" }, 100]);
  socket.answer("history", {
    type: "history", channel: "news", offset: 3, epoch: "e1",
    messages: [message("news", 2), message("news", 3)], more: false,
  });
  await settle();
  assert.deepEqual(of("delivery").map((d) => d.offset), [1, 2, 3]);
  assert.deepEqual(of("gap"), []);
});

test("an offset history no longer keeps is announced as a gap of exactly it, and another epoch as a lost position", async () => {
  const { c, of } = client({ orderWaitMs: 10 });
  const socket = await connected(c);
  await subscribed(c, socket, "news");
  socket.receive(message("news", 1));
  socket.receive(message("news", 3));
  await tick(10);
  socket.answer("history", { type: "history", channel: "news", offset: 3, epoch: "e1", messages: [message("news", 3)], more: false });
  await settle();
  assert.deepEqual(of("gap"), [{ channel: "news", from: 2, to: 2, reason: "no longer kept" }]);
  assert.deepEqual(of("delivery").map((d) => d.offset), [1, 3]);
  socket.receive({ ...message("news", 1, "e2"), id: "00000000-0000-4000-9000-000000000001" });
  assert.deepEqual(of("gap")[1], { channel: "news", reason: "the channel's history was lost (a new epoch)" });
  assert.deepEqual(of("delivery").at(-1).epoch, "e2", "the new stream starts with its message");
});

test("repeats are dropped by id and by offset, and counted", async () => {
  const { c, of } = client();
  const socket = await connected(c);
  await subscribed(c, socket, "news");
  socket.receive(message("news", 1));
  socket.receive(message("news", 1));
  socket.receive({ ...message("news", 1), id: "00000000-0000-4000-8000-00000000ffff" });
  const broadcast = { type: "broadcast", id: "00000000-0000-4000-8000-0000000000b1", from: "abc=", sentAt: 1, data: "hi" };
  socket.receive(broadcast);
  socket.receive(broadcast);
  assert.deepEqual(of("delivery").map((d) => d.id), [message("news", 1).id, broadcast.id]);
  assert.equal(c.duplicatesDropped, 3);
});

test("answers are matched to their requests by ref, whatever their order, and refusals (with when to retry), timeouts and drops reject", async () => {
  const { c } = client({ requestTimeoutMs: 5000 });
  const socket = await connected(c);
  const first = c.publish("news", 1);
  const second = c.publish("news", 2);
  const [one, two] = socket.requests();
  socket.receive({ type: "published", channel: "news", id: "00000000-0000-4000-8000-000000000002", offset: 2, epoch: "e1", ref: two.ref });
  socket.receive({ type: "published", channel: "news", id: "00000000-0000-4000-8000-000000000001", offset: 1, epoch: "e1", ref: one.ref });
  assert.deepEqual(await first, { id: "00000000-0000-4000-8000-000000000001", offset: 1, epoch: "e1" });
  assert.deepEqual(await second, { id: "00000000-0000-4000-8000-000000000002", offset: 2, epoch: "e1" });

  const refused = c.publish("user/bob", 1);
  socket.answer("publish", { error: { code: "forbidden_channel", message: "not yours" } });
  await assert.rejects(refused, (err) => err instanceof RequestError && err.code === "forbidden_channel");

  const limited = c.publish("news", 3);
  socket.answer("publish", { error: { code: "rate_limited", message: "this connection is sending too fast; send again in 40 ms", retryAfterMs: 40 } });
  await assert.rejects(limited, (err) => err instanceof RequestError && err.code === "rate_limited" && err.retryAfterMs === 40);

  const unanswered = assert.rejects(c.history("news"), (err) => err instanceof RequestError && err.code === "timeout");
  await tick(4999);
  await tick(1);
  await unanswered;

  const lost = assert.rejects(c.presence("news"), (err) => err instanceof RequestError && err.code === "connection_lost");
  socket.drop();
  await lost;
});

test("presence answers who is in a channel, and a watched channel's joins and leaves are events, each once", async () => {
  mock.method(Math, "random", () => 0);
  const { c, of } = client();
  const socket = await connected(c);
  const watching = c.subscribe("room/1", { joinLeave: true });
  assert.equal(socket.last("subscribe").joinLeave, true);
  socket.answer("subscribe", { type: "subscribed", channel: "room/1", offset: 0, epoch: "e1" });
  await watching;
  const join = { type: "join", channel: "room/1", id: "00000000-0000-4000-8000-00000000000a", connection: "bob=", user: "bob", info: { name: "Bob" }, sentAt: 1 };
  socket.receive(join);
  socket.receive(join);
  socket.receive({ type: "leave", channel: "room/1", id: "00000000-0000-4000-8000-00000000000b", connection: "bob=", user: "bob", sentAt: 2 });
  assert.deepEqual(of("join").map((j) => j.user), ["bob"]);
  assert.deepEqual(of("leave").map((l) => l.connection), ["bob="]);
  const who = c.presence("room/1");
  socket.answer("presence", { type: "presence", channel: "room/1", clients: 2, users: 1, members: [{ connection: "me=", user: "amy", since: 5 }] });
  assert.deepEqual(await who, { channel: "room/1", clients: 2, users: 1, members: [{ connection: "me=", user: "amy", since: 5 }], truncated: false });
  socket.drop();
  await tick(0);
  sockets[1].open();
  assert.equal(sockets[1].last("subscribe").joinLeave, true, "still watched after a reconnect");
});

test("close() stops every timer, fails what waits, and nothing happens after it", async () => {
  const { c, of } = client({ orderWaitMs: 1000, keepaliveMs: 2000, requestTimeoutMs: 3000 });
  const socket = await connected(c);
  await subscribed(c, socket, "news");
  socket.receive(message("news", 2));
  const pending = assert.rejects(c.history("news"), (err) => err instanceof RequestError && err.code === "closed");
  assert.ok(timers.live() >= 3, "a keepalive, an order wait and a request's timeout are armed");
  c.close();
  assert.equal(timers.live(), 0);
  await pending;
  const sent = socket.sent.length;
  await tick(3_600_000);
  assert.equal(socket.sent.length, sent, "nothing sent after close()");
  assert.equal(sockets.length, 1, "no reconnect");
  assert.deepEqual(socket.closed, { code: 1000, reason: "client closed" });
  assert.equal(of("state").at(-1).state, "closed");

  const { c: waiting } = client();
  await connected(waiting);
  sockets.at(-1).drop();
  assert.ok(timers.live() >= 1, "a reconnect is armed");
  waiting.close();
  assert.equal(timers.live(), 0, "closed while waiting to reconnect");
});

test("the backend's unsubscribe forgets the channel across reconnects, and its disconnect without reconnect closes for good", async () => {
  mock.method(Math, "random", () => 0);
  const { c, of } = client();
  const socket = await connected(c);
  await subscribed(c, socket, "news");
  await subscribed(c, socket, "chat/general");
  socket.receive({ type: "unsubscribed", channel: "chat/general", reason: "muted" });
  assert.deepEqual(of("unsubscribed"), [{ channel: "chat/general", reason: "muted" }]);
  assert.deepEqual([...c.channels], ["news"]);
  socket.drop();
  await tick(0);
  sockets[1].open();
  assert.deepEqual(sockets[1].requests().filter((r) => r.action === "subscribe").map((r) => r.channel), ["news"], "chat/general is not subscribed again");

  sockets[1].receive({ type: "disconnect", code: 4000, reason: "redeploy", reconnect: true });
  assert.deepEqual(of("disconnect").at(-1), { code: 4000, reason: "redeploy", reconnect: true });
  sockets[1].drop();
  await tick(0);
  assert.equal(sockets.length, 3, "told it may come back: it reconnects");
  sockets[2].open();
  sockets[2].receive({ type: "disconnect", code: 4003, reason: "banned", reconnect: false });
  assert.deepEqual(of("disconnect").at(-1), { code: 4003, reason: "banned", reconnect: false });
  assert.equal(of("state").at(-1).state, "closed");
  await tick(3_600_000);
  assert.equal(sockets.length, 3, "told not to come back: no reconnect");
});
