// Subscribes to and unsubscribes from `total` distinct channel names, spread over `clients`
// connections, one request at a time each, and exits once every client has closed: the channel churn
// scripts/bench-churn measures the gateway's memory under. Exits non-zero if any answer was an error
// or a connection failed, so that the figure counts work that happened.
// Usage: node scripts/churn.mjs <ws url> <total> <clients> <round name>
import { createRequire } from "node:module";
const require = createRequire(new URL("../tools/package.json", import.meta.url));
const WebSocket = require("ws");

const [url, total, clients, round] = [process.argv[2], +process.argv[3], +process.argv[4], process.argv[5]];
let answered = 0;
let failed = 0;

function client(k) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const per = Math.ceil(total / clients);
    let i = 0;
    const next = () => {
      if (i >= per) return ws.close();
      ws.send(JSON.stringify({ action: "subscribe", channel: `churn${round}/c${k}-${i}` }));
    };
    ws.on("open", next);
    ws.on("message", (text) => {
      const answer = JSON.parse(text);
      answered += 1;
      if (answer.error || answer.message) {
        failed += 1;
        i += 1;
        next();
      } else if (answer.type === "subscribed") {
        ws.send(JSON.stringify({ action: "unsubscribe", channel: answer.channel }));
      } else if (answer.type === "unsubscribed") {
        i += 1;
        next();
      }
    });
    ws.on("close", resolve);
    ws.on("error", () => {
      failed += 1;
      resolve();
    });
  });
}

await Promise.all([...Array(clients).keys()].map(client));
console.log(JSON.stringify({ channels: total, answered, failed }));
process.exit(failed === 0 && answered === 2 * clients * Math.ceil(total / clients) ? 0 : 1);
