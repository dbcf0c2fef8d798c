//! The JSON schema a model's answer to one question must match, built from that question's
//! real bounds: the most it can bid or pledge, the partners and offers that exist (as
//! `enum`s), short strings. It is sent to the server as the structured-output format
//! (llama.cpp's server turns it into a grammar: the fields, their types and the `enum`s
//! hold; llama-cpp-python 0.3 does not enforce integer maxima, bench/llm-results.md) and
//! told in the prompt in one line. A claim is asked relative to the truth
//! (`understate_by`), the natural choice, not as a number to make up. Every answer is
//! still checked ([`crate::answer::check`]): the schema is a help, not a guarantee.
//!
//! Each schema starts with a short `reasoning` string (recorded, never shown to other
//! agents), so a model that writes before it decides does so before the decision's fields.

use crate::answer::{Bounds, MAX_NOTE_CHARS};
use serde_json::{json, Value};
use slotmesh_agent::DecisionKind;

/// Longest `reasoning` a schema allows, in characters.
pub const MAX_REASONING_CHARS: u64 = 200;
/// Longest negotiation message a schema allows, in characters (the protocol also cuts to
/// 50 words).
pub const MAX_MESSAGE_CHARS: u64 = 300;

/// A list of at most `most` of `names` (none when `names` is empty).
fn names(names: Vec<String>, most: usize) -> Value {
    if names.is_empty() {
        return json!({ "type": "array", "items": { "type": "string" }, "maxItems": 0 });
    }
    let most = most.min(names.len());
    json!({
        "type": "array",
        "items": { "type": "string", "enum": names },
        "maxItems": most,
    })
}

