//! The machine-readable contract (`src/contract`, `docs/asyncapi.json`,
//! `docs/openapi.json`) held against the code and a live server: the
//! documents in docs/ are what the Rust types generate, every request and
//! event example of `docs/protocol.md` validates (and the requests parse),
//! and, against a real server (`contract/live.rs`), every kind of event it
//! sends and every `/api` answer validates and carries no field its schema
//! lacks, and the server serves the documents.
//!
//! Refresh the documents after changing a protocol or API type with
//! `TICKFEED_WRITE_CONTRACT=1 cargo test --test contract`.

mod common;
#[path = "contract/live.rs"]
mod live;
#[path = "contract/schemas.rs"]
mod schemas;

use schemas::{Document, assert_valid, repo_file};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tickfeed::contract;
use tickfeed::protocol::parse_json_request;

/// Set to rewrite docs/asyncapi.json and docs/openapi.json from the code.
const REFRESH: &str = "TICKFEED_WRITE_CONTRACT";

#[test]
fn the_documents_in_docs_are_what_the_code_generates() {
    for (file, text) in [
        ("docs/asyncapi.json", contract::asyncapi_json()),
        ("docs/openapi.json", contract::openapi_json()),
    ] {
        let path = repo_file(file);
        if std::env::var_os(REFRESH).is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{file} differs from what the Rust types generate; refresh it with:\n  \
             {REFRESH}=1 cargo test --test contract"
        );
    }
}

#[test]
fn every_reference_in_the_documents_resolves() {
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(pointer)) = map.get("$ref") {
                    out.push(pointer.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    for document in [Document::asyncapi(), Document::openapi()] {
        let mut pointers = Vec::new();
        refs(&document.doc, &mut pointers);
        assert!(!pointers.is_empty());
        for pointer in pointers {
            let path = pointer.strip_prefix('#').expect("a local reference");
            assert!(
                document.doc.pointer(path).is_some(),
                "{pointer} resolves to nothing"
            );
        }
    }
}

/// The JSON examples of `docs/protocol.md` that start with `start`: inline
/// code spans and fenced `json` blocks.
fn protocol_examples(start: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_file("docs/protocol.md")).unwrap();
    let mut examples = Vec::new();
    for block in text.split("```json\n").skip(1) {
        let body = block.split("```").next().unwrap();
        if body.trim_start().starts_with(start) {
            // One example per line, or one spread over several lines.
            let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
            match lines
                .iter()
                .map(|l| serde_json::from_str(l))
                .collect::<Result<Vec<Value>, _>>()
            {
                Ok(values) => examples.extend(values),
                Err(_) => examples.push(serde_json::from_str(body).expect("a JSON example")),
            }
        }
    }
    for span in text.split('`').skip(1).step_by(2) {
        if span.starts_with(start) {
            examples.push(serde_json::from_str(span).expect("a JSON example"));
        }
    }
    examples
}

#[test]
fn every_request_in_the_protocol_doc_validates_and_parses() {
    let document = Document::asyncapi();
    let request = document.named("RequestShape");
    let examples = protocol_examples("{\"op\"");
    assert!(
        examples.len() >= 10,
        "too few examples found: {}",
        examples.len()
    );
    let mut ops = BTreeSet::new();
    for example in &examples {
        assert_valid(&request, example, "docs/protocol.md request");
        let name = example["op"].as_str().unwrap();
        let message = &document.doc["components"]["messages"][name]["payload"];
        assert_valid(&document.validator(message), example, name);
        parse_json_request(example.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{example} does not parse: {e}"));
        ops.insert(name.to_string());
    }
    assert_eq!(
        ops,
        BTreeSet::from(["ping", "subscribe", "symbols", "unsubscribe"].map(String::from))
    );
}

#[test]
fn requests_the_parser_refuses_the_schema_refuses_too() {
    let request = Document::asyncapi().named("RequestShape");
    for bad in [
        json!({"op": "subscribe", "symbols": "AAPL"}),
        json!({"op": "subscribe", "symbols": []}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "max_hz": -1}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "snapshot": "no"}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "from": {"AAPL": -1}}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "from": {"bad sym": 1}}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "epoch": 7}),
        json!({"op": "subscribe", "channel": "level2", "symbols": ["AAPL"]}),
        json!({"op": "subscribe", "channel": "book", "symbols": ["AAPL"], "depth": 0}),
        json!({"op": "subscribe", "channel": "book", "symbols": ["AAPL"], "depth": 51}),
        json!({"op": "subscribe", "channel": "bars", "tf": "2m", "symbols": ["AAPL"]}),
        json!({"op": "unsubscribe", "channel": "bars", "tf": 60, "symbols": ["AAPL"]}),
        json!({"op": "ping", "id": -1}),
        json!({"op": "fly"}),
        json!({"symbols": ["AAPL"]}),
    ] {
        assert!(
            parse_json_request(bad.to_string().as_bytes()).is_err(),
            "{bad} parses"
        );
        assert!(!request.is_valid(&bad), "the schema accepts {bad}");
    }
}

#[test]
fn every_event_in_the_protocol_doc_validates() {
    let frame = Document::asyncapi().named("ServerFrame");
    let examples = protocol_examples("[{\"ev\"");
    assert!(
        examples.len() >= 6,
        "too few examples found: {}",
        examples.len()
    );
    for example in &examples {
        assert_valid(&frame, example, "docs/protocol.md event");
    }
}

#[test]
fn events_that_break_the_contract_do_not_validate() {
    let frame = Document::asyncapi().named("ServerFrame");
    let tick = json!({"ev": "tick", "sym": "AAPL", "seq": 2, "ts": 1, "vol": 5, "n": 0});
    assert!(frame.is_valid(&json!([tick])));
    let with = |field: &str, value: Value| {
        let mut event = tick.clone();
        event[field] = value;
        json!([event])
    };
    let without = |field: &str| {
        let mut event = tick.clone();
        event.as_object_mut().unwrap().remove(field);
        json!([event])
    };
    for bad in [
        without("seq"),
        without("vol"),
        with("px", Value::Null), // a full tick omits, never nulls
        with("n", json!(-1)),
        with("sym", json!("bad sym")),
        json!([{"ev": "tick", "sym": "AAPL", "seq": 2, "ts": 1, "d": 1, "n": 3}]),
        json!([{"ev": "hello", "v": 1}]),
        json!([{"ev": "ack", "id": 1}]),
        json!([{"ev": "error", "code": "oops", "msg": "x"}]),
        json!([{"ev": "nope"}]),
        json!([{"ev": "bar", "sym": "AAPL", "tf": "2m", "t": 0, "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 0, "trades": 0, "vwap": 1.0, "final": false}]),
        json!([{"ev": "bar", "sym": "AAPL", "tf": "1m", "t": 0, "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 0, "trades": 0, "vwap": 1.0}]),
        json!({"ev": "pong"}),
    ] {
        assert!(!frame.is_valid(&bad), "the schema accepts {bad}");
    }
}
