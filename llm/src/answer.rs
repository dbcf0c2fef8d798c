//! The model's answers: one JSON schema per decision, and the checks every answer passes
//! whatever the server promised. An answer that does not parse is refused (the caller falls
//! back to the heuristic); one that parses but breaks a bound (a bid above the balance, a
//! claim out of range, a partner that does not exist, a message over 50 words) is clamped
//! to the bound, and every correction is named so it can be counted and recorded.

use crate::prompt::{untrusted, Roster};
use serde_json::Value;
use slotmesh_agent::{Decision, DecisionKind, View};
use slotmesh_proto::AgentId;
use slotmesh_proto::{CoalitionId, CoalitionProposal, Limits, NegotiationLine, Support};
use std::collections::BTreeSet;

/// Longest memory note kept from a model, in characters.
pub const MAX_NOTE_CHARS: usize = 400;
/// Terms attached to a coalition the model proposes.
pub const MODEL_TERMS: &str = "members back the shortest claimed job with their pledge";
/// Rounds a coalition the model proposes lasts.
pub const MODEL_COALITION_ROUNDS: u16 = 3;

/// What the agent may decide in one question: fixed when the question is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub(crate) credits: u64,
    /// The slots the agent's job truly needs still.
    pub(crate) remaining: u32,
    /// Whether the agent may claim less than the truth (not when its bias is 0: it is told
    /// it is honest, and its schema allows no understatement).
    pub(crate) may_understate: bool,
    pub(crate) roster: Roster,
    /// Active members that may be proposed to (not this agent, in no coalition).
    pub(crate) free_partners: BTreeSet<AgentId>,
    /// This round's proposals naming this agent, unless it is in a coalition already.
    pub(crate) offers: Vec<CoalitionId>,
    /// Its coalition partners.
    pub(crate) partners: BTreeSet<AgentId>,
    pub(crate) in_coalition: bool,
    pub(crate) limits: Limits,
}

impl Bounds {
    /// The bounds of a decision in `view`.
    pub fn of(view: &View<'_>, roster: Roster) -> Bounds {
        let coalition = view.coalition();
        let partners = coalition
            .map(|c| {
                c.members
                    .iter()
                    .copied()
                    .filter(|m| *m != view.me)
                    .collect()
            })
            .unwrap_or_default();
        Bounds {
            credits: view.credits(),
            remaining: view.job.remaining,
            may_understate: true,
            free_partners: view
                .state
                .active_members()
                .filter(|(id, m)| **id != view.me && m.coalition.is_none())
                .map(|(id, _)| *id)
                .collect(),
            offers: view
                .proposals
                .iter()
                .filter(|(_, p)| coalition.is_none() && p.partners.contains(&view.me))
                .map(|(id, _)| *id)
                .collect(),
            partners,
            in_coalition: coalition.is_some(),
            roster,
            limits: Limits::default(),
        }
    }

    /// The most a claim may understate the truth by.
    pub(crate) fn max_understatement(&self) -> u32 {
        if self.may_understate {
            self.remaining.saturating_sub(1)
        } else {
            0
        }
    }

    /// The most a proposal may pledge: a quarter of the credits.
    pub(crate) fn pledge_cap(&self) -> u64 {
        self.credits / 4
    }
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The decision.
    pub decision: Decision,
    /// What had to be corrected (empty: taken as it was).
    pub corrections: Vec<String>,
    /// A memory note, if the answer carried one.
    pub note: Option<String>,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No JSON object in the text.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A required field is missing or has the wrong type.
    #[error("field {0:?} missing or of the wrong type")]
    Field(&'static str),
}

/// The JSON object in a model's text: the whole text, or the span from the first `{` to the
/// last `}` (servers that only follow a schema written in the prompt wrap it in prose or
/// code fences).
pub fn extract_json(text: &str) -> Result<Value, Refused> {
    let parse = |s: &str| {
        serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
    };
    if let Some(value) = parse(text.trim()) {
        return Ok(value);
    }
    match (text.find('{'), text.rfind('}')) {
        (Some(start), Some(end)) if start < end => parse(&text[start..=end]),
        _ => None,
    }
    .ok_or_else(|| Refused::NotJson(text.chars().take(60).collect()))
}

fn integer(value: &Value, key: &'static str) -> Result<i128, Refused> {
    match value.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or(Refused::Field(key)),
        _ => Err(Refused::Field(key)),
    }
}

