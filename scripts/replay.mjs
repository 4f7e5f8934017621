// Issue 27's replay amplification, as an attacker would try it: a publisher puts 100 messages of
// 100 KB on `news` (each sent in 30 KB fragments, as API Gateway's frame limit wants), then a client
// that never reads sends ten subscribes of about 110 bytes, each asking for every message since offset
// 0. Prints "published" when the messages are acknowledged and "sent" when the subscribes are, then
// waits 15 s so that the gateway's memory can be read meanwhile (scripts/bench-churn does).
// Usage: node scripts/replay.mjs <ws url>
import { createRequire } from "node:module";
const require = createRequire(new URL("../tools/package.json", import.meta.url));
const WebSocket = require("ws");

const url = process.argv[2];
const open = () => new Promise((resolve) => { const ws = new WebSocket(url); ws.on("open", () => resolve(ws)); });
const publisher = await open();
const subscribed = new Promise((resolve) => publisher.once("message", (text) => resolve(JSON.parse(text))));
publisher.send(JSON.stringify({ action: "subscribe", channel: "news" }));
const { epoch } = await subscribed;
let acknowledged = 0;
publisher.on("message", (text) => { if (JSON.parse(text).type === "published") acknowledged += 1; });
const text = JSON.stringify({ action: "publish", channel: "news", data: "x".repeat(100_000) });
for (let n = 0; n < 100; n++) {
  for (let at = 0; at < text.length; at += 30_000) {
    publisher.send(text.slice(at, at + 30_000), { fin: at + 30_000 >= text.length });
  }
}
for (let waited = 0; acknowledged < 100; waited += 50) {
  if (waited > 60_000) { console.error(`only ${acknowledged} of 100 publishes acknowledged`); process.exit(1); }
  await new Promise((resolve) => setTimeout(resolve, 50));
}
publisher.close();
console.log("published");
await new Promise((resolve) => setTimeout(resolve, 4000));
const stuck = await open();
stuck._socket.pause();
for (let n = 0; n < 10; n++) {
  stuck.send(JSON.stringify({ action: "subscribe", channel: "news", since: { offset: 0, epoch } }));
}
console.log("sent");
await new Promise((resolve) => setTimeout(resolve, 15_000));
process.exit(0);
