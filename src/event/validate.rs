//! Envelope validation that reports every problem of an event at once.
//!
//! Validation works on the raw JSON rather than on a deserialised [`super::Event`], because a
//! deserialiser stops at the first problem and a user fixing a payload wants the whole list.

use std::fmt;

use serde_json::{Map, Value};

use super::{AggregateType, EventType, Lane, SevenLane};

/// How strict to be about the envelope itself. Payloads of the eight known types are always
/// validated strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// What this client writes: every field of PROTOCOL.md present, known types only,
    /// 4-lane status changes, `schema_version` 1.0.0, UTC timestamps.
    Client,
    /// What a server accepts from any client of the era: `correlation_id`, `schema_version`,
    /// `aggregate_type`, `team_slug` and the git fields may be absent; unknown event types and
    /// the 7-lane form of `WPStatusChanged` are accepted.
    Server,
}

/// One broken rule: which field, what the rule is, and what value was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub field: String,
    pub rule: String,
    /// The offending value as compact JSON (truncated), or `null`/`missing`.
    pub value: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (got {})", self.field, self.rule, self.value)
    }
}

/// Every problem found in one envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationReport {
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.violations.iter().map(|v| v.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationReport {}

/// Validates one envelope; `Ok` when it breaks no rule of PROTOCOL.md.
pub fn validate(envelope: &Value, strictness: Strictness) -> Result<(), ValidationReport> {
    let mut c = Checker::default();
    let Some(obj) = envelope.as_object() else {
        c.fail("", "the envelope must be a JSON object", Some(envelope));
        return c.finish();
    };
    let strict = strictness == Strictness::Client;
    // For the server, an optional envelope field sent as `null` means the same as absent
    // (older clients send `"correlation_id": null`); a present, non-null value must be valid.
    let optional = |key: &str| obj.get(key).filter(|v| strict || !v.is_null());

    let event_id = c.required_str(obj, "event_id", "", "must be a ULID", is_ulid);
    let event_type = c.required_str(obj, "event_type", "", "must be a non-empty string", |s| {
        !s.is_empty()
    });
    let known = event_type.and_then(EventType::parse);
    if let (Some(t), None) = (event_type, known)
        && strict
    {
        c.fail(
            "event_type",
            "must be one of WPStatusChanged, WPCreated, WPAssigned, FeatureCreated, \
             FeatureCompleted, HistoryAdded, ErrorLogged, DependencyResolved",
            Some(&Value::String(t.to_owned())),
        );
    }
    let aggregate_id = c.required_str(obj, "aggregate_id", "", "must be a non-empty string", |s| {
        !s.is_empty()
    });
    let payload = match obj.get("payload") {
        Some(Value::Object(p)) => Some(p),
        other => {
            c.fail("payload", "must be a JSON object", other);
            None
        }
    };

    // aggregate_type: required for the client, optional for the server, and when present it
    // must agree with the known type.
    let expected_aggregate = known.zip(payload).map(|(t, p)| t.aggregate_type(p));
    match optional("aggregate_type") {
        None if !strict => {}
        Some(Value::String(s)) => {
            if let Some(exp) = expected_aggregate
                && s != exp.as_str()
            {
                c.fail(
                    "aggregate_type",
                    &format!("must be {} for {}", exp.as_str(), event_type.unwrap_or("")),
                    obj.get("aggregate_type"),
                );
            } else if s.is_empty() {
                c.fail(
                    "aggregate_type",
                    "must be a non-empty string",
                    obj.get("aggregate_type"),
                );
            }
        }
        other => c.fail(
            "aggregate_type",
            "must be \"WorkPackage\" or \"Feature\"",
            other,
        ),
    }
    if let (Some(agg), Some(exp), Some(p)) = (aggregate_id, expected_aggregate, payload) {
        check_aggregate_id(&mut c, agg, exp, p);
    }

    c.required_str(
        obj,
        "node_id",
        "",
        "must be 12 lowercase hex characters",
        is_node_id,
    );
    match obj.get("lamport_clock") {
        Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {}
        other => c.fail("lamport_clock", "must be an integer ≥ 1", other),
    }
    let causation = c.nullable_str(
        obj,
        "causation_id",
        strict,
        "must be a ULID or null",
        is_ulid,
    );
    match optional("correlation_id") {
        None if !strict => {}
        Some(Value::String(s)) if is_ulid(s) => {
            let expected = causation.flatten().or(event_id);
            if strict && expected.is_some_and(|e| e != s) {
                c.fail(
                    "correlation_id",
                    "must equal causation_id when set, else event_id",
                    obj.get("correlation_id"),
                );
            }
        }
        other => c.fail("correlation_id", "must be a ULID", other),
    }
    c.required_str(
        obj,
        "timestamp",
        "",
        if strict {
            "must be an RFC 3339 UTC timestamp with offset, e.g. 2026-02-05T15:08:07.123+00:00"
        } else {
            "must be an RFC 3339 timestamp"
        },
        |s| is_rfc3339(s, strict),
    );
    c.required_str(obj, "project_uuid", "", "must be a UUID", is_uuid);
    c.nullable_str(
        obj,
        "project_slug",
        strict,
        "must be a string or null",
        |_| true,
    );
    if strict || optional("team_slug").is_some() {
        c.required_str(obj, "team_slug", "", "must be a non-empty string", |s| {
            !s.is_empty()
        });
    }
    match optional("schema_version") {
        None if !strict => {}
        Some(Value::String(s)) if !strict || s == super::SCHEMA_VERSION => {}
        other => c.fail("schema_version", "must be \"1.0.0\"", other),
    }
    c.nullable_str(obj, "git_branch", strict, "must be a string or null", |s| {
        !s.is_empty()
    });
    c.nullable_str(
        obj,
        "head_commit_sha",
        strict,
        "must be a full hex commit id or null",
        |s| (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit()),
    );
    c.nullable_str(
        obj,
        "repo_slug",
        strict,
        "must be \"owner/repo\" or null",
        |s| {
            s.split_once('/')
                .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty())
        },
    );

    if let (Some(t), Some(p)) = (known, payload) {
        check_payload(&mut c, t, p, strictness);
    }
    c.finish()
}

