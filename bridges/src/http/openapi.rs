//! The OpenAPI 3 description of the REST API, served at `/api/v1/openapi.json`. Built in code
//! next to the routes it describes (`routes::configure`), so the two change together; the
//! end-to-end test runs schemathesis against it on a live relay.

use actix_web::HttpResponse;
use serde_json::{json, Value as Json};

/// Characters of one address segment: anything but `/`, wildcards and URL delimiters.
const SEGMENT: &str = r"[^/*?#{}\[\]\x00-\x1f\x7f-\x9f]+";

fn error_response(description: &str) -> Json {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The failures every route can answer (auth, router down or slow).
fn common_errors() -> serde_json::Map<String, Json> {
    let mut m = serde_json::Map::new();
    m.insert("400".into(), error_response("Bad address, pattern or body"));
    m.insert(
        "401".into(),
        error_response("Missing or invalid bearer token"),
    );
    m.insert(
        "403".into(),
        error_response("The token's scopes do not allow this"),
    );
    m.insert("405".into(), error_response("Method not allowed"));
    m.insert("502".into(), error_response("The router is unreachable"));
    m.insert(
        "503".into(),
        error_response("The router or auth service is unavailable or full"),
    );
    m.insert(
        "504".into(),
        error_response("The router did not answer in time"),
    );
    m
}

fn responses(ok: Json, extra: &[(&str, &str)]) -> Json {
    let mut m = common_errors();
    m.insert("200".into(), ok);
    for (code, what) in extra {
        m.insert((*code).into(), error_response(what));
    }
    Json::Object(m)
}

fn json_ok(description: &str, schema: &str) -> Json {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn path_param(name: &str, description: &str, pattern: &str) -> Json {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string", "pattern": pattern, "maxLength": super::routes::MAX_PATH_CHARS}
    })
}

