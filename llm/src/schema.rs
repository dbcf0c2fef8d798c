//! The JSON schema a model's answer to each decision must match (sent to the server as the
//! structured-output format, and in the prompt for servers that take none).

use serde_json::{json, Value};
use slotmesh_agent::DecisionKind;

/// The JSON schema of the answer to `kind`.
pub fn schema(kind: DecisionKind) -> Value {
    let (properties, required) = match kind {
        DecisionKind::Claim => (
            json!({ "remaining": { "type": "integer", "minimum": 1 } }),
            json!(["remaining"]),
        ),
        DecisionKind::Negotiate => (
            json!({
                "message": { "type": "string" },
                "propose_to": { "type": "array", "items": { "type": "string" } },
                "pledge": { "type": "integer", "minimum": 0 },
            }),
            json!(["message", "propose_to", "pledge"]),
        ),
        DecisionKind::Coalition => (
            json!({ "accept": { "type": "array", "items": { "type": "string" } } }),
            json!(["accept"]),
        ),
        DecisionKind::Bid => (
            json!({
                "bid": { "type": "integer", "minimum": 0 },
                "support_to": { "type": "string" },
                "support": { "type": "integer", "minimum": 0 },
                "memory_note": { "type": "string" },
            }),
            json!(["bid", "support_to", "support", "memory_note"]),
        ),
    };
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_requires_all_its_properties() {
        for kind in [
            DecisionKind::Claim,
            DecisionKind::Negotiate,
            DecisionKind::Coalition,
            DecisionKind::Bid,
        ] {
            let schema = schema(kind);
            let properties = schema["properties"].as_object().map_or(0, |p| p.len());
            let required = schema["required"].as_array().map_or(0, |r| r.len());
            assert_eq!(properties, required, "{kind:?}");
            assert_eq!(schema["additionalProperties"], false);
        }
    }
}