fn string<'a>(value: &'a Value, key: &'static str) -> Result<&'a str, Refused> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or(Refused::Field(key))
}

fn strings<'a>(value: &'a Value, key: &'static str) -> Result<Vec<&'a str>, Refused> {
    value
        .get(key)
        .and_then(Value::as_array)
        .ok_or(Refused::Field(key))?
        .iter()
        .map(|v| v.as_str().ok_or(Refused::Field(key)))
        .collect()
}

/// Clamps `value` into `low..=high`, noting a correction.
fn clamp(value: i128, low: u64, high: u64, what: &str, corrections: &mut Vec<String>) -> u64 {
    let clamped = value.clamp(i128::from(low), i128::from(high));
    if clamped != value {
        corrections.push(format!("{what} {value} clamped to {clamped}"));
    }
    u64::try_from(clamped).unwrap_or(low)
}

/// Cuts a message to the protocol's word and byte limits.
fn fit_text(text: &str, limits: &Limits, corrections: &mut Vec<String>) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut fitted = words
        .iter()
        .take(limits.max_words)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if words.len() > limits.max_words {
        corrections.push(format!(
            "message of {} words cut to {}",
            words.len(),
            limits.max_words
        ));
    }
    if fitted.len() > limits.max_text_bytes {
        let mut end = limits.max_text_bytes;
        while !fitted.is_char_boundary(end) {
            end -= 1;
        }
        fitted.truncate(end);
        corrections.push(format!("message cut to {} bytes", limits.max_text_bytes));
    }
    fitted
}

