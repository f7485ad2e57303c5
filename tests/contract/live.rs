//! The contract against a live server: every kind of event it sends,
//! ticks, bars and books, validates against its schema in `docs/asyncapi.json`
//! and declares no field the schema lacks, every `/api` answer validates against
//! `docs/openapi.json`, and the server serves both documents.

use crate::common::{self, Client, TestServer, poll, start_server};
use crate::schemas::{Document, assert_declared, assert_valid, repo_file};
use jsonschema::Validator;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What the live test has seen, by kind of event and by shape.
#[derive(Default)]
struct Seen {
    kinds: BTreeSet<String>,
    shapes: BTreeSet<&'static str>,
    error_codes: BTreeSet<String>,
}

/// Validates every event of a live server's frames.
struct EventChecker {
    frame: Validator,
    kinds: BTreeMap<String, (Validator, BTreeSet<String>)>,
    delta: BTreeSet<String>,
    full: BTreeSet<String>,
    seen: Seen,
}

impl EventChecker {
    fn new() -> Self {
        let document = Document::asyncapi();
        let mut kinds = BTreeMap::new();
        for alternative in document.doc["components"]["schemas"]["Event"]["oneOf"]
            .as_array()
            .unwrap()
        {
            let name = alternative["$ref"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let kind = name.trim_end_matches("Event").to_ascii_lowercase();
            let checks = (document.named(name), document.declared_by(name));
            kinds.insert(kind, checks);
        }
        let with_ev = |mut names: BTreeSet<String>| {
            names.insert("ev".into());
            names
        };
        Self {
            frame: document.named("ServerFrame"),
            delta: with_ev(document.declared_by("TickDelta")),
            full: with_ev(document.declared_by("Tick")),
            kinds,
            seen: Seen::default(),
        }
    }

    /// Checks one frame; returns its events.
    fn frame(&mut self, events: Vec<Value>) -> Vec<Value> {
        let frame = Value::Array(events);
        assert_valid(&self.frame, &frame, "a server frame");
        let Value::Array(events) = frame else {
            unreachable!()
        };
        for event in &events {
            self.event(event);
        }
        events
    }

    fn event(&mut self, event: &Value) {
        let kind = event["ev"].as_str().expect("ev").to_string();
        let (validator, declared) = self
            .kinds
            .get(&kind)
            .unwrap_or_else(|| panic!("an event kind the document lacks: {event}"));
        assert_valid(validator, event, &kind);
        assert_declared(declared, event, &kind);
        let shape = match kind.as_str() {
            "tick" if event["d"] == 1 => {
                assert_declared(&self.delta, event, "a delta");
                "delta"
            }
            "tick" => {
                assert_declared(&self.full, event, "a full tick");
                if event["snap"] == true {
                    "snapshot"
                } else {
                    "full tick"
                }
            }
            "ack"
                if event["resumed"]
                    .as_object()
                    .is_some_and(|r| r.values().any(Value::is_null)) =>
            {
                "ack resumed with null"
            }
            "ack" if event["resumed"].is_object() => "ack resumed",
            "ack" if event["channel"] == "bars" => "ack of bars",
            "ack" if event["channel"] == "book" => "ack of book",
            "book" if event["snap"] == true => "book snapshot",
            "book" => "book update",
            "bar" if event["snap"] == true => "bar snapshot",
            "bar" if event["final"] == true => "final bar",
            "bar" => "bar update",
            "error" => {
                self.seen
                    .error_codes
                    .insert(event["code"].as_str().unwrap().into());
                "error"
            }
            _ => "other",
        };
        self.seen.shapes.insert(shape);
        self.seen.kinds.insert(kind);
    }

    /// Reads frames, checking each, until `done` holds for an event.
    async fn read_until(&mut self, client: &mut Client, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        loop {
            let frame = tokio::time::timeout_at(deadline, client.read_frame())
                .await
                .expect("the awaited event within the deadline")
                .expect("connection open");
            if let Some(event) = self.frame(frame).into_iter().find(|e| done(e)) {
                return event;
            }
        }
    }
}

async fn connect(server: &TestServer, checker: &mut EventChecker) -> Client {
    let client = Client::connect(&server.ws_url()).await;
    let hello = client.hello.clone();
    checker.frame(vec![hello]);
    client
}

#[tokio::test]
async fn every_kind_of_event_a_live_server_sends_validates_against_its_schema() {
    let server = start_server(&[
        "--symbols",
        "8",
        "--rate",
        "2000",
        "--max-request-bytes",
        "1KiB",
    ])
    .await;
    let mut checker = EventChecker::new();
    let mut client = connect(&server, &mut checker).await;
    let id = |n: u64| move |e: &Value| e["id"] == n && e["ev"] != "tick";

    client.send(json!({"op": "symbols", "id": 1})).await;
    let symbols = checker.read_until(&mut client, id(1)).await;
    let names: Vec<String> = serde_json::from_value(symbols["symbols"].clone()).unwrap();
    let (a, b) = (names[0].clone(), names[1].clone());

    client
        .send(json!({"op": "subscribe", "id": 2, "symbols": [a, "NO_SUCH", "bad sym"], "deltas": true}))
        .await;
    checker.read_until(&mut client, |e| e["d"] == 1).await;
    client
        .send(json!({"op": "subscribe", "id": 9, "symbols": [b]}))
        .await;
    checker
        .read_until(&mut client, |e| {
            e["sym"] == b && e["ev"] == "tick" && e["snap"].is_null()
        })
        .await;
    client
        .send(json!({"op": "ping", "id": 3, "t": {"sent": 1.5}}))
        .await;
    checker.read_until(&mut client, id(3)).await;
    client
        .send_raw(tokio_tungstenite::tungstenite::Message::text("not json"))
        .await;
    checker
        .read_until(&mut client, |e| e["code"] == "bad_request")
        .await;
    client.send(json!({"op": "fly", "id": 4})).await;
    checker.read_until(&mut client, id(4)).await;
    client
        .send(json!({"op": "ping", "id": 5, "t": "x".repeat(2048)}))
        .await;
    checker
        .read_until(&mut client, |e| e["code"] == "too_large")
        .await;

    // Bars of 1s on the same connection: the snapshot of the open bar,
    // its updates, and the final one when its second ends.
    client
        .send(json!({"op": "subscribe", "id": 10, "channel": "bars", "tf": "1s", "symbols": [a]}))
        .await;
    // The ack, the snapshot and updates may share a frame: read on until
    // an update and a final have been seen (the checker records every
    // event of each frame it reads, the snapshot among them).
    let bar_shapes = std::cell::RefCell::new(BTreeSet::new());
    checker
        .read_until(&mut client, |e| {
            let mut shapes = bar_shapes.borrow_mut();
            if e["ev"] == "bar" && e["snap"] != true {
                shapes.insert(e["final"] == true);
            }
            shapes.len() == 2
        })
        .await;
    // A subscribe in the moment between a bar's close and the next update
    // finds no open bar and so gets no snapshot (protocol.md); a
    // re-subscribe asks again, and its snapshot comes with its ack.
    for attempt in 0..5 {
        if checker.seen.shapes.contains("bar snapshot") {
            break;
        }
        let resubscribe = 20 + attempt;
        client
            .send(json!({"op": "subscribe", "id": resubscribe, "channel": "bars", "tf": "1s", "symbols": [a]}))
            .await;
        checker.read_until(&mut client, id(resubscribe)).await;
    }
    client
        .send(json!({"op": "unsubscribe", "id": 11, "channel": "bars", "tf": "1s", "symbols": [a]}))
        .await;
    checker.read_until(&mut client, id(11)).await;

    // Books of 3 levels on the same connection: the snapshot, then a
    // change.
    client
        .send(json!({"op": "subscribe", "id": 12, "channel": "book", "symbols": [a], "depth": 3}))
        .await;
    checker
        .read_until(&mut client, |e| e["ev"] == "book" && e["snap"].is_null())
        .await;
    client
        .send(json!({"op": "unsubscribe", "id": 13, "channel": "book", "symbols": [a]}))
        .await;
    checker.read_until(&mut client, id(13)).await;

    // A second connection resumes where the first stands, in the same
    // epoch and in another.
    let held = checker
        .read_until(&mut client, |e| e["sym"] == a && e["ev"] == "tick")
        .await;
    let mut resumer = connect(&server, &mut checker).await;
    let epoch = resumer.hello["epoch"].clone();
    resumer
        .send(json!({"op": "subscribe", "id": 6, "symbols": [a], "epoch": epoch, "from": {a.as_str(): held["seq"]}}))
        .await;
    checker.read_until(&mut resumer, id(6)).await;
    resumer
        .send(json!({"op": "subscribe", "id": 7, "symbols": [b], "epoch": "another", "from": {b.as_str(): 1}}))
        .await;
    checker.read_until(&mut resumer, id(7)).await;
    client
        .send(json!({"op": "unsubscribe", "id": 8, "symbols": ["*"]}))
        .await;
    checker.read_until(&mut client, id(8)).await;

    let seen = &checker.seen;
    let documented: BTreeSet<String> = checker.kinds.keys().cloned().collect();
    assert_eq!(
        seen.kinds, documented,
        "every documented kind of event, and no other, was sent"
    );
    for shape in [
        "delta",
        "full tick",
        "snapshot",
        "ack resumed",
        "ack resumed with null",
        "ack of bars",
        "bar snapshot",
        "bar update",
        "final bar",
        "ack of book",
        "book snapshot",
    ] {
        assert!(
            seen.shapes.contains(shape),
            "no {shape} seen: {:?}",
            seen.shapes
        );
    }
    let codes = ["bad_request", "too_large", "unknown_op", "unknown_symbol"];
    assert_eq!(seen.error_codes, BTreeSet::from(codes.map(String::from)));
    server.shutdown_after((client, resumer)).await;
}

/// `GET path` on `server`: status, the epoch header and the body.
async fn get(server: &TestServer, path: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(server.http_url(path)).await.expect("GET");
    let status = response.status().as_u16();
    let epoch = response
        .headers()
        .get("tickfeed-epoch")
        .map(|v| v.to_str().unwrap().to_string());
    (status, epoch, response.text().await.unwrap())
}

#[tokio::test]
async fn api_responses_validate_against_the_openapi_document() {
    let server = start_server(&["--symbols", "8", "--rate", "2000"]).await;
    let document = Document::openapi();
    let symbols = poll("every symbol to have ticked", || async {
        let symbols = server.get_json("/api/symbols").await;
        (symbols.as_array().map_or(0, Vec::len) == 8).then_some(symbols)
    })
    .await;
    let sym = symbols[0]["sym"].as_str().unwrap().to_string();
    let requests = [
        ("/api/symbols".to_string(), 200),
        (format!("/api/ticks?sym={sym}&limit=5"), 200),
        (format!("/api/ticks?sym={sym}&after=1&limit=3"), 200),
        ("/api/stats".to_string(), 200),
        ("/api/ticks?sym=NO_SUCH".to_string(), 404),
        (format!("/api/ticks?sym={sym}&limit=0"), 400),
        ("/api/ticks".to_string(), 400),
        (format!("/api/bars?sym={sym}&tf=1s"), 200),
        (
            format!("/api/bars?sym={sym}&tf=1m&from=0&to=1&limit=2"),
            200,
        ),
        ("/api/bars?sym=NO_SUCH&tf=1m".to_string(), 404),
        (format!("/api/bars?sym={sym}&tf=2m"), 400),
        (format!("/api/bars?sym={sym}&tf=1m&from=5&to=5"), 400),
        (format!("/api/book?sym={sym}&depth=3"), 200),
        ("/api/book?sym=NO_SUCH".to_string(), 404),
        (format!("/api/book?sym={sym}&depth=0"), 400),
        (format!("/api/book?sym={sym}&depth=11"), 400),
    ];
    for (path, expected) in requests {
        let (status, epoch, body) = get(&server, &path).await;
        assert_eq!(status, expected, "{path}: {body}");
        let route = path.split('?').next().unwrap();
        let response = &document.doc["paths"][route]["get"]["responses"][status.to_string()];
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{path}: status {status} is not documented"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_valid(&document.validator(schema), &body, &path);
        for (header, _) in response["headers"].as_object().into_iter().flatten() {
            assert_eq!(header, "tickfeed-epoch");
            assert!(epoch.is_some(), "{path}: no {header} header");
        }
    }
    let stats = server.get_json("/api/stats").await;
    assert_declared(&document.declared_by("StatsSnapshot"), &stats, "/api/stats");
    let tick = document.declared_by("FullTickEvent");
    for event in symbols.as_array().unwrap() {
        assert_declared(&tick, event, "/api/symbols");
    }
    let bar = document.declared_by("HistoryBarEvent");
    let bars = server.get_json(&format!("/api/bars?sym={sym}&tf=1s")).await;
    assert!(
        !bars.as_array().unwrap().is_empty(),
        "{sym} has bars: {bars}"
    );
    for event in bars.as_array().unwrap() {
        assert_declared(&bar, event, "/api/bars");
    }
    let book = server.get_json(&format!("/api/book?sym={sym}")).await;
    assert_eq!(book["bids"].as_array().map(Vec::len), Some(10), "{book}");
    assert_declared(
        &document.declared_by("CurrentBookEvent"),
        &book,
        "/api/book",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_serves_the_documents_in_docs_behind_the_token() {
    let server = start_server(&["--token", "s3cret", "--symbols", "4"]).await;
    for (path, file) in [
        ("/api/asyncapi.json", "docs/asyncapi.json"),
        ("/api/openapi.json", "docs/openapi.json"),
    ] {
        let (status, _, _) = get(&server, path).await;
        assert_eq!(status, 401, "{path} without the token");
        let (status, _, body) = get(&server, &format!("{path}?token=s3cret")).await;
        assert_eq!(status, 200, "{path}");
        let on_disk = std::fs::read_to_string(repo_file(file)).unwrap();
        assert_eq!(body, on_disk, "{path} serves what {file} holds");
    }
    server.shutdown().await;
}
