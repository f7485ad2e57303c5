//! Parsing client requests: JSON text, or a MessagePack map in msgpack
//! mode, validated once into a [`Request`]; anything that does not fit
//! becomes a [`RequestError`] with the protocol's error code and the
//! request's id when one could be read. Errors never echo more than a
//! short excerpt of the input.

use super::{
    ErrorCode, MAX_DEPTH, MAX_SYMBOL_LEN, Request, RequestError, ResumeFrom, SymbolSet, Timeframe,
    WILDCARD, is_valid_symbol,
};

/// The `channel` of a subscribe or unsubscribe.
enum Channel {
    /// No channel, or `"ticks"`.
    Ticks,
    /// `"bars"`, with its timeframe.
    Bars(Timeframe),
    /// `"book"`.
    Book,
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
    let channel = channel_field(&map, op, id)?;
    let named = |map: &serde_json::Map<String, serde_json::Value>, what: &str| {
        let (symbols, invalid) = symbol_field(map, id)?;
        match symbols {
            SymbolSet::Named(symbols) => Ok((symbols, invalid)),
            SymbolSet::All => Err(bad(&format!(
                "field symbols: {what} need named symbols, not \"*\""
            ))),
        }
    };
    match (op, channel) {
        ("subscribe", Channel::Bars(tf)) => {
            let (symbols, invalid) = named(&map, "bars")?;
            Ok(Request::SubscribeBars {
                id,
                tf,
                symbols,
                invalid,
                max_hz: max_hz_field(&map, id)?,
                snapshot: bool_field(&map, "snapshot", true, id)?,
            })
        }
        ("unsubscribe", Channel::Bars(tf)) => {
            let (symbols, _invalid) = named(&map, "bars")?;
            Ok(Request::UnsubscribeBars { id, tf, symbols })
        }
        ("subscribe", Channel::Book) => {
            let (symbols, invalid) = named(&map, "books")?;
            Ok(Request::SubscribeBook {
                id,
                symbols,
                invalid,
                depth: depth_field(&map, id)?,
                max_hz: max_hz_field(&map, id)?,
                snapshot: bool_field(&map, "snapshot", true, id)?,
            })
        }
        ("unsubscribe", Channel::Book) => {
            let (symbols, _invalid) = named(&map, "books")?;
            Ok(Request::UnsubscribeBook { id, symbols })
        }
        ("subscribe", Channel::Ticks) => {
            let (symbols, invalid) = symbol_field(&map, id)?;
            let max_hz = max_hz_field(&map, id)?;
            let snapshot = bool_field(&map, "snapshot", true, id)?;
            let deltas = bool_field(&map, "deltas", false, id)?;
            Ok(Request::Subscribe {
                id,
                symbols,
                invalid,
                max_hz,
                snapshot,
                deltas,
                resume: resume_fields(&map, id)?,
            })
        }
        ("unsubscribe", Channel::Ticks) => {
            let (symbols, _invalid) = symbol_field(&map, id)?;
            Ok(Request::Unsubscribe { id, symbols })
        }
        ("symbols", _) => Ok(Request::Symbols { id }),
        ("ping", _) => Ok(Request::Ping {
            id,
            t: map.get("t").cloned(),
        }),
        (other, _) => Err(RequestError::new(
            id,
            ErrorCode::UnknownOp,
            format!("unknown op: {}", truncate(other, 40)),
        )),
    }
}

/// Reads `channel` (and for bars `tf`) of a subscribe or unsubscribe.
fn channel_field(
    map: &serde_json::Map<String, serde_json::Value>,
    op: &str,
    id: Option<u64>,
) -> Result<Channel, RequestError> {
    let bad = |msg: String| RequestError::new(id, ErrorCode::BadRequest, msg);
    if op != "subscribe" && op != "unsubscribe" {
        return Ok(Channel::Ticks);
    }
    match map.get("channel") {
        None | Some(serde_json::Value::Null) => Ok(Channel::Ticks),
        Some(serde_json::Value::String(c)) if c == "ticks" => Ok(Channel::Ticks),
        Some(serde_json::Value::String(c)) if c == "book" => Ok(Channel::Book),
        Some(serde_json::Value::String(c)) if c == "bars" => match map.get("tf") {
            Some(serde_json::Value::String(tf)) => {
                Timeframe::parse(tf).map(Channel::Bars).ok_or_else(|| {
                    bad(format!(
                        "field tf: {:?} is not a timeframe; use 1s, 1m, 5m, 1h or 1d",
                        truncate(tf, 16)
                    ))
                })
            }
            Some(_) => Err(bad("field tf: expected a string such as \"1m\"".into())),
            None => Err(bad(
                "missing field tf: bars need a timeframe (1s, 1m, 5m, 1h or 1d)".into(),
            )),
        },
        Some(_) => Err(bad(
            "field channel: expected \"ticks\", \"bars\" or \"book\"".into(),
        )),
    }
}