fn body(schema: &str, required: bool) -> Json {
    json!({
        "required": required,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// The document.
pub fn document() -> Json {
    let mut doc = primary_document();
    add_aliases(&mut doc);
    doc
}

fn primary_document() -> Json {
    let address_pattern = format!("^{SEGMENT}(/{SEGMENT})*$");
    let address = path_param(
        "address",
        "CLASP address without its leading slash (`lights/on` is `/lights/on`); slashes may be sent as is or as %2F",
        &address_pattern,
    );
    let prefix = path_param(
        "prefix",
        "Address prefix, by whole segments (`lights` covers `/lights` and `/lights/...`)",
        &address_pattern,
    );
    let pattern = path_param(
        "pattern",
        "CLASP pattern without its leading slash (`lights/*`, `mixer/**`)",
        r"^[^?#\x00-\x1f\x7f-\x9f]+$",
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "CLASP REST bridge",
            "version": "1",
            "description": "Router state over HTTP: read, write and delete params, emit events, take snapshots, and follow changes as Server-Sent Events."
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A CLASP token when the relay runs with auth; the --access-token of a standalone bridge"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}}
                },
                "Value": {
                    "description": "Any JSON value; integers are stored as i64, other numbers as f64, objects as maps. CLASP bytes read as arrays of numbers.",
                    "nullable": true
                },
                "State": {
                    "type": "object",
                    "required": ["address", "value", "revision", "writer", "timestamp", "timestamp_us"],
                    "properties": {
                        "address": {"type": "string"},
                        "value": {"$ref": "#/components/schemas/Value"},
                        "revision": {"type": "integer", "minimum": 0},
                        "writer": {"type": "string", "nullable": true, "description": "Session id of the last writer (`http:<token subject>` or `link:http` for REST writes)"},
                        "timestamp": {"type": "string", "description": "Time of the last write, ISO-8601 UTC"},
                        "timestamp_us": {"type": "integer", "minimum": 0, "description": "Time of the last write, µs since the Unix epoch"}
                    }
                },
                "Write": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {
                        "value": {"$ref": "#/components/schemas/Value"},
                        "revision": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "Apply only if this is the current revision (409 otherwise)"},
                        "ttl": {"type": "integer", "minimum": 0, "maximum": 2147483647, "description": "Seconds after this write when the param expires (0: never)"}
                    }
                },
                "Written": {
                    "type": "object",
                    "required": ["address", "value", "revision"],
                    "properties": {
                        "address": {"type": "string"},
                        "value": {"$ref": "#/components/schemas/Value"},
                        "revision": {"type": "integer", "minimum": 0}
                    }
                },
                "Emit": {
                    "type": "object",
                    "properties": {"value": {"$ref": "#/components/schemas/Value"}}
                },
                "Emitted": {
                    "type": "object",
                    "required": ["address", "status"],
                    "properties": {
                        "address": {"type": "string"},
                        "status": {"type": "string", "enum": ["emitted"]}
                    }
                },
                "Snapshot": {
                    "type": "object",
                    "description": "Address → value of every readable param, without revisions",
                    "additionalProperties": {"$ref": "#/components/schemas/Value"}
                }
            }
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/api/v1/state/{address}": {
                "parameters": [address],
                "get": {
                    "operationId": "getState",
                    "summary": "A param's value with its revision, writer and timestamp",
                    "responses": responses(json_ok("The param", "State"), &[("404", "No value at this address")])
                },
                "put": {
                    "operationId": "putState",
                    "summary": "Write a param (a null value deletes it)",
                    "requestBody": body("Write", true),
                    "responses": responses(json_ok("Written; the new revision", "Written"), &[
                        ("404", "A null value (delete) for an address with no value"),
                        ("409", "Revision conflict, or the conflict strategy refused"),
                        ("413", "Body too large"),
                        ("423", "Another writer holds the lock"),
                    ])
                },
                "delete": {
                    "operationId": "deleteState",
                    "summary": "Remove a param's value",
                    "responses": responses(json_ok("Deleted", "Written"), &[
                        ("404", "No value at this address"),
                        ("409", "Conflict"),
                        ("423", "Another writer holds the lock"),
                    ])
                }
            },
            "/api/v1/emit/{address}": {
                "parameters": [address],
                "post": {
                    "operationId": "emit",
                    "summary": "Publish an event",
                    "requestBody": body("Emit", false),
                    "responses": responses(json_ok("Published", "Emitted"), &[("413", "Body too large")])
                }
            },
            "/api/v1/snapshot": {
                "get": {
                    "operationId": "snapshot",
                    "summary": "Every param as a flat object",
                    "responses": responses(json_ok("Address → value", "Snapshot"), &[])
                }
            },
            "/api/v1/snapshot/{prefix}": {
                "parameters": [prefix],
                "get": {
                    "operationId": "snapshotPrefix",
                    "summary": "The params under a prefix as a flat object",
                    "responses": responses(json_ok("Address → value", "Snapshot"), &[])
                }
            },
            "/api/v1/subscribe/{pattern}": {
                "parameters": [pattern],
                "get": {
                    "operationId": "subscribe",
                    "summary": "Server-Sent Events: current values, then changes",
                    "description": "Events `value` (params) and `event` (events, streams, gestures, timelines), each with a JSON data line {address, value, type, revision?, timestamp_us?}; a comment every 15 s.",
                    "responses": responses(json!({
                        "description": "An endless event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}
                    }), &[])
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [{}],
                    "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            }
        }
    })
}

/// The same operations under every other prefix of `routes::PREFIXES` (operation ids get
/// the prefix's name, so they stay unique).
fn add_aliases(doc: &mut Json) {
    let Some(paths) = doc.get_mut("paths").and_then(Json::as_object_mut) else {
        return;
    };
    let primary = super::routes::PREFIXES[0];
    let mut aliases = Vec::new();
    for alias in super::routes::PREFIXES.iter().skip(1) {
        let suffix: String = alias
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_uppercase())
            .collect();
        for (path, item) in paths.iter() {
            let Some(rest) = path.strip_prefix(primary) else {
                continue;
            };
            if rest == "/openapi.json" {
                continue;
            }
            let mut item = item.clone();
            if let Some(ops) = item.as_object_mut() {
                for op in ops.values_mut() {
                    if let Some(id) = op.get("operationId").and_then(Json::as_str) {
                        op["operationId"] = Json::String(format!("{id}{suffix}"));
                    }
                }
            }
            aliases.push((format!("{alias}{rest}"), item));
        }
    }
    paths.extend(aliases);
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_is_described_once() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        for prefix in super::super::routes::PREFIXES {
            for route in [
                "/state/{address}",
                "/emit/{address}",
                "/snapshot",
                "/snapshot/{prefix}",
                "/subscribe/{pattern}",
            ] {
                assert!(
                    paths.contains_key(&format!("{prefix}{route}")),
                    "{prefix}{route}"
                );
            }
        }
        assert_eq!(paths.len(), 11);
        let ids: Vec<&str> = paths
            .values()
            .filter_map(Json::as_object)
            .flat_map(|item| item.values())
            .filter_map(|op| op.get("operationId")?.as_str())
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "{ids:?}");
        assert_eq!(ids.len(), 15);
    }
}
