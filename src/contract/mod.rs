//! The machine-readable contract: JSON Schemas generated from the Rust
//! types of the protocol (`protocol`) and of the HTTP API (`api`,
//! `stats`) with schemars, assembled into an AsyncAPI 3 document for `/ws`
//! (`asyncapi.rs`) and an OpenAPI 3.1 document for `/api/*`
//! (`openapi.rs`).
//!
//! Each document is built once, on first use, and served as is by
//! `/api/asyncapi.json` and `/api/openapi.json`; `docs/asyncapi.json` and
//! `docs/openapi.json` are copies that `tests/contract.rs` regenerates and
//! compares, and whose schemas it validates live traffic against. A type
//! that changes shape changes the documents, so they cannot drift.

mod asyncapi;
mod openapi;

use axum::http::header;
use axum::response::IntoResponse;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Where both documents keep their named schemas.
const SCHEMAS_PATH: &str = "/components/schemas";

/// The AsyncAPI 3 document of `/ws`, as pretty JSON with a final newline.
pub fn asyncapi_json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| pretty(&asyncapi::document()))
}

/// The OpenAPI 3.1 document of `/api/*`, as pretty JSON with a final
/// newline.
pub fn openapi_json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| pretty(&openapi::document()))
}

/// `GET /api/asyncapi.json`.
pub(crate) async fn serve_asyncapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        asyncapi_json(),
    )
}

/// `GET /api/openapi.json`.
pub(crate) async fn serve_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

fn pretty(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("plain JSON");
    text.push('\n');
    text
}

/// A schema generator that names every type under `/components/schemas`
/// and describes what the server writes (`serialize`) or reads.
fn generator(settings: SchemaSettings, serialize: bool) -> SchemaGenerator {
    let settings = settings.with(|s| {
        s.definitions_path = SCHEMAS_PATH.into();
        s.meta_schema = None;
    });
    if serialize {
        settings.for_serialize().into_generator()
    } else {
        settings.for_deserialize().into_generator()
    }
}

/// A `$ref` to the named schema `name`.
fn schema_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#{SCHEMAS_PATH}/{name}") })
}

/// Gives each alternative of the `oneOf` schema `union` (an internally
/// tagged enum, tagged by `tag`) a name of its own: the tag's value in
/// title case followed by `suffix` (`hello` gives `HelloEvent`). The
/// union then refers to them. Returns the names, in the union's order.
fn name_alternatives(
    schemas: &mut Map<String, Value>,
    union: &str,
    tag: &str,
    suffix: &str,
) -> Vec<String> {
    let alternatives = match schemas.get_mut(union).and_then(|u| u.get_mut("oneOf")) {
        Some(Value::Array(alternatives)) => std::mem::take(alternatives),
        _ => panic!("{union} is not a oneOf schema"),
    };
    let mut names = Vec::new();
    let mut refs = Vec::new();
    for alternative in alternatives {
        let value = alternative["properties"][tag]["const"]
            .as_str()
            .unwrap_or_else(|| panic!("an alternative of {union} without a {tag} constant"));
        let mut chars = value.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase()).into_iter();
        let name: String = first.chain(chars).chain(suffix.chars()).collect();
        refs.push(schema_ref(&name));
        schemas.insert(name.clone(), alternative);
        names.push(name);
    }
    schemas[union]["oneOf"] = Value::Array(refs);
    names
}
