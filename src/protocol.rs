//! Protocol v1 message types: what clients send (requests) and what the
//! server sends (events), independent of their encoding (see `codec`).
//!
//! The wire contract is `docs/protocol.md`.
//! Requests are parsed once here into a validated [`Request`]; anything that
//! does not fit becomes a [`RequestError`] carrying the protocol error code
//! and the request id when one could be read.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest accepted symbol name, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;
/// The subscription that means "every symbol, including later ones".
pub const WILDCARD: &str = "*";

/// The market state of one symbol after an update: the last trade, the
/// top of the book and the day's volume. The one place the market fields
/// are declared; the tick, the NATS payload, the feed formats, the
/// generator and the replayer all carry this type, so a new field is added
/// here, in its encodings and in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Price of the last trade, carried forward until the next one; absent
    /// before the symbol's first trade.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub px: Option<f64>,
    /// Size of the last trade in shares, carried forward with `px`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sz: Option<u64>,
    /// Best bid price; absent while the bid side is empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bid: Option<f64>,
    /// Best ask price; absent while the ask side is empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ask: Option<f64>,
    /// Shares offered at the best bid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bsz: Option<u64>,
    /// Shares offered at the best ask.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asz: Option<u64>,
    /// Shares traded so far (cumulative; never falls on a connection).
    pub vol: u64,
}

/// One market update as clients see it. Field order is the wire order (the
/// quote's fields sit between `xt` and `snap`); `n` stays last so that
/// `codec` can re-encode the merge count without re-serialising the whole
/// tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// The symbol this update is about.
    pub sym: Arc<str>,
    /// Per-symbol sequence number: +1 per source update, never backwards.
    pub seq: u64,
    /// When the source emitted the update, ns since the Unix epoch.
    pub ts: u64,
    /// Original event time of a replayed update, ns since the Unix epoch;
    /// absent for live and simulated data.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub xt: Option<u64>,
    /// The market state after the update, flattened into the tick.
    #[serde(flatten)]
    pub quote: Quote,
    /// `true` on the snapshot sent in reply to a subscribe; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snap: Option<bool>,
    /// Updates of this symbol merged into this one for this client
    /// (`seq - previous seq - 1`); 0 for a client that keeps up.
    pub n: u32,
}

impl Tick {
    /// A live update of `sym`, numbered `seq` and emitted at `ts`: no
    /// original time, not a snapshot, nothing merged.
    pub fn new(sym: Arc<str>, seq: u64, ts: u64, quote: Quote) -> Tick {
        Tick {
            sym,
            seq,
            ts,
            xt: None,
            quote,
            snap: None,
            n: 0,
        }
    }

    /// For tests and benchmarks: the `seq`th update of `sym`, emitted now,
    /// with a trade of 100 at 189.25, a full quote and `vol = 100 * seq`.
    /// Change what a test needs with struct update syntax.
    pub fn test(sym: &str, seq: u64) -> Tick {
        Tick::new(
            sym.into(),
            seq,
            crate::clock::now_ns(),
            Quote {
                px: Some(189.25),
                sz: Some(100),
                bid: Some(189.24),
                ask: Some(189.26),
                bsz: Some(300),
                asz: Some(200),
                vol: seq * 100,
            },
        )
    }
}

/// Protocol error codes (`docs/protocol.md`, "ack and error").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownOp,
    UnknownSymbol,
    TooManySubscriptions,
    RateLimited,
    TooLarge,
    Unauthorized,
}

/// Every server event. Serialised as an object whose `ev` field names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    Hello {
        v: u32,
        server: String,
        session: String,
        encoding: String,
        heartbeat_s: u64,
        symbols: usize,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
        op: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        symbols: Option<Vec<String>>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
        code: ErrorCode,
        msg: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        symbols: Option<Vec<String>>,
    },
    Symbols {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
        symbols: Vec<String>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        t: Option<serde_json::Value>,
    },
    Tick(Tick),
}

/// Which symbols a subscribe or unsubscribe names.
#[derive(Debug, Clone, PartialEq)]
pub enum SymbolSet {
    /// `["*"]`: everything, including symbols that appear later.
    All,
    /// Explicit, valid names (duplicates removed, request order kept).
    Named(Vec<String>),
}