/// Reads a book subscribe's `depth`: an integer from 1 to [`MAX_DEPTH`];
/// absent is `None` (the server's `--depth`).
fn depth_field(
    map: &serde_json::Map<String, serde_json::Value>,
    id: Option<u64>,
) -> Result<Option<usize>, RequestError> {
    match map.get("depth") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(depth) if (1..=MAX_DEPTH as u64).contains(&depth) => Ok(Some(depth as usize)),
            _ => Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                format!("field depth: expected an integer from 1 to {MAX_DEPTH}"),
            )),
        },
    }
}

/// Reads `max_hz`: a number >= 0; absent is 0 (as fast as read).
fn max_hz_field(
    map: &serde_json::Map<String, serde_json::Value>,
    id: Option<u64>,
) -> Result<f64, RequestError> {
    match map.get("max_hz") {
        None | Some(serde_json::Value::Null) => Ok(0.0),
        Some(v) => match v.as_f64() {
            Some(hz) if hz >= 0.0 && hz.is_finite() => Ok(hz),
            _ => Err(RequestError::new(
                id,
                ErrorCode::BadRequest,
                "field max_hz: expected a number >= 0",
            )),
        },
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

/// Reads an optional true/false field; absent or null is `default`.
fn bool_field(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    default: bool,
    id: Option<u64>,
) -> Result<bool, RequestError> {
    match map.get(name) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RequestError::new(
            id,
            ErrorCode::BadRequest,
            format!("field {name}: expected true or false"),
        )),
    }
}

/// Reads `from` (an object of symbol to the last seq held) and `epoch` (a
/// string); `None` without `from`.
fn resume_fields(
    map: &serde_json::Map<String, serde_json::Value>,
    id: Option<u64>,
) -> Result<Option<ResumeFrom>, RequestError> {
    let bad = |msg: String| RequestError::new(id, ErrorCode::BadRequest, msg);
    let epoch = match map.get("epoch") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(epoch)) => Some(truncate(epoch, MAX_EPOCH_CHARS)),
        Some(_) => return Err(bad("field epoch: expected a string".into())),
    };
    let entries = match map.get("from") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Object(entries)) => entries,
        Some(_) => {
            return Err(bad(
                "field from: expected an object of symbol to last seq, e.g. {\"AAPL\":1542}".into(),
            ));
        }
    };
    let mut last_seq = std::collections::BTreeMap::new();
    for (name, seq) in entries {
        let name = truncate(name, MAX_SYMBOL_LEN + 8);
        if !is_valid_symbol(&name) {
            return Err(bad(format!("field from: {name:?} is not a legal symbol")));
        }
        let Some(seq) = seq.as_u64() else {
            return Err(bad(format!(
                "field from.{name}: expected an unsigned integer seq"
            )));
        };
        last_seq.insert(name, seq);
    }
    Ok(Some(ResumeFrom { epoch, last_seq }))
}

