//! The OpenAPI 3.1 document of `/api/*`. Every endpoint is one entry of
//! [`endpoints`]: its path, what it is for, its query parameters and
//! response as Rust types; schemas are JSON Schema 2020-12 (OpenAPI 3.1's
//! dialect), generated from those types.

use super::generator;
use crate::api::{ApiErrorBody, BarsQuery, BookQuery, EPOCH_HEADER, TicksQuery};
use crate::protocol::{CurrentBookEvent, FullTickEvent, HistoryBarEvent};
use crate::stats::StatsSnapshot;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

/// Makes the schema of a type, inline or as a reference to a named one.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A reference to `T`'s schema (inline for arrays and primitives).
fn schema_of<T: JsonSchema>() -> SchemaFn {
    |generator| generator.subschema_for::<T>()
}

/// `T`'s own schema, always inline: for query parameters.
fn fields_of<T: JsonSchema>() -> SchemaFn {
    |generator| T::json_schema(generator)
}

/// Any JSON document.
fn any_json(_: &mut SchemaGenerator) -> Schema {
    Schema::from(true)
}

/// One `GET` endpoint.
struct Endpoint {
    path: &'static str,
    summary: &'static str,
    ok: SchemaFn,
    query: Option<SchemaFn>,
    /// Response headers of a success: name and meaning.
    headers: &'static [(&'static str, &'static str)],
    /// Refusals besides 401: status and when.
    refusals: &'static [(u16, &'static str)],
}

impl Endpoint {
    fn get(path: &'static str, summary: &'static str, ok: SchemaFn) -> Self {
        Self {
            path,
            summary,
            ok,
            query: None,
            headers: &[],
            refusals: &[],
        }
    }
}

/// Every documented endpoint: a new one is one entry here.
fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/api/symbols",
            "The latest tick of every symbol, in table order.",
            schema_of::<Vec<FullTickEvent>>(),
        ),
        Endpoint {
            query: Some(fields_of::<TicksQuery>()),
            headers: &[(
                EPOCH_HEADER,
                "The epoch of the seqs (as hello.epoch on /ws).",
            )],
            refusals: &[
                (400, "A missing or malformed parameter, named in msg."),
                (404, "No such symbol (error: unknown_symbol)."),
            ],
            ..Endpoint::get(
                "/api/ticks",
                "A symbol's retained recent updates, oldest first; each n counts the updates before it that are no longer retained (from after on), so the conflation invariant holds.",
                schema_of::<Vec<FullTickEvent>>(),
            )
        },
        Endpoint {
            query: Some(fields_of::<BarsQuery>()),
            refusals: &[
                (
                    400,
                    "A missing or malformed parameter, a bad timeframe, or from not before to; named in msg.",
                ),
                (404, "No such symbol (error: unknown_symbol)."),
            ],
            ..Endpoint::get(
                "/api/bars",
                "A symbol's retained bars in one timeframe, oldest first: the final ones, then the open one (final: false).",
                schema_of::<Vec<HistoryBarEvent>>(),
            )
        },
        Endpoint {
            query: Some(fields_of::<BookQuery>()),
            refusals: &[
                (
                    400,
                    "A missing or malformed parameter, or a depth outside 1 to the server's --depth; named in msg.",
                ),
                (
                    404,
                    "No such symbol, or no book for it (its source sends none, or none yet); error: unknown_symbol.",
                ),
            ],
            ..Endpoint::get(
                "/api/book",
                "A symbol's current book: its top levels per side, best first, as the book event a subscriber gets (n 0).",
                schema_of::<CurrentBookEvent>(),
            )
        },
        Endpoint::get(
            "/api/stats",
            "Counters and per-stage latency percentiles (docs/protocol.md, /api/stats).",
            schema_of::<StatsSnapshot>(),
        ),
        Endpoint::get(
            "/api/asyncapi.json",
            "The AsyncAPI 3 document of /ws (docs/asyncapi.json).",
            any_json,
        ),
        Endpoint::get(
            "/api/openapi.json",
            "This document (docs/openapi.json).",
            any_json,
        ),
    ]
}