fn check_aggregate_id(c: &mut Checker, agg: &str, exp: AggregateType, p: &Map<String, Value>) {
    let key = match exp {
        AggregateType::WorkPackage => "wp_id",
        AggregateType::Feature => "feature_slug",
    };
    match p.get(key).and_then(Value::as_str) {
        Some(v) if v != agg => c.fail(
            "aggregate_id",
            &format!("must equal payload.{key} ({v})"),
            Some(&Value::String(agg.to_owned())),
        ),
        None if exp == AggregateType::Feature && !is_feature_slug(agg) => c.fail(
            "aggregate_id",
            "must be a feature slug (NNN-slug) for a Feature event",
            Some(&Value::String(agg.to_owned())),
        ),
        _ => {}
    }
}

fn check_payload(c: &mut Checker, t: EventType, p: &Map<String, Value>, strictness: Strictness) {
    const PFX: &str = "payload.";
    let lane_rule = "must be one of planned, doing, for_review, done";
    match t {
        EventType::WPStatusChanged => {
            c.wp_id(p, "wp_id");
            let seven_lane = strictness == Strictness::Server
                && !p.contains_key("new_status")
                && p.contains_key("to_lane");
            if seven_lane {
                let seven = "must be one of planned, claimed, in_progress, for_review, done, \
                             blocked, canceled";
                let from = c.required_str(p, "from_lane", PFX, seven, |s| {
                    SevenLane::parse(s).is_some()
                });
                let to =
                    c.required_str(p, "to_lane", PFX, seven, |s| SevenLane::parse(s).is_some());
                if from.is_some() && from == to {
                    c.fail(
                        "payload.to_lane",
                        "must differ from from_lane",
                        p.get("to_lane"),
                    );
                }
                c.optional_str(p, "actor", "must be a string", |_| true);
            } else {
                let prev = c.required_str(p, "previous_status", PFX, lane_rule, |s| {
                    Lane::parse(s).is_some()
                });
                let new = c.required_str(p, "new_status", PFX, lane_rule, |s| {
                    Lane::parse(s).is_some()
                });
                if prev.is_some() && prev == new {
                    c.fail(
                        "payload.new_status",
                        "must differ from previous_status",
                        p.get("new_status"),
                    );
                }
                c.non_empty(p, "changed_by");
            }
            c.optional_str(
                p,
                "feature_slug",
                "must be a feature slug (NNN-slug)",
                is_feature_slug,
            );
        }
        EventType::WPCreated => {
            c.wp_id(p, "wp_id");
            c.non_empty(p, "title");
            c.feature_slug(p, "feature_slug");
            match p.get("dependencies") {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.as_str().is_some_and(is_wp_id) {
                            c.fail(
                                &format!("payload.dependencies[{i}]"),
                                "must be a WP id (WP + two digits)",
                                Some(item),
                            );
                        }
                    }
                }
                other => c.fail(
                    "payload.dependencies",
                    "must be a list of WP ids (may be empty)",
                    other,
                ),
            }
        }
        EventType::WPAssigned => {
            c.wp_id(p, "wp_id");
            c.non_empty(p, "agent_id");
            c.required_str(p, "phase", PFX, "must be implementation or review", |s| {
                matches!(s, "implementation" | "review")
            });
            c.count(p, "retry_count");
            c.optional_str(
                p,
                "feature_slug",
                "must be a feature slug (NNN-slug)",
                is_feature_slug,
            );
        }
        EventType::FeatureCreated => {
            c.feature_slug(p, "feature_slug");
            c.required_str(p, "feature_number", PFX, "must be a 3-digit string", |s| {
                s.len() == 3 && s.chars().all(|c| c.is_ascii_digit())
            });
            c.non_empty(p, "target_branch");
            c.count(p, "wp_count");
            c.optional_str(p, "created_at", "must be an RFC 3339 timestamp", |s| {
                is_rfc3339(s, false)
            });
        }
        EventType::FeatureCompleted => {
            c.feature_slug(p, "feature_slug");
            c.count(p, "total_wps");
            c.optional_str(p, "completed_at", "must be an RFC 3339 timestamp", |s| {
                is_rfc3339(s, false)
            });
            c.optional_str(
                p,
                "total_duration",
                "must be a string like \"8h 30m\"",
                |s| !s.is_empty(),
            );
        }
        EventType::HistoryAdded => {
            c.wp_id(p, "wp_id");
            c.required_str(
                p,
                "entry_type",
                PFX,
                "must be one of note, review, error, comment",
                |s| matches!(s, "note" | "review" | "error" | "comment"),
            );
            c.non_empty(p, "entry_content");
            c.non_empty(p, "author");
            c.optional_str(
                p,
                "feature_slug",
                "must be a feature slug (NNN-slug)",
                is_feature_slug,
            );
        }
        EventType::ErrorLogged => {
            c.required_str(
                p,
                "error_type",
                PFX,
                "must be one of validation, runtime, network, auth, unknown",
                |s| matches!(s, "validation" | "runtime" | "network" | "auth" | "unknown"),
            );
            c.non_empty(p, "error_message");
            c.optional_str(p, "wp_id", "must be a WP id (WP + two digits)", is_wp_id);
            c.optional_str(p, "stack_trace", "must be a string", |_| true);
            c.optional_str(p, "agent_id", "must be a non-empty string", |s| {
                !s.is_empty()
            });
        }
        EventType::DependencyResolved => {
            let wp = c.wp_id(p, "wp_id");
            let dep = c.wp_id(p, "dependency_wp_id");
            if wp.is_some() && wp == dep {
                c.fail(
                    "payload.dependency_wp_id",
                    "must differ from wp_id (a WP cannot depend on itself)",
                    p.get("dependency_wp_id"),
                );
            }
            c.required_str(
                p,
                "resolution_type",
                PFX,
                "must be one of completed, skipped, merged",
                |s| matches!(s, "completed" | "skipped" | "merged"),
            );
        }
    }
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn finish(self) -> Result<(), ValidationReport> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationReport {
                violations: self.violations,
            })
        }
    }

    fn fail(&mut self, field: &str, rule: &str, value: Option<&Value>) {
        let value = match value {
            None => "missing".to_owned(),
            Some(v) => {
                let s = v.to_string();
                if s.chars().count() > 60 {
                    let mut t: String = s.chars().take(57).collect();
                    t.push_str("...");
                    t
                } else {
                    s
                }
            }
        };
        self.violations.push(Violation {
            field: field.to_owned(),
            rule: rule.to_owned(),
            value,
        });
    }

    /// A required string field that must satisfy `ok`; returns it when valid.
    fn required_str<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        prefix: &str,
        rule: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Option<&'a str> {
        match obj.get(key) {
            Some(Value::String(s)) if ok(s) => Some(s.as_str()),
            other => {
                self.fail(&format!("{prefix}{key}"), rule, other);
                None
            }
        }
    }

    /// A field that is a string or null; required to be present when `present` is set.
    /// Returns `Some(None)` for a valid null, `Some(Some(s))` for a valid string.
    fn nullable_str<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        present: bool,
        rule: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Option<Option<&'a str>> {
        match obj.get(key) {
            None if !present => Some(None),
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if ok(s) => Some(Some(s.as_str())),
            other => {
                self.fail(key, rule, other);
                None
            }
        }
    }

    /// An optional payload string field.
    fn optional_str(
        &mut self,
        p: &Map<String, Value>,
        key: &str,
        rule: &str,
        ok: impl Fn(&str) -> bool,
    ) {
        match p.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if ok(s) => {}
            other => self.fail(&format!("payload.{key}"), rule, other),
        }
    }

    fn wp_id<'a>(&mut self, p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        self.required_str(
            p,
            key,
            "payload.",
            "must be a WP id (WP + two digits)",
            is_wp_id,
        )
    }

    fn feature_slug(&mut self, p: &Map<String, Value>, key: &str) {
        self.required_str(
            p,
            key,
            "payload.",
            "must be a feature slug: three digits, a dash, lowercase letters, digits, dashes",
            is_feature_slug,
        );
    }

    fn non_empty(&mut self, p: &Map<String, Value>, key: &str) {
        self.required_str(p, key, "payload.", "must be a non-empty string", |s| {
            !s.trim().is_empty()
        });
    }

    fn count(&mut self, p: &Map<String, Value>, key: &str) {
        if p.get(key).and_then(Value::as_u64).is_none() {
            self.fail(
                &format!("payload.{key}"),
                "must be an integer ≥ 0",
                p.get(key),
            );
        }
    }
}

