//! The browser client (`client/websocket-client.js`) and the demo page the gateway serves at `/`, in
//! a real headless Chromium driven over the DevTools protocol: two pages exchange a message on a
//! channel; after the gateway drops one's socket, its client reconnects, subscribes again and gets
//! the next message once; a delivery that arrives twice is seen once.
//!
//! Ignored by a plain `cargo test` because it needs Chromium; `scripts/test` installs Debian's
//! `chromium` package and runs ignored tests, so it runs there and fails if Chromium is missing.

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use local::Settings;
use serde_json::{Value, json};
use shared::ConnectionId;
use support::*;
use testkit::contract::Direction;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A headless Chromium of its own, with a profile directory removed when it is dropped.
struct Browser {
    _child: Child,
    devtools: String,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn chromium_binary() -> String {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
        if found {
            return name.to_owned();
        }
    }
    panic!("no Chromium: install Debian's chromium package (scripts/test does), or set CHROMIUM to its path");
}

impl Browser {
    async fn launch() -> Self {
        // One profile per browser: two in one process (the tests run at once) would share it and fail.
        static LAUNCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = LAUNCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("ws-browser-test-{}-{n}", std::process::id()));
        let mut child = Command::new(chromium_binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("Chromium starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let devtools = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("Chromium's stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("Chromium exited without a DevTools endpoint");
        })
        .await
        .expect("Chromium's DevTools endpoint within a minute");
        // Keep reading its stderr so that Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { _child: child, devtools, profile }
    }

    /// A new tab at `url`.
    async fn open(&self, url: &str) -> Page {
        let browser = Cdp::connect(&self.devtools).await;
        let created = browser.call("Target.createTarget", json!({ "url": url })).await;
        let target = created["targetId"].as_str().expect("a target id");
        let host = self.devtools.trim_start_matches("ws://").split('/').next().expect("host");
        let page = Page { cdp: Cdp::connect(&format!("ws://{host}/devtools/page/{target}")).await };
        page.wait_for("the page's script", "typeof window.wsDemo === 'object'").await;
        page
    }
}

/// One DevTools protocol connection.
struct Cdp {
    ws: tokio::sync::Mutex<(WebSocketStream<MaybeTlsStream<TcpStream>>, u64)>,
}

impl Cdp {
    async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("DevTools connects");
        Self { ws: tokio::sync::Mutex::new((ws, 0)) }
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let mut guard = self.ws.lock().await;
        let (ws, next) = &mut *guard;
        *next += 1;
        let id = *next;
        ws.send(Message::text(json!({ "id": id, "method": method, "params": params }).to_string()))
            .await
            .expect("send to DevTools");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("DevTools answers")
                .expect("DevTools is connected")
                .expect("a frame");
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(&text).expect("DevTools speaks JSON");
            // Events have no id; answers to this call have its.
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }
}

struct Page {
    cdp: Cdp,
}