/// A validated client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        id: Option<u64>,
        symbols: SymbolSet,
        /// Invalid names from the request, reported back as `unknown_symbol`.
        invalid: Vec<String>,
        max_hz: f64,
        snapshot: bool,
    },
    Unsubscribe {
        id: Option<u64>,
        symbols: SymbolSet,
    },
    Symbols {
        id: Option<u64>,
    },
    Ping {
        id: Option<u64>,
        t: Option<serde_json::Value>,
    },
}

impl Request {
    /// The request's `id`, echoed in its replies.
    pub fn id(&self) -> Option<u64> {
        match self {
            Request::Subscribe { id, .. }
            | Request::Unsubscribe { id, .. }
            | Request::Symbols { id }
            | Request::Ping { id, .. } => *id,
        }
    }
}

/// Why a request was refused; becomes an `error` event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {msg}")]
pub struct RequestError {
    pub id: Option<u64>,
    pub code: ErrorCode,
    pub msg: String,
}

impl RequestError {
    pub fn new(id: Option<u64>, code: ErrorCode, msg: impl Into<String>) -> Self {
        Self {
            id,
            code,
            msg: msg.into(),
        }
    }

    pub fn into_event(self) -> Event {
        Event::Error {
            id: self.id,
            code: self.code,
            msg: self.msg,
            symbols: None,
        }
    }
}

/// True when `name` is a legal symbol: 1 to 32 characters from
/// `A-Z a-z 0-9 . - _ / : ^ =`.
pub fn is_valid_symbol(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SYMBOL_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/:^=".contains(&b))
}

/// Parse a request from JSON text.
pub fn parse_json_request(text: &[u8]) -> Result<Request, RequestError> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        RequestError::new(
            None,
            ErrorCode::BadRequest,
            format!(
                "not valid JSON: {}",
                truncate(&e.to_string(), MAX_ECHO_CHARS)
            ),
        )
    })?;
    parse_request_value(value)
}

/// Parse a request from a MessagePack map (accepted in msgpack mode).
pub fn parse_msgpack_request(bytes: &[u8]) -> Result<Request, RequestError> {
    let value: serde_json::Value = rmp_serde::from_slice(bytes).map_err(|e| {
        RequestError::new(
            None,
            ErrorCode::BadRequest,
            format!(
                "not a valid MessagePack map: {}",
                truncate(&e.to_string(), MAX_ECHO_CHARS)
            ),
        )
    })?;
    parse_request_value(value)
}

fn parse_request_value(value: serde_json::Value) -> Result<Request, RequestError> {
    let serde_json::Value::Object(map) = value else {
        return Err(RequestError::new(
            None,
            ErrorCode::BadRequest,
            "a request must be a JSON object",
        ));
    };
    let id = match map.get("id") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            RequestError::new(
                None,
                ErrorCode::BadRequest,
                "field id: expected an unsigned integer",
            )
        })?),
    };
    let bad = |msg: &str| RequestError::new(id, ErrorCode::BadRequest, msg);
    let op = match map.get("op") {
        Some(serde_json::Value::String(op)) => op.as_str(),
        Some(_) => return Err(bad("field op: expected a string")),
        None => return Err(bad("missing field op")),
    };
    match op {
        "subscribe" => {
            let (symbols, invalid) = symbol_field(&map, id)?;
            let max_hz = match map.get("max_hz") {
                None | Some(serde_json::Value::Null) => 0.0,
                Some(v) => match v.as_f64() {
                    Some(hz) if hz >= 0.0 && hz.is_finite() => hz,
                    _ => return Err(bad("field max_hz: expected a number >= 0")),
                },
            };
            let snapshot = match map.get("snapshot") {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(_) => return Err(bad("field snapshot: expected true or false")),
            };
            Ok(Request::Subscribe {
                id,
                symbols,
                invalid,
                max_hz,
                snapshot,
            })
        }
        "unsubscribe" => {
            let (symbols, _invalid) = symbol_field(&map, id)?;
            Ok(Request::Unsubscribe { id, symbols })
        }
        "symbols" => Ok(Request::Symbols { id }),
        "ping" => Ok(Request::Ping {
            id,
            t: map.get("t").cloned(),
        }),
        other => Err(RequestError::new(
            id,
            ErrorCode::UnknownOp,
            format!("unknown op: {}", truncate(other, 40)),
        )),
    }
}

