//! The AsyncAPI 3 document of `/ws`: one channel, the frames the server
//! sends (an array of events, `ServerFrame`) and the requests a client
//! sends, one message per `op`. Schemas are JSON Schema draft 07 (the
//! AsyncAPI schema format), generated from `protocol`'s types.

use super::{generator, name_alternatives, schema_ref};
use crate::protocol::{Event, PROTOCOL_VERSION, RequestShape};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// Builds the document.
pub(super) fn document() -> Value {
    let mut schemas = Map::new();
    let mut events = generator(SchemaSettings::draft07(), true);
    events.subschema_for::<Event>();
    schemas.extend(events.take_definitions(true));
    let mut requests = generator(SchemaSettings::draft07(), false);
    requests.subschema_for::<RequestShape>();
    schemas.extend(requests.take_definitions(true));
    name_alternatives(&mut schemas, "Event", "ev", "Event");
    let ops = name_alternatives(&mut schemas, "RequestShape", "op", "Request");
    schemas.insert(
        "ServerFrame".into(),
        json!({
            "description": "Every server frame: an array of events, so that the server can batch.",
            "type": "array",
            "items": schema_ref("Event"),
        }),
    );

    let mut messages = Map::new();
    messages.insert(
        "events".into(),
        json!({
            "name": "events",
            "title": "Events",
            "summary": "A frame of events: hello, ack, error, symbols, pong, tick, bar, book.",
            "payload": schema_ref("ServerFrame"),
        }),
    );
    for name in &ops {
        let op = name.trim_end_matches("Request").to_ascii_lowercase();
        let summary = schemas[name]["description"].clone();
        messages.insert(
            op.clone(),
            json!({ "name": op, "title": name, "summary": summary, "payload": schema_ref(name) }),
        );
    }
    let channel_messages: Map<String, Value> = messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            )
        })
        .collect();
    let channel_message = |name: &str| json!({ "$ref": format!("#/channels/ws/messages/{name}") });
    let sent: Vec<Value> = ops
        .iter()
        .map(|name| channel_message(&name.trim_end_matches("Request").to_ascii_lowercase()))
        .collect();

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "tickfeed WebSocket protocol",
            "version": format!("{PROTOCOL_VERSION}.0.0"),
            "description": "Live market data over one WebSocket. The prose contract, with every rule these schemas cannot say (the conflation invariant, resume, field deltas, limits, close codes), is docs/protocol.md. Encoding: JSON text frames by default; MessagePack with the same field names when the client offers the subprotocol tickfeed.v1.msgpack or adds ?encoding=msgpack.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "The default --listen address; wss:// with --tls-cert and --tls-key.",
                "security": [
                    { "$ref": "#/components/securitySchemes/bearer" },
                    { "$ref": "#/components/securitySchemes/queryToken" },
                ],
            }
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "title": "The tickfeed WebSocket",
                "description": "Every server frame is an array of events; the first holds hello. Requests are JSON objects, one per frame.",
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "encoding": { "type": "string", "enum": ["json", "msgpack"], "description": "The encoding of server frames, when no tickfeed.v1.* subprotocol is offered." },
                                "token": { "type": "string", "description": "An access token, when the server has tokens and the client cannot send an Authorization header." },
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "channel": { "$ref": "#/channels/ws" },
                "summary": "Frames of events from the server.",
                "messages": [channel_message("events")],
            },
            "sendRequests": {
                "action": "send",
                "channel": { "$ref": "#/channels/ws" },
                "summary": "Requests to the server, each answered by events with its id.",
                "messages": sent,
            },
        },
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "Authorization: Bearer TOKEN, when the server has tokens (--token, TICKFEED_TOKENS); otherwise none is needed." },
                "queryToken": { "type": "httpApiKey", "name": "token", "in": "query", "description": "?token=TOKEN, the same tokens, for clients that cannot set headers (browsers)." },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_and_request_has_a_named_schema() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        for name in [
            "HelloEvent",
            "AckEvent",
            "ErrorEvent",
            "SymbolsEvent",
            "PongEvent",
            "TickEvent",
            "BarEvent",
            "BookEvent",
        ] {
            assert!(schemas[name].is_object(), "{name}");
        }
        for op in ["subscribe", "unsubscribe", "symbols", "ping"] {
            assert!(document["components"]["messages"][op].is_object(), "{op}");
        }
    }
}