/// Builds the document.
pub(super) fn document() -> Value {
    // Responses are what the server writes; query parameters what it reads.
    let mut responses = generator(SchemaSettings::draft2020_12(), true);
    let inline = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let mut queries = generator(inline, false);
    let error = schema_of::<ApiErrorBody>()(&mut responses);
    let mut paths = Map::new();
    for endpoint in endpoints() {
        let parameters = endpoint
            .query
            .map(|query| parameters(query(&mut queries).to_value()))
            .unwrap_or_default();
        let mut operation = operation(&endpoint, &error, &mut responses);
        operation["parameters"] = Value::Array(parameters);
        paths.insert(endpoint.path.into(), json!({ "get": operation }));
    }
    assert!(
        queries.definitions().is_empty(),
        "query parameters are plain values, never named schemas"
    );
    let schemas = responses.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tickfeed HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON endpoints beside the /ws WebSocket (docs/asyncapi.json). The prose contract is docs/protocol.md, \"HTTP endpoints beside /ws\". With tokens configured (--token, TICKFEED_TOKENS), every path here needs one; otherwise none does.",
        },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "The default --listen address; https:// with --tls-cert and --tls-key." }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "queryToken": { "type": "apiKey", "in": "query", "name": "token" },
            },
        },
        "security": [{ "bearer": [] }, { "queryToken": [] }, {}],
    })
}

/// The `get` operation of one endpoint.
fn operation(endpoint: &Endpoint, error: &Schema, generator: &mut SchemaGenerator) -> Value {
    let json_body = |schema: Value| json!({ "application/json": { "schema": schema } });
    let headers: Map<String, Value> = endpoint
        .headers
        .iter()
        .map(|(name, meaning)| {
            let header = json!({ "description": meaning, "schema": { "type": "string" } });
            (name.to_string(), header)
        })
        .collect();
    let mut responses = Map::new();
    let ok = (endpoint.ok)(generator).to_value();
    responses.insert(
        "200".into(),
        json!({ "description": "OK", "headers": headers, "content": json_body(ok) }),
    );
    responses.insert(
        "401".into(),
        json!({ "description": "Tokens are configured and the request carries no valid one (WWW-Authenticate: Bearer)." }),
    );
    for (status, when) in endpoint.refusals {
        let body = json_body(error.clone().to_value());
        responses.insert(
            status.to_string(),
            json!({ "description": when, "content": body }),
        );
    }
    json!({ "summary": endpoint.summary, "responses": responses })
}

/// Query parameters from an object schema: one per property, described by
/// the property's doc comment. A query string has no `null`, so an
/// optional parameter's type loses it.
fn parameters(object: Value) -> Vec<Value> {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or_default();
            if let Some(Value::Array(types)) = schema.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    schema["type"] = only.clone();
                }
            }
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": schema,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query parameters of `path`'s `get`: name and whether required.
    fn parameters_of(document: &Value, path: &str) -> Vec<(String, bool)> {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["required"] == true,
                )
            })
            .collect()
    }

    #[test]
    fn bars_takes_sym_tf_from_to_and_limit_and_needs_sym_and_tf() {
        let expected = [
            ("from", false),
            ("limit", false),
            ("sym", true),
            ("tf", true),
            ("to", false),
        ]
        .map(|(name, required)| (name.to_string(), required));
        assert_eq!(parameters_of(&document(), "/api/bars"), expected);
    }

    #[test]
    fn ticks_takes_sym_after_and_limit_and_only_sym_is_required() {
        let expected = [("after", false), ("limit", false), ("sym", true)]
            .map(|(name, required)| (name.to_string(), required));
        assert_eq!(parameters_of(&document(), "/api/ticks"), expected);
    }
}