/// Longest epoch read from a request: epochs the server makes are about 20
/// characters, and a longer one can only mismatch.
const MAX_EPOCH_CHARS: usize = 64;

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
    use crate::protocol::*;

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
                snapshot: false,
                deltas: false,
                resume: None,
            }
        );
    }

    #[test]
    fn bars_subscribe_and_unsubscribe_name_their_channel_and_timeframe() {
        let req = parse_json_request(
            br#"{"op":"subscribe","id":9,"channel":"bars","tf":"1m","symbols":["AAPL","x y"],"max_hz":2}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            Request::SubscribeBars {
                id: Some(9),
                tf: Timeframe::M1,
                symbols: vec!["AAPL".into()],
                invalid: vec!["x y".into()],
                max_hz: 2.0,
                snapshot: true,
            }
        );
        let req = parse_json_request(
            br#"{"op":"unsubscribe","channel":"bars","tf":"1h","symbols":["AAPL"]}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            Request::UnsubscribeBars {
                id: None,
                tf: Timeframe::H1,
                symbols: vec!["AAPL".into()],
            }
        );
        let ticks = parse_json_request(br#"{"op":"subscribe","channel":"ticks","symbols":["A"]}"#);
        assert!(matches!(ticks, Ok(Request::Subscribe { .. })));
        for (text, says) in [
            (
                r#"{"op":"subscribe","channel":"bars","symbols":["A"]}"#,
                "missing field tf",
            ),
            (
                r#"{"op":"subscribe","channel":"bars","tf":"2m","symbols":["A"]}"#,
                "not a timeframe",
            ),
            (
                r#"{"op":"subscribe","channel":"bars","tf":"1m","symbols":["*"]}"#,
                "named symbols",
            ),
            (
                r#"{"op":"subscribe","channel":"level2","symbols":["A"]}"#,
                "field channel",
            ),
        ] {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert!(e.msg.contains(says), "{text}: {}", e.msg);
        }
    }

    #[test]
    fn book_subscribe_reads_its_depth_and_a_bad_depth_names_the_field() {
        let req = parse_json_request(
            br#"{"op":"subscribe","id":3,"channel":"book","symbols":["AAPL","AAPL"],"depth":5,"max_hz":4}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            Request::SubscribeBook {
                id: Some(3),
                symbols: vec!["AAPL".into()],
                invalid: vec![],
                depth: Some(5),
                max_hz: 4.0,
                snapshot: true,
            }
        );
        let req =
            parse_json_request(br#"{"op":"subscribe","channel":"book","symbols":["A"]}"#).unwrap();
        assert!(matches!(req, Request::SubscribeBook { depth: None, .. }));
        let req = parse_json_request(br#"{"op":"unsubscribe","channel":"book","symbols":["A"]}"#)
            .unwrap();
        assert_eq!(
            req,
            Request::UnsubscribeBook {
                id: None,
                symbols: vec!["A".into()]
            }
        );
        for depth in ["0", "51", "-1", "2.5", "\"10\""] {
            let text = format!(
                r#"{{"op":"subscribe","id":4,"channel":"book","symbols":["A"],"depth":{depth}}}"#
            );
            let e = err(&text);
            assert_eq!((e.id, e.code), (Some(4), ErrorCode::BadRequest), "{text}");
            assert!(e.msg.contains("field depth"), "{text}: {}", e.msg);
        }
        let e = err(r#"{"op":"subscribe","channel":"book","symbols":["*"]}"#);
        assert!(e.msg.contains("named symbols"), "{}", e.msg);
    }

    #[test]
    fn subscribe_with_from_and_epoch_parses() {
        let req = parse_json_request(
            br#"{"op":"subscribe","symbols":["AAPL","MSFT"],"epoch":"e1","from":{"AAPL":1542,"MSFT":0}}"#,
        )
        .unwrap();
        let Request::Subscribe { resume, .. } = req else {
            panic!("not a subscribe")
        };
        let resume = resume.unwrap();
        assert_eq!(resume.epoch.as_deref(), Some("e1"));
        assert_eq!(resume.last_seq["AAPL"], 1542);
        assert_eq!(resume.last_seq["MSFT"], 0);
    }

    #[test]
    fn bad_from_fields_name_the_field() {
        for (text, field) in [
            (
                r#"{"op":"subscribe","id":5,"symbols":["A"],"from":[1]}"#,
                "field from",
            ),
            (
                r#"{"op":"subscribe","id":5,"symbols":["A"],"from":{"A":-1}}"#,
                "from.A",
            ),
            (
                r#"{"op":"subscribe","id":5,"symbols":["A"],"from":{"A":"x"}}"#,
                "from.A",
            ),
            (
                r#"{"op":"subscribe","id":5,"symbols":["A"],"from":{"bad sym":1}}"#,
                "bad sym",
            ),
            (
                r#"{"op":"subscribe","id":5,"symbols":["A"],"epoch":7,"from":{"A":1}}"#,
                "epoch",
            ),
        ] {
            let e = err(text);
            assert_eq!((e.id, e.code), (Some(5), ErrorCode::BadRequest), "{text}");
            assert!(e.msg.contains(field), "{text}: {}", e.msg);
        }
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
    use crate::protocol::*;
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
            proptest::sample::select(vec![
                "op", "id", "symbols", "max_hz", "snapshot", "t", "from", "epoch", "deltas",
                "channel", "depth",
            ])
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
