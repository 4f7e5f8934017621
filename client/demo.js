// The demo page's behaviour (client/index.html): a WebSocketClient driven by the page's buttons.
import { WebSocketClient } from "./websocket-client.js";

const $ = (id) => document.getElementById(id);
const wsPath = document.querySelector('meta[name="ws-path"]').content;
const served = !wsPath.startsWith("__");
$("url").value = served ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${wsPath}` : "wss://";

// What the page saw, for people and for the browser test alike.
const demo = {
  client: null, deliveries: [], states: [], errors: [], resubscribed: 0, recovered: [], gaps: [],
  // The members of the channel subscribed last (by connection id), and the joins and leaves seen.
  membersOf: null, members: {}, joins: [], leaves: [],
};
window.wsDemo = demo;

function log(kind, text) {
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
}

function showChannels() {
  const channels = demo.client ? [...demo.client.channels] : [];
  $("channels").replaceChildren(...channels.map((c) => Object.assign(document.createElement("span"), { textContent: c })));
  if (channels.length === 0) $("channels").textContent = "none";
}

function showMembers() {
  const members = Object.values(demo.members);
  $("members-channel").textContent = demo.membersOf ?? "no channel yet";
  $("members-count").textContent = String(members.length);
  $("members").replaceChildren(...members.map((m) => {
    const name = m.info && typeof m.info.name === "string" ? m.info.name : m.user ?? "anonymous";
    return Object.assign(document.createElement("li"), { textContent: `${name} (${m.connection})` });
  }));
}

// Who is in `channel` now: the truth, which join and leave frames then keep up to date.
async function loadMembers(channel) {
  const presence = await demo.client.presence(channel);
  if (demo.membersOf !== channel) return;
  demo.members = Object.fromEntries(presence.members.map((m) => [m.connection, m]));
  showMembers();
}

function parseData(text) {
  try { return JSON.parse(text); } catch { return text; }
}

async function attempt(what, promise) {
  try {
    const answer = await promise;
    log("answer", `${what}: ${JSON.stringify(answer)}`);
    return answer;
  } catch (err) {
    demo.errors.push({ code: err.code, message: err.message });
    log("error", `${what} failed: ${err.code ?? ""} ${err.message}`);
    throw err;
  } finally {
    showChannels();
  }
}

demo.connect = (url = $("url").value, token = $("token").value) => {
  demo.client?.close();
  const client = new WebSocketClient(url, { token: token || undefined });
  demo.client = client;
  demo.membersOf = null;
  demo.members = {};
  showMembers();
  client.addEventListener("state", (e) => {
    demo.states.push(e.detail.state);
    $("state").textContent = e.detail.state + (e.detail.delayMs !== undefined ? ` (retry in ${e.detail.delayMs} ms)` : "");
    $("state").dataset.state = e.detail.state;
    log("state", `state: ${JSON.stringify(e.detail)}`);
  });
  client.addEventListener("delivery", (e) => {
    demo.deliveries.push(e.detail);
    const at = e.detail.offset !== undefined ? ` #${e.detail.offset}` : "";
    const where = e.detail.channel ? `on ${e.detail.channel}${at}` : "broadcast";
    log("delivery", `${where} from ${e.detail.user ?? e.detail.from ?? "the backend"}: ${JSON.stringify(e.detail.data)}`);
  });
  client.addEventListener("join", (e) => {
    demo.joins.push(e.detail);
    if (e.detail.channel === demo.membersOf) {
      demo.members[e.detail.connection] = { connection: e.detail.connection, user: e.detail.user, info: e.detail.info, since: e.detail.sentAt };
      showMembers();
    }
    log("state", `${e.detail.user ?? e.detail.connection} joined ${e.detail.channel}`);
  });
  client.addEventListener("leave", (e) => {
    demo.leaves.push(e.detail);
    if (e.detail.channel === demo.membersOf) {
      delete demo.members[e.detail.connection];
      showMembers();
    }
    log("state", `${e.detail.user ?? e.detail.connection} left ${e.detail.channel}`);
  });
  client.addEventListener("resubscribed", (e) => {
    demo.resubscribed += 1;
    // Joins and leaves missed while away: ask again.
    if (demo.membersOf) loadMembers(demo.membersOf).catch(() => {});
    log("state", `resubscribed to ${e.detail.channels.join(", ")}${e.detail.failed.length ? `; failed: ${e.detail.failed.join(", ")}` : ""}`);
  });
  client.addEventListener("recovered", (e) => {
    demo.recovered.push(e.detail);
    log("state", `recovered ${e.detail.count} on ${e.detail.channel}`);
  });
  client.addEventListener("gap", (e) => {
    demo.gaps.push(e.detail);
    log("error", `gap on ${e.detail.channel}: ${e.detail.reason}; reload what it shows`);
  });
  client.addEventListener("disconnected", (e) => log("state", `disconnected: ${e.detail.code} ${e.detail.reason}`));
  client.addEventListener("error", (e) => {
    demo.errors.push(e.detail);
    log("error", `${e.detail.code}: ${e.detail.message}`);
  });
  client.connect();
  showChannels();
  return client;
};

$("connect").onclick = () => demo.connect();
$("disconnect").onclick = () => { demo.client?.close(); showChannels(); };
$("subscribe").onclick = async () => {
  const channel = $("channel").value;
  // A channel's members are shown and followed; a pattern (chat/*) has none.
  const watch = !channel.endsWith("/*");
  await attempt("subscribe", demo.client.subscribe(channel, { joinLeave: watch })).catch(() => {});
  if (watch && demo.client.channels.has(channel)) {
    demo.membersOf = channel;
    await attempt("presence", loadMembers(channel).then(() => ({ members: Object.keys(demo.members).length }))).catch(() => {});
  }
};
$("unsubscribe").onclick = () => attempt("unsubscribe", demo.client.unsubscribe($("channel").value)).catch(() => {});
$("publish").onclick = () => attempt("publish", demo.client.publish($("channel").value, parseData($("data").value))).catch(() => {});
$("history").onclick = () => attempt("history", demo.client.history($("channel").value, { limit: 10 })).catch(() => {});
$("broadcast").onclick = () => attempt("broadcast", demo.client.broadcast(parseData($("data").value))).catch(() => {});
$("dev-token").onclick = async () => {
  // The user's name as its `info`: what the members of its channels see.
  const info = encodeURIComponent(JSON.stringify({ name: $("user").value }));
  const response = await fetch(`/_local/token?sub=${encodeURIComponent($("user").value)}&info=${info}`);
  const text = await response.text();
  if (response.ok) { $("token").value = text.trim(); log("state", `development token for ${$("user").value}`); }
  else log("error", text);
};