/// Checks the model's `text` as an answer to `kind` within `bounds`.
pub fn check(kind: DecisionKind, text: &str, bounds: &Bounds) -> Result<Checked, Refused> {
    let value = extract_json(text)?;
    let mut corrections = Vec::new();
    let mut note = None;
    let decision = match kind {
        DecisionKind::Claim => {
            // Asked relative to the truth; records written before that hold `remaining`.
            let claimed = match value.get("understate_by") {
                Some(_) => {
                    let truth = i128::from(bounds.remaining.max(1));
                    let by = integer(&value, "understate_by")?;
                    let most = i128::from(bounds.max_understatement());
                    // Out of range, the number is not an understatement the model chose (a
                    // small model copies numbers from the context): read as the truth, not
                    // clamped to the largest lie.
                    let by = if (0..=most).contains(&by) {
                        by
                    } else {
                        corrections.push(format!(
                            "understate_by {by} outside 0..={most}: read as 0 (the truth)"
                        ));
                        0
                    };
                    truth - by
                }
                None => integer(&value, "remaining")?,
            };
            let claim = clamp(
                claimed,
                1,
                u64::from(bounds.limits.max_claim),
                "claim",
                &mut corrections,
            );
            Decision::Claim(u32::try_from(claim).unwrap_or(1))
        }
        DecisionKind::Negotiate => {
            let text = fit_text(string(&value, "message")?, &bounds.limits, &mut corrections);
            let lines = if text.is_empty() {
                Vec::new()
            } else {
                vec![NegotiationLine { to: None, text }]
            };
            let mut partners = BTreeSet::new();
            for label in strings(&value, "propose_to")? {
                match bounds.roster.id_of(label) {
                    Some(id) if bounds.free_partners.contains(&id) => {
                        partners.insert(id);
                    }
                    _ => corrections.push(format!(
                        "partner {:?} is not a free member: dropped",
                        untrusted(label)
                    )),
                }
            }
            if partners.len() > bounds.limits.max_partners {
                corrections.push(format!(
                    "{} partners cut to {}",
                    partners.len(),
                    bounds.limits.max_partners
                ));
            }
            let partners: Vec<AgentId> = partners
                .into_iter()
                .take(bounds.limits.max_partners)
                .collect();
            let pledge_cap = bounds.pledge_cap();
            let pledge = clamp(
                integer(&value, "pledge")?,
                0,
                pledge_cap,
                "pledge",
                &mut corrections,
            );
            let proposal = if partners.is_empty() {
                None
            } else if bounds.in_coalition {
                corrections.push("already in a coalition: proposal dropped".into());
                None
            } else {
                Some(CoalitionProposal {
                    partners,
                    terms: MODEL_TERMS.into(),
                    duration_rounds: MODEL_COALITION_ROUNDS,
                    pledge,
                })
            };
            Decision::Negotiate { lines, proposal }
        }
        DecisionKind::Coalition => {
            let mut accepted = Vec::new();
            for label in strings(&value, "accept")? {
                let offer = bounds
                    .roster
                    .id_of(label)
                    .and_then(|id| bounds.offers.iter().find(|o| o.proposer == id));
                match offer {
                    Some(id) if !accepted.contains(id) => accepted.push(*id),
                    Some(_) => {}
                    None => corrections.push(format!(
                        "no proposal from {:?} to accept: dropped",
                        untrusted(label)
                    )),
                }
            }
            accepted.sort();
            accepted.truncate(bounds.limits.max_acceptances);
            Decision::Accept(accepted)
        }
        DecisionKind::Bid => {
            let bid = clamp(
                integer(&value, "bid")?,
                0,
                bounds.credits,
                "bid",
                &mut corrections,
            );
            let to = string(&value, "support_to")?.trim();
            let amount = integer(&value, "support")?;
            let support = if to.is_empty() || amount == 0 {
                None
            } else {
                match bounds.roster.id_of(to) {
                    Some(id) if bounds.partners.contains(&id) => {
                        let amount =
                            clamp(amount, 0, bounds.credits - bid, "support", &mut corrections);
                        (amount > 0).then_some(Support {
                            beneficiary: id,
                            amount,
                        })
                    }
                    _ => {
                        corrections.push(format!(
                            "support to {:?}, not a coalition partner: dropped",
                            untrusted(to)
                        ));
                        None
                    }
                }
            };
            let memo: String = string(&value, "memory_note")?
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_NOTE_CHARS)
                .collect();
            note = Some(memo.trim().to_string()).filter(|n| !n.is_empty());
            Decision::Bid {
                bid,
                support,
                deposit: bid + support.map_or(0, |s| s.amount),
            }
        }
    };
    Ok(Checked {
        decision,
        corrections,
        note,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;
    use slotmesh_agent::Job;
    use slotmesh_proto::{LedgerState, SwarmId};
    use slotmesh_proto::{MemberRecord, INITIAL_CREDITS};

    /// A record of two active members, A (this agent) and B.
    pub(crate) fn two_members() -> (LedgerState, AgentId, AgentId) {
        let mut state = LedgerState::genesis(SwarmId::from_name("test"));
        let (me, other) = (AgentId([1; 32]), AgentId([2; 32]));
        state.members.insert(me, MemberRecord::new("A".into(), 0));
        state
            .members
            .insert(other, MemberRecord::new("B".into(), 0));
        (state, me, other)
    }

    fn bounds(state: &LedgerState, me: AgentId) -> Bounds {
        bounds_in(state, me, 3)
    }

    /// A's bounds with `remaining` slots of its job to run.
    pub(crate) fn bounds_in(state: &LedgerState, me: AgentId, remaining: u32) -> Bounds {
        let view = View {
            me,
            round: 1,
            job: Job {
                burst: remaining,
                remaining,
            },
            state,
            messages: None,
            proposals: &[],
        };
        Bounds::of(&view, Roster::of(&view))
    }

    #[test]
    fn a_bid_above_the_balance_is_clamped_and_a_stranger_gets_no_support() {
        let (state, me, _) = two_members();
        let checked = check(
            DecisionKind::Bid,
            r#"{"bid": 99999999, "support_to": "B", "support": 5, "memory_note": "B is honest"}"#,
            &bounds(&state, me),
        )
        .unwrap();
        assert_eq!(
            checked.decision,
            Decision::Bid {
                bid: INITIAL_CREDITS,
                support: None,
                deposit: INITIAL_CREDITS
            }
        );
        assert_eq!(checked.corrections.len(), 2, "{:?}", checked.corrections);
        assert_eq!(checked.note.as_deref(), Some("B is honest"));
    }

    #[test]
    fn a_claim_is_the_truth_less_the_understatement_within_the_job() {
        let (state, me, _) = two_members();
        let bounds = bounds_in(&state, me, 5);
        let truthful = check(
            DecisionKind::Claim,
            r#"{"reasoning": "honest", "understate_by": 0}"#,
            &bounds,
        )
        .unwrap();
        assert_eq!(truthful.decision, Decision::Claim(5));
        assert!(truthful.corrections.is_empty());
        let lie = check(DecisionKind::Claim, r#"{"understate_by": 2}"#, &bounds).unwrap();
        assert_eq!(lie.decision, Decision::Claim(3));
        // Below one slot, or above the truth, is out of the question's range.
        // Out of range (a number copied from the context, or negative): the truth, not the
        // largest lie.
        for by in [9, 1029, -3] {
            let odd = check(
                DecisionKind::Claim,
                &format!(r#"{{"understate_by": {by}}}"#),
                &bounds,
            )
            .unwrap();
            assert_eq!(odd.decision, Decision::Claim(5), "{by}");
            assert_eq!(odd.corrections.len(), 1, "{:?}", odd.corrections);
        }
        // An agent told it is honest may not understate at all.
        let honest = Bounds {
            may_understate: false,
            ..bounds
        };
        let lie = check(DecisionKind::Claim, r#"{"understate_by": 2}"#, &honest).unwrap();
        assert_eq!(lie.decision, Decision::Claim(5));
    }

    #[test]
    fn claims_are_clamped_into_range_and_garbage_is_refused() {
        let (state, me, _) = two_members();
        let bounds = bounds(&state, me);
        let zero = check(DecisionKind::Claim, r#"{"remaining": 0}"#, &bounds).unwrap();
        assert_eq!(zero.decision, Decision::Claim(1));
        assert_eq!(zero.corrections, vec!["claim 0 clamped to 1".to_string()]);
        let fenced = check(
            DecisionKind::Claim,
            "Sure!\n```json\n{\"remaining\": 3}\n```",
            &bounds,
        )
        .unwrap();
        assert_eq!(fenced.decision, Decision::Claim(3));
        assert!(fenced.corrections.is_empty());
        assert!(matches!(
            check(DecisionKind::Claim, "I claim three", &bounds),
            Err(Refused::NotJson(_))
        ));
        assert_eq!(
            check(DecisionKind::Claim, r#"{"remaining": "three"}"#, &bounds),
            Err(Refused::Field("remaining"))
        );
    }

    #[test]
    fn long_messages_are_cut_and_only_free_members_are_proposed_to() {
        let (state, me, other) = two_members();
        let answer = serde_json::json!({
            "message": "word ".repeat(60),
            "propose_to": ["B", "Nobody"],
            "pledge": 2,
        });
        let checked = check(
            DecisionKind::Negotiate,
            &answer.to_string(),
            &bounds(&state, me),
        )
        .unwrap();
        let Decision::Negotiate { lines, proposal } = checked.decision else {
            panic!("not a negotiation");
        };
        assert_eq!(lines[0].text.split_whitespace().count(), 50);
        assert_eq!(proposal.map(|p| p.partners), Some(vec![other]));
        assert_eq!(checked.corrections.len(), 2, "{:?}", checked.corrections);
    }
}