/// `^WP\d{2}$`
pub fn is_wp_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4 && &b[..2] == b"WP" && b[2].is_ascii_digit() && b[3].is_ascii_digit()
}

/// `^\d{3}-[a-z0-9-]+$`
pub fn is_feature_slug(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b'-'
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// 26 characters of Crockford base32, upper case, first character 0–7.
pub fn is_ulid(s: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let b = s.as_bytes();
    b.len() == 26 && b[0] <= b'7' && b.iter().all(|c| ALPHABET.contains(c))
}

fn is_node_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn is_rfc3339(s: &str, utc_only: bool) -> bool {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => !utc_only || t.offset().local_minus_utc() == 0,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_patterns() {
        assert!(is_wp_id("WP01") && !is_wp_id("WP1") && !is_wp_id("wp01") && !is_wp_id("WP001"));
        assert!(is_feature_slug("001-demo-feature") && !is_feature_slug("01-demo"));
        assert!(!is_feature_slug("001-Demo") && !is_feature_slug("001-"));
        assert!(is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4E") && !is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4"));
        assert!(!is_ulid("01jmby7k8n3qrvx2dpfg5hwt4e") && !is_ulid("81JMBY7K8N3QRVX2DPFG5HWT4E"));
        assert!(!is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4I"));
    }
}