/// Reads `symbols`: a non-empty array of strings. Returns the valid set and
/// the names that are not legal symbols (reported as unknown).
fn symbol_field(
    map: &serde_json::Map<String, serde_json::Value>,
    id: Option<u64>,
) -> Result<(SymbolSet, Vec<String>), RequestError> {
    let bad = |msg: &str| RequestError::new(id, ErrorCode::BadRequest, msg);
    let list = match map.get("symbols") {
        Some(serde_json::Value::Array(list)) => list,
        Some(_) => return Err(bad("field symbols: expected an array of strings")),
        None => return Err(bad("missing field symbols")),
    };
    if list.is_empty() {
        return Err(bad("field symbols: empty array"));
    }
    let mut named: Vec<String> = Vec::with_capacity(list.len());
    let mut invalid = Vec::new();
    for item in list {
        let serde_json::Value::String(name) = item else {
            return Err(bad("field symbols: expected an array of strings"));
        };
        if name == WILDCARD {
            return Ok((SymbolSet::All, Vec::new()));
        }
        if !is_valid_symbol(name) {
            invalid.push(truncate(name, MAX_SYMBOL_LEN + 8));
        } else if !named.contains(name) {
            named.push(name.clone());
        }
    }
    Ok((SymbolSet::Named(named), invalid))
}

/// Longest parser diagnostic echoed back: parsers quote the input they
/// choke on, and a reply must never amplify a bad request.
const MAX_ECHO_CHARS: usize = 120;