/// The JSON schema of the answer to `kind` asked within `bounds`.
pub fn schema(kind: DecisionKind, bounds: &Bounds) -> Value {
    let reasoning = json!({ "type": "string", "maxLength": MAX_REASONING_CHARS });
    let (properties, required) = match kind {
        DecisionKind::Claim => (
            json!({
                "reasoning": reasoning,
                "understate_by": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": bounds.max_understatement(),
                },
            }),
            json!(["reasoning", "understate_by"]),
        ),
        DecisionKind::Negotiate => (
            json!({
                "reasoning": reasoning,
                "message": { "type": "string", "maxLength": MAX_MESSAGE_CHARS },
                "propose_to": names(
                    bounds.free_partners.iter().map(|id| bounds.roster.label(id)).collect(),
                    bounds.limits.max_partners,
                ),
                "pledge": { "type": "integer", "minimum": 0, "maximum": bounds.pledge_cap() },
            }),
            json!(["reasoning", "message", "propose_to", "pledge"]),
        ),
        DecisionKind::Coalition => (
            json!({
                "reasoning": reasoning,
                "accept": names(
                    bounds.offers.iter().map(|o| bounds.roster.label(&o.proposer)).collect(),
                    bounds.limits.max_acceptances,
                ),
            }),
            json!(["reasoning", "accept"]),
        ),
        DecisionKind::Bid => {
            let mut partners: Vec<String> = vec![String::new()];
            partners.extend(bounds.partners.iter().map(|id| bounds.roster.label(id)));
            (
                json!({
                    "reasoning": reasoning,
                    "bid": { "type": "integer", "minimum": 0, "maximum": bounds.credits },
                    "support_to": { "type": "string", "enum": partners },
                    "support": { "type": "integer", "minimum": 0, "maximum": bounds.credits },
                    "memory_note": { "type": "string", "maxLength": MAX_NOTE_CHARS },
                }),
                json!(["reasoning", "bid", "support_to", "support", "memory_note"]),
            )
        }
    };
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A schema told in a line, for the prompt: `{"reasoning": text of at most 200 characters,
/// "understate_by": integer 0..4}`. A small model reads this more easily than the JSON
/// schema itself (which goes to the server as the format), and it costs fewer tokens.
pub fn describe(schema: &Value) -> String {
    let fields: Vec<String> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| format!("\"{name}\": {}", describe_value(property)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn describe_value(property: &Value) -> String {
    let choices = |values: &Value| -> String {
        values
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match property["type"].as_str() {
        Some("integer") => format!(
            "integer {}..{}",
            property["minimum"],
            property.get("maximum").map_or("".into(), Value::to_string)
        ),
        Some("string") if property.get("enum").is_some() => {
            format!("one of {}", choices(&property["enum"]))
        }
        Some("string") => format!("text of at most {} characters", property["maxLength"]),
        Some("array") if property["maxItems"] == 0 => "[] (nothing to choose)".into(),
        Some("array") => format!(
            "list of at most {} of {}",
            property["maxItems"],
            choices(&property["items"]["enum"])
        ),
        _ => property.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::answer::tests::{bounds_in, two_members};

    const KINDS: [DecisionKind; 4] = [
        DecisionKind::Claim,
        DecisionKind::Negotiate,
        DecisionKind::Coalition,
        DecisionKind::Bid,
    ];

    #[test]
    fn every_schema_requires_all_its_properties_reasoning_first() {
        let (state, me, _) = two_members();
        for kind in KINDS {
            let schema = schema(kind, &bounds_in(&state, me, 3));
            let properties = schema["properties"].as_object().unwrap();
            let required = schema["required"].as_array().unwrap();
            assert_eq!(properties.len(), required.len(), "{kind:?}");
            assert_eq!(
                properties.keys().next().map(String::as_str),
                Some("reasoning")
            );
            assert_eq!(schema["additionalProperties"], false);
        }
    }

    #[test]
    fn the_schema_carries_the_real_bounds_and_the_partners_that_exist() {
        let (state, me, _) = two_members();
        let bounds = bounds_in(&state, me, 5);
        let claim = schema(DecisionKind::Claim, &bounds);
        assert_eq!(claim["properties"]["understate_by"]["maximum"], 4);
        let bid = schema(DecisionKind::Bid, &bounds);
        assert_eq!(
            bid["properties"]["bid"]["maximum"],
            slotmesh_proto::INITIAL_CREDITS
        );
        // Not in a coalition: support goes to nobody.
        assert_eq!(bid["properties"]["support_to"]["enum"], json!([""]));
        let negotiate = schema(DecisionKind::Negotiate, &bounds);
        assert_eq!(
            negotiate["properties"]["propose_to"]["items"]["enum"],
            json!(["B"])
        );
        assert_eq!(
            negotiate["properties"]["pledge"]["maximum"],
            slotmesh_proto::INITIAL_CREDITS / 4
        );
        let coalition = schema(DecisionKind::Coalition, &bounds);
        assert_eq!(coalition["properties"]["accept"]["maxItems"], 0);
    }

    #[test]
    fn a_schema_is_told_in_one_line() {
        let (state, me, _) = two_members();
        let bounds = bounds_in(&state, me, 5);
        assert_eq!(
            describe(&schema(DecisionKind::Claim, &bounds)),
            r#"{"reasoning": text of at most 200 characters, "understate_by": integer 0..4}"#
        );
        assert_eq!(
            describe(&schema(DecisionKind::Negotiate, &bounds)),
            r#"{"reasoning": text of at most 200 characters, "message": text of at most 300 characters, "propose_to": list of at most 1 of "B", "pledge": integer 0..250}"#
        );
        assert_eq!(
            describe(&schema(DecisionKind::Coalition, &bounds)),
            r#"{"reasoning": text of at most 200 characters, "accept": [] (nothing to choose)}"#
        );
        assert_eq!(
            describe(&schema(DecisionKind::Bid, &bounds)),
            r#"{"reasoning": text of at most 200 characters, "bid": integer 0..1000, "support_to": one of "", "support": integer 0..1000, "memory_note": text of at most 400 characters}"#
        );
    }
}