impl Page {
    /// The value of `expression` in the page, awaited if it is a promise.
    async fn eval(&self, expression: &str) -> Value {
        let params = json!({ "expression": expression, "awaitPromise": true, "returnByValue": true });
        let result = self.cdp.call("Runtime.evaluate", params).await;
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    async fn wait_for(&self, what: &str, expression: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let result = self
                .cdp
                .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }))
                .await;
            if result["result"]["value"] == true {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "waited 20 s for {what} ({expression})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many deliveries the page's client has had whose `data.n` is `n`.
    async fn deliveries_of(&self, n: u64) -> u64 {
        self.eval(&format!("wsDemo.deliveries.filter(d => d.data && d.data.n === {n}).length"))
            .await
            .as_u64()
            .expect("a count")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: scripts/test installs it and runs the ignored tests"]
async fn two_pages_chat_on_a_channel_and_a_dropped_client_reconnects_resubscribes_and_gets_the_next_message_once()
 {
    let gateway = TestGateway::start(Settings::default()).await;
    let browser = Browser::launch().await;
    let page_url = format!("{}/", gateway.http_url);
    let (alice, bob) = (browser.open(&page_url).await, browser.open(&page_url).await);

    // Both connect as a person would, with the page's own default URL: the gateway's stage.
    for page in [&alice, &bob] {
        assert_eq!(
            page.eval("document.getElementById('url').value").await,
            format!("{}/local", gateway.ws_url)
        );
        page.eval("wsDemo.connect(); true").await;
        page.wait_for("the connection", "wsDemo.client.state === 'open'").await;
    }
    assert_eq!(alice.eval("wsDemo.client.subscribe('chat/room').then(a => a.channel)").await, "chat/room");

    let id = bob.eval("wsDemo.client.publish('chat/room', {n: 1}).then(a => a.id)").await;
    alice.wait_for("Bob's message", "wsDemo.deliveries.some(d => d.data && d.data.n === 1)").await;
    let delivered = alice.eval("wsDemo.deliveries.find(d => d.data.n === 1)").await;
    assert_eq!((&delivered["id"], &delivered["channel"]), (&id, &json!("chat/room")), "{delivered}");
    assert_eq!(bob.deliveries_of(1).await, 0, "Bob is not subscribed");

    // The gateway drops Alice's socket, as API Gateway does when a backend deletes a connection.
    let bobs = ConnectionId::parse(delivered["from"].as_str().expect("from")).expect("an id");
    let alices = gateway.store.ids().into_iter().find(|id| *id != bobs).expect("Alice's connection");
    let http = reqwest::Client::new();
    let url = |id: &ConnectionId| format!("{}/local/@connections/{id}", gateway.http_url);
    assert_eq!(signed(http.delete(url(&alices))).await.status(), 204);
    alice
        .wait_for(
            "the reconnection and its resubscription",
            "wsDemo.resubscribed === 1 && wsDemo.client.state === 'open'",
        )
        .await;
    assert_eq!(alice.eval("wsDemo.states.includes('reconnecting')").await, true);

    bob.eval("wsDemo.client.publish('chat/room', {n: 2}).then(a => a.id)").await;
    alice
        .wait_for(
            "the message after the reconnection",
            "wsDemo.deliveries.some(d => d.data && d.data.n === 2)",
        )
        .await;

    // The same delivery twice (at least once, as SQS redelivers): the page sees it once.
    let alices = gateway.store.ids().into_iter().find(|id| *id != bobs).expect("Alice's new connection");
    let twice = json!({"type": "message", "channel": "chat/room", "id": "8f9a5a4e-3f0e-4f4b-9d1c-1b2a3c4d5e6f", "sentAt": 1, "data": {"n": 3}});
    for _ in 0..2 {
        assert_eq!(signed(http.post(url(&alices)).body(twice.to_string())).await.status(), 200);
    }
    alice.wait_for("the repeated delivery", "wsDemo.client.duplicatesDropped === 1").await;
    // Long enough for a late duplicate of message 2 to have arrived.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((alice.deliveries_of(2).await, alice.deliveries_of(3).await), (1, 1));
    assert_eq!(
        alice.eval("wsDemo.errors.length").await,
        0,
        "{}",
        alice.eval("JSON.stringify(wsDemo.errors)").await
    );

    // What is not a delivery nor an answer breaks nothing: plain text, API Gateway's own throttle
    // answer (an error event), an error without a ref, JSON that is not an object.
    for text in [
        "plain text",
        r#"{"message":"Too Many Requests","connectionId":"x","requestId":"y"}"#,
        r#"{"error":{"code":"invalid_json","message":"no"}}"#,
        "[1,2]",
        "{",
    ] {
        assert_eq!(signed(http.post(url(&alices)).body(text)).await.status(), 200);
    }
    alice.wait_for("the unsolicited errors", "wsDemo.errors.length === 2").await;
    assert_eq!(alice.eval("wsDemo.errors.map(e => e.code).join()").await, "throttled,invalid_json");
    let published = alice.eval("wsDemo.client.publish('chat/room', {n: 4}).then(a => typeof a.id)").await;
    assert_eq!(published, "string", "the client still works");
    alice.wait_for("its own message", "wsDemo.deliveries.some(d => d.data && d.data.n === 4)").await;

    // The keepalive: a client told to speak up after 200 ms of silence (nine minutes by default,
    // under API Gateway's ten) sends its echo that often, and nothing else is said meanwhile.
    let before = default_route_events(&gateway).await;
    let quiet = "(() => { const c = new wsDemo.client.constructor(document.getElementById('url').value, \
                 { keepaliveMs: 200 }); c.connect(); window.quiet = c; return true; })()";
    bob.eval(quiet).await;
    bob.wait_for("the quiet client's connection", "window.quiet.state === 'open'").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let echoes = default_route_events(&gateway).await - before;
    assert!(echoes >= 3, "{echoes} keepalives in 1.5 s at one per 200 ms of silence");
}

/// Every frame the gated client's socket sent and received is one `docs/asyncapi.yaml` describes.
async fn assert_frames_kept_to_the_contract(page: &Page) {
    let frames = page.eval("JSON.stringify(window.frames)").await;
    let frames: Vec<(String, String)> =
        serde_json::from_str(frames.as_str().expect("a JSON string")).expect("pairs");
    assert!(frames.len() > 10, "{} frames recorded", frames.len());
    for (way, frame) in &frames {
        let direction = if way == "sent" { Direction::Sent } else { Direction::Received };
        testkit::contract::check(direction, frame);
    }
}

/// How many `$default` events the ingress has handled (`/_local/stats`).
async fn default_route_events(gateway: &TestGateway) -> u64 {
    let stats = gateway.stats().await;
    stats["ingress"]["events_by_route"]["$default"].as_u64().unwrap_or(0)
}

/// A client of its own in `page`, whose reconnects wait until the test opens `window.gate`, and
/// what it saw: `window.got` (deliveries), `window.recovered`, `window.gaps`, and every frame its
/// socket sent and received (`window.frames`, for [`assert_frames_kept_to_the_contract`]).
const GATED_CLIENT: &str = "(async () => {
    const { WebSocketClient } = await import('/_local/websocket-client.js');
    window.gate = Promise.resolve('');
    Object.assign(window, { got: [], recovered: [], gaps: [], frames: [] });
    class Recording extends WebSocket {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', (e) => window.frames.push(['received', e.data]));
        }
        send(data) {
            window.frames.push(['sent', data]);
            super.send(data);
        }
    }
    const c = new WebSocketClient(document.getElementById('url').value, { token: () => window.gate, WebSocket: Recording });
    c.addEventListener('delivery', (e) => window.got.push(e.detail));
    c.addEventListener('recovered', (e) => window.recovered.push(e.detail));
    c.addEventListener('gap', (e) => window.gaps.push(e.detail));
    c.connect();
    window.gated = c;
    return true;
})()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: scripts/test installs it and runs the ignored tests"]
async fn a_client_back_from_a_drop_recovers_what_it_missed_in_order_fills_a_missing_offset_and_reports_a_gap()
{
    let gateway = TestGateway::start(Settings::default()).await;
    let browser = Browser::launch().await;
    let page_url = format!("{}/", gateway.http_url);
    let (alice, bob) = (browser.open(&page_url).await, browser.open(&page_url).await);
    bob.eval("wsDemo.connect(); true").await;
    bob.wait_for("Bob's connection", "wsDemo.client.state === 'open'").await;
    alice.eval(GATED_CLIENT).await;
    alice.wait_for("the connection", "window.gated.state === 'open'").await;
    let answer = alice.eval("window.gated.subscribe('chat/room')").await;
    assert_eq!(answer["offset"], 0, "{answer}");
    let publish = |n: u64| format!("wsDemo.client.publish('chat/room', {{n: {n}}}).then(a => a.offset)");
    assert_eq!(bob.eval(&publish(1)).await, 1);
    alice.wait_for("message 1", "window.got.length === 1").await;

    // Alice's socket drops; she stays away (her reconnect waits at the gate) while Bob publishes 3.
    let bobs = gateway.store.ids();
    let alices =
        bobs.iter().find(|id| gateway.store.subscriptions_of(id).iter().any(|p| p.as_str() == "chat/room"));
    let alices = alices.expect("Alice's connection").clone();
    alice.eval("window.gate = new Promise((open) => { window.openGate = open; }); true").await;
    let http = reqwest::Client::new();
    let url = |id: &ConnectionId| format!("{}/local/@connections/{id}", gateway.http_url);
    assert_eq!(signed(http.delete(url(&alices))).await.status(), 204);
    alice.wait_for("the drop", "window.gated.state === 'reconnecting'").await;
    for n in 2..=4 {
        assert_eq!(bob.eval(&publish(n)).await, n);
    }
    alice.eval("window.openGate(''); true").await;
    alice.wait_for("the recovery", "window.got.length === 4 && window.recovered.length === 1").await;
    assert_eq!(alice.eval("window.got.map(d => d.data.n).join()").await, "1,2,3,4", "in order");
    assert_eq!(alice.eval("window.recovered[0].count").await, 3);

    // A message that arrives ahead of one that never came waits, and the client reads the missing
    // one from history: Alice's subscription is taken away behind her client's back, Bob publishes
    // 5 and 6, and only 6 is posted to her.
    let alices = gateway.store.ids().into_iter().find(|id| !bobs.contains(id)).expect("her new connection");
    let room = shared::ChannelPattern::parse("chat/room").expect("pattern");
    shared::ConnectionStore::unsubscribe(gateway.store.as_ref(), &alices, &room).await.expect("unsubscribe");
    for n in 5..=6 {
        bob.eval(&publish(n)).await;
    }
    let six =
        bob.eval("wsDemo.client.history('chat/room', {limit: 1}).then(m => JSON.stringify(m[0]))").await;
    let six = six.as_str().expect("a frame").to_owned();
    assert_eq!(signed(http.post(url(&alices)).body(six.clone())).await.status(), 200);
    alice.wait_for("5 from history, then 6", "window.got.length === 6").await;
    assert_eq!(alice.eval("window.got.map(d => d.offset).join()").await, "1,2,3,4,5,6");

    // An offset neither delivered nor kept (here: one never published) is a gap, not a wait forever.
    let mut nine: Value = serde_json::from_str(&six).expect("json");
    nine["offset"] = json!(9);
    nine["id"] = json!("0b8f1d0e-5c6a-4f11-9d0a-6f3c2b1a0e99");
    assert_eq!(signed(http.post(url(&alices)).body(nine.to_string())).await.status(), 200);
    alice.wait_for("the gap, then 9", "window.gaps.length === 1 && window.got.length === 7").await;
    let gap = alice.eval("window.gaps[0]").await;
    assert_eq!(
        (&gap["channel"], &gap["from"], &gap["to"]),
        (&json!("chat/room"), &json!(7), &json!(8)),
        "{gap}"
    );
    assert_eq!(alice.eval("window.gated.duplicatesDropped").await, 0, "6 came once");

    // Away while more was published than the gateway replays (one `history` answer's worth): the
    // resubscription is not recovered, and the client reads what it missed from history, in pages.
    alice.eval("window.gate = new Promise((open) => { window.openGate = open; }); true").await;
    assert_eq!(signed(http.delete(url(&alices))).await.status(), 204);
    alice.wait_for("the second drop", "window.gated.state === 'reconnecting'").await;
    // Offsets 7 to 15; she has 9 (the one posted behind the gateway's back): 10 to 15, 180 KB, are hers.
    for n in 7..=15 {
        let big = format!(
            "wsDemo.client.publish('chat/room', {{n: {n}, pad: 'x'.repeat(30000)}}).then(a => a.offset)"
        );
        assert_eq!(bob.eval(&big).await, n);
    }
    alice.eval("window.openGate(''); true").await;
    alice
        .wait_for("six more, from history", "window.got.length === 13 && window.recovered.length === 2")
        .await;
    assert_eq!(
        alice.eval("window.got.slice(7).map(d => d.offset).join()").await,
        "10,11,12,13,14,15",
        "in order"
    );
    assert_eq!(
        alice.eval("window.recovered[1].fromHistory === true && window.recovered[1].count === 6").await,
        true
    );
    assert_eq!(alice.eval("window.gaps.length").await, 1, "nothing lost");
    assert_frames_kept_to_the_contract(&alice).await;
}