/// Shortens untrusted text before echoing it in an error message.
fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> RequestError {
        parse_json_request(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn subscribe_with_all_fields_parses() {
        let req = parse_json_request(
            br#"{"op":"subscribe","id":7,"symbols":["AAPL","MSFT","AAPL"],"max_hz":4,"snapshot":false}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            Request::Subscribe {
                id: Some(7),
                symbols: SymbolSet::Named(vec!["AAPL".into(), "MSFT".into()]),
                invalid: vec![],
                max_hz: 4.0,
                snapshot: false
            }
        );
    }

    #[test]
    fn wildcard_means_all() {
        let req = parse_json_request(br#"{"op":"unsubscribe","symbols":["*"]}"#).unwrap();
        assert_eq!(
            req,
            Request::Unsubscribe {
                id: None,
                symbols: SymbolSet::All
            }
        );
    }

    #[test]
    fn bad_requests_name_the_field_and_keep_the_id() {
        assert_eq!(err("{nope").code, ErrorCode::BadRequest);
        assert_eq!(err("[1,2]").code, ErrorCode::BadRequest);
        let e = err(r#"{"op":"subscribe","id":3,"symbols":"AAPL"}"#);
        assert_eq!((e.id, e.code), (Some(3), ErrorCode::BadRequest));
        assert!(e.msg.contains("symbols"), "{}", e.msg);
        let e = err(r#"{"op":"fly","id":9}"#);
        assert_eq!((e.id, e.code), (Some(9), ErrorCode::UnknownOp));
        assert_eq!(err(r#"{"op":"ping","id":-1}"#).code, ErrorCode::BadRequest);
        assert_eq!(
            err(r#"{"op":"subscribe","symbols":["A"],"max_hz":-2}"#).code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn illegal_symbol_names_are_reported_not_fatal() {
        let req =
            parse_json_request(br#"{"op":"subscribe","symbols":["AAPL","bad sym",""]}"#).unwrap();
        let Request::Subscribe {
            symbols, invalid, ..
        } = req
        else {
            panic!("not a subscribe")
        };
        assert_eq!(symbols, SymbolSet::Named(vec!["AAPL".into()]));
        assert_eq!(invalid, vec!["bad sym".to_string(), String::new()]);
    }

    #[test]
    fn symbol_grammar_matches_the_protocol() {
        for ok in ["AAPL", "BRK.B", "EUR/USD", "ES=F", "^GSPC", "a-b_c:d"] {
            assert!(is_valid_symbol(ok), "{ok}");
        }
        for bad in ["", "A B", "ÄPFEL", &"X".repeat(33), "A*"] {
            assert!(!is_valid_symbol(bad), "{bad}");
        }
    }

    #[test]
    fn msgpack_requests_parse_like_json() {
        let bytes =
            rmp_serde::to_vec_named(&serde_json::json!({"op":"ping","id":4,"t":123})).unwrap();
        assert_eq!(
            parse_msgpack_request(&bytes).unwrap(),
            Request::Ping {
                id: Some(4),
                t: Some(serde_json::json!(123))
            }
        );
    }
}

/// Property tests: the parser never panics, whatever the bytes, and every
/// refusal carries the code the protocol prescribes.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const OPS: [&str; 4] = ["subscribe", "unsubscribe", "symbols", "ping"];

    /// JSON values biased towards request-like objects.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![Just("*".to_string()), Just("AAPL".to_string()), ".{0,40}"]
                .prop_map(Value::String),
            proptest::sample::select(OPS.to_vec()).prop_map(Value::from),
        ];
        let key = prop_oneof![
            proptest::sample::select(vec!["op", "id", "symbols", "max_hz", "snapshot", "t"])
                .prop_map(String::from),
            ".{0,8}",
        ];
        leaf.prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn check_refusal(error: &RequestError) -> Result<(), TestCaseError> {
        prop_assert!(
            matches!(error.code, ErrorCode::BadRequest | ErrorCode::UnknownOp),
            "{error:?}"
        );
        prop_assert!(
            error.msg.len() <= 256,
            "an error message echoes too much: {} bytes",
            error.msg.len()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic_and_are_refused_as_bad_requests(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = parse_json_request(&bytes) {
                check_refusal(&error)?;
                if serde_json::from_slice::<Value>(&bytes).is_err() {
                    prop_assert_eq!((error.code, error.id), (ErrorCode::BadRequest, None));
                }
            }
            if let Err(error) = parse_msgpack_request(&bytes) {
                check_refusal(&error)?;
            }
        }

        #[test]
        fn arbitrary_json_gets_the_error_code_the_protocol_prescribes(value in json_value()) {
            let text = value.to_string();
            let result = parse_json_request(text.as_bytes());
            let msgpack = rmp_serde::to_vec_named(&value).unwrap();
            prop_assert_eq!(parse_msgpack_request(&msgpack).map_err(|e| e.code), result.clone().map_err(|e| e.code));
            let Value::Object(map) = &value else {
                prop_assert_eq!(result.unwrap_err().code, ErrorCode::BadRequest);
                return Ok(());
            };
            let id = match map.get("id") {
                None | Some(Value::Null) => None,
                Some(id) => match id.as_u64() {
                    Some(id) => Some(id),
                    None => {
                        prop_assert_eq!(result.unwrap_err().code, ErrorCode::BadRequest);
                        return Ok(());
                    }
                },
            };
            match result {
                Ok(request) => {
                    prop_assert_eq!(request.id(), id);
                    prop_assert!(OPS.contains(&map["op"].as_str().unwrap_or_default()));
                    if let Request::Subscribe { symbols: SymbolSet::Named(names), invalid, .. } = &request {
                        prop_assert!(names.iter().all(|n| is_valid_symbol(n)));
                        let unique: std::collections::HashSet<&String> = names.iter().collect();
                        prop_assert_eq!(unique.len(), names.len(), "duplicates removed");
                        prop_assert!(invalid.iter().all(|n| !is_valid_symbol(n)));
                    }
                }
                Err(error) => {
                    check_refusal(&error)?;
                    prop_assert_eq!(error.id, id, "the refusal echoes the request id");
                    let op = map.get("op").and_then(Value::as_str);
                    let expected = match op {
                        Some(op) if !OPS.contains(&op) => ErrorCode::UnknownOp,
                        _ => ErrorCode::BadRequest,
                    };
                    prop_assert_eq!(error.code, expected);
                }
            }
        }

        #[test]
        fn symbol_names_follow_the_grammar(name in "[A-Za-z0-9.\\-_/:^=]{1,32}", bad in "[ *#\"\\\\é\u{0}]") {
            prop_assert!(is_valid_symbol(&name));
            let with_bad = format!("{name}{bad}");
            prop_assert!(!is_valid_symbol(&with_bad));
            let too_long = name.clone() + &"A".repeat(32);
            prop_assert!(!is_valid_symbol(&too_long));
        }
    }
}