/// A gateway that asks for tokens signed with the development secret and hands them out at
/// `/_local/token`, as `cargo run -p local -- --jwt-secret …` does.
fn with_tokens() -> Settings {
    let secret = "browser-test-secret-browser-test-secret";
    Settings {
        authorizer: Some(std::sync::Arc::new(authorizer::Authorizer::new(
            authorizer::Verifier::secret(secret.as_bytes(), None, None).expect("secret"),
        ))),
        dev_tokens: Some(local::settings::DevTokens {
            secret: secret.into(),
            issuer: None,
            audience: None,
            exposed: false,
        }),
        ..Settings::default()
    }
}

/// Signs in on the demo page as a person would: a name, the development token button, connect.
async fn sign_in(page: &Page, name: &str) {
    page.eval(&format!(
        "document.getElementById('user').value = '{name}'; document.getElementById('dev-token').click(); true"
    ))
    .await;
    page.wait_for("the development token", "document.getElementById('token').value.length > 0").await;
    page.eval("wsDemo.connect(); true").await;
    page.wait_for("the connection", "wsDemo.client.state === 'open'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: scripts/test installs it and runs the ignored tests"]
async fn one_tab_sees_another_join_and_leave_a_channel_with_its_name_in_the_members_list() {
    let gateway = TestGateway::start(with_tokens()).await;
    let browser = Browser::launch().await;
    let page_url = format!("{}/", gateway.http_url);
    let (alice, bob) = (browser.open(&page_url).await, browser.open(&page_url).await);
    // Each as a person would: a name, the development token button, connect, the channel, subscribe.
    for (page, name) in [(&alice, "alice"), (&bob, "bob")] {
        sign_in(page, name).await;
        page.eval("document.getElementById('channel').value = 'room/1'; document.getElementById('subscribe').click(); true").await;
        page.wait_for(
            "its own membership",
            "wsDemo.membersOf === 'room/1' && Object.keys(wsDemo.members).length > 0",
        )
        .await;
    }
    alice.wait_for("Bob's join", "wsDemo.joins.some(j => j.user === 'bob' && j.channel === 'room/1')").await;
    alice.wait_for("two members listed", "document.querySelectorAll('#members li').length === 2").await;
    let names = alice.eval("[...document.querySelectorAll('#members li')].map(li => li.textContent.split(' ')[0]).sort().join()").await;
    assert_eq!(names, "alice,bob", "each shown by the name in its token's info");
    assert_eq!(
        bob.eval("Object.values(wsDemo.members).map(m => m.user).sort().join()").await,
        "alice,bob",
        "presence listed Alice for Bob"
    );
    let presence = bob.eval("wsDemo.client.presence('room/1')").await;
    assert_eq!((presence["clients"].as_u64(), presence["users"].as_u64()), (Some(2), Some(2)), "{presence}");

    // Bob closes his tab's connection: Alice sees him leave.
    bob.eval("wsDemo.client.close(); true").await;
    alice.wait_for("Bob's leave", "wsDemo.leaves.some(l => l.user === 'bob')").await;
    alice.wait_for("one member listed", "document.querySelectorAll('#members li').length === 1").await;
    assert_eq!(alice.eval("document.getElementById('members-count').textContent").await, "1");
    assert_eq!(
        alice.eval("wsDemo.errors.length").await,
        0,
        "{}",
        alice.eval("JSON.stringify(wsDemo.errors)").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: scripts/test installs it and runs the ignored tests"]
async fn a_tab_the_backend_unsubscribes_forgets_the_channel_and_one_it_bans_stays_closed() {
    let gateway = TestGateway::start(with_tokens()).await;
    let browser = Browser::launch().await;
    let page = browser.open(&format!("{}/", gateway.http_url)).await;
    sign_in(&page, "mallory").await;
    page.eval("window.told = []; for (const t of ['unsubscribed', 'disconnect']) wsDemo.client.addEventListener(t, (e) => told.push([t, e.detail])); true").await;
    for channel in ["room/1", "room/2"] {
        assert_eq!(
            page.eval(&format!("wsDemo.client.subscribe('{channel}').then(a => a.channel)")).await,
            channel
        );
    }

    let server = |method: &str, body: Value| {
        let request = reqwest::Client::new()
            .post(format!("{}/iam/api/{method}", gateway.http_url))
            .body(body.to_string());
        async move { signed(request).await }
    };
    let unsubscribed =
        server("unsubscribe", json!({"user": "mallory", "channel": "room/1", "reason": "muted"})).await;
    assert_eq!(unsubscribed.status(), 200);
    page.wait_for("the backend's unsubscribe", "told.length === 1").await;
    assert_eq!(page.eval("told[0]").await, json!(["unsubscribed", {"channel": "room/1", "reason": "muted"}]));
    assert_eq!(page.eval("[...wsDemo.client.channels].join()").await, "room/2", "room/1 forgotten");

    let banned = server("disconnect", json!({"user": "mallory", "code": 4003, "reason": "banned"})).await;
    assert_eq!(banned.status(), 200, "{:?}", banned.text().await);
    page.wait_for("the backend's disconnect", "told.length === 2 && wsDemo.client.state === 'closed'").await;
    assert_eq!(
        page.eval("told[1]").await,
        json!(["disconnect", {"code": 4003, "reason": "banned", "reconnect": false}])
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(page.eval("wsDemo.client.state").await, "closed", "no reconnect into a ban");
    assert!(gateway.store.ids().is_empty(), "no connection left: {:?}", gateway.store.ids());
}
