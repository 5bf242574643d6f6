//! The text of event commits and sync-state commits.
//!
//! An event commit message is
//!
//! ```text
//! WPStatusChanged WP01 planned → doing
//!
//! {"event_id":"01J…",…the complete envelope…}
//!
//! Event-Id: 01J…
//! Lamport: 42
//! Seq: 17
//! ```
//!
//! The JSON is the source of truth. The trailers exist so that a tip can be read without parsing
//! the JSON (the Lamport clock of every chain tip is needed on every append) and so that `Seq`,
//! the 1-based position of the commit on its chain, makes counting pending events O(1).
//!
//! A commit on a *pulled* chain (a teammate's events, written by `sync now`) may carry one more
//! trailer, `Witnessed: N`, when N (the highest clock on the chain so far) is above the event's
//! own clock: the server delivers an event it accepted on a later retry after events with higher
//! clocks, so a pulled chain is in arrival order, not clock order, and its tip alone would
//! understate what this clone has witnessed.
//!
//! A sync-state commit message is a subject line and the [`SyncRecord`] as JSON. Its mark (the
//! newest event commit the server answered for) is stored once, as the commit's first parent;
//! the mark's `Seq` is read from that commit.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// The trailers of an event commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTrailers<'a> {
    pub event_id: &'a str,
    pub lamport: u64,
    pub seq: u64,
    /// The highest clock witnessed on the chain up to this commit (at least `lamport`).
    pub witnessed: u64,
}

/// Why a commit message is not a valid event or sync-state message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message has no `Event-Id:`/`Lamport:`/`Seq:` trailer block")]
    MissingTrailers,
    #[error("trailer `{0}` is not a valid number")]
    BadTrailer(&'static str),
    #[error("the message body is not a JSON event envelope: {0}")]
    BadJson(String),
    #[error("the JSON says {json} but the trailer says {trailer} for {field}")]
    Mismatch {
        field: &'static str,
        json: String,
        trailer: String,
    },
    #[error("the message is not UTF-8")]
    NotUtf8,
    #[error("the sync-state message has no JSON record after its subject line")]
    MissingSyncRecord,
    #[error("the sync-state record is not valid JSON: {0}")]
    BadSyncRecord(String),
}

/// Formats the commit message for `event` at position `seq` of its chain.
pub fn format_event(event: &Event, seq: u64) -> String {
    format_event_witnessed(event, seq, event.lamport_clock)
}

/// Formats an event commit message of a pulled chain whose highest clock so far is `witnessed`
/// (the `Witnessed:` trailer is written only when it exceeds the event's own clock).
pub fn format_event_witnessed(event: &Event, seq: u64, witnessed: u64) -> String {
    // Serialising a struct of strings, numbers and a JSON map cannot fail.
    let json = serde_json::to_string(event).unwrap_or_default();
    let extra = if witnessed > event.lamport_clock {
        format!("Witnessed: {witnessed}\n")
    } else {
        String::new()
    };
    format!(
        "{}\n\n{}\n\nEvent-Id: {}\nLamport: {}\nSeq: {}\n{extra}",
        event.summary(),
        json,
        event.event_id,
        event.lamport_clock,
        seq
    )
}

/// Reads only the trailers of an event commit message (cheap: no JSON parsing).
pub fn parse_trailers(message: &str) -> Result<EventTrailers<'_>, MessageError> {
    let block = trailer_block(message).ok_or(MessageError::MissingTrailers)?;
    let mut event_id = None;
    let mut lamport = None;
    let mut seq = None;
    let mut witnessed = 0;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("Event-Id: ") {
            event_id = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("Lamport: ") {
            lamport = Some(
                v.trim()
                    .parse()
                    .map_err(|_| MessageError::BadTrailer("Lamport"))?,
            );
        } else if let Some(v) = line.strip_prefix("Seq: ") {
            seq = Some(
                v.trim()
                    .parse()
                    .map_err(|_| MessageError::BadTrailer("Seq"))?,
            );
        } else if let Some(v) = line.strip_prefix("Witnessed: ") {
            witnessed = v
                .trim()
                .parse()
                .map_err(|_| MessageError::BadTrailer("Witnessed"))?;
        }
    }
    match (event_id, lamport, seq) {
        (Some(event_id), Some(lamport), Some(seq)) => Ok(EventTrailers {
            event_id,
            lamport,
            seq,
            witnessed: witnessed.max(lamport),
        }),
        _ => Err(MessageError::MissingTrailers),
    }
}

/// Parses a whole event commit message: the envelope and its trailers, checked against each
/// other.
pub fn parse_event(message: &str) -> Result<(Event, u64), MessageError> {
    let trailers = parse_trailers(message)?;
    let json = event_json(message).ok_or(MessageError::MissingTrailers)?;
    let event: Event =
        serde_json::from_str(json).map_err(|e| MessageError::BadJson(e.to_string()))?;
    if event.event_id != trailers.event_id {
        return Err(MessageError::Mismatch {
            field: "event_id",
            json: event.event_id,
            trailer: trailers.event_id.to_owned(),
        });
    }
    if event.lamport_clock != trailers.lamport {
        return Err(MessageError::Mismatch {
            field: "lamport_clock",
            json: event.lamport_clock.to_string(),
            trailer: trailers.lamport.to_string(),
        });
    }
    Ok((event, trailers.seq))
}

/// The raw JSON text of an event commit message (between the subject and the trailers).
pub fn event_json(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("\n\n")?;
    let end = rest.rfind("\n\nEvent-Id: ")?;
    Some(rest[..end].trim())
}

fn trailer_block(message: &str) -> Option<&str> {
    let start = message.rfind("\n\nEvent-Id: ")?;
    Some(&message[start + 2..])
}

/// One event the server rejected, remembered by the sync state until it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvent {
    pub event_id: String,
    pub retry_count: u32,
    pub error: String,
}

/// What a sync-state commit records (its message body, as JSON).
///
/// The mark itself is not in here: it is the commit's first parent (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    pub server_url: String,
    pub team: String,
    /// RFC 3339 time of the sync.
    pub time: String,
    /// Events of the chain the server has settled (up to the mark, minus the rejected ones).
    pub acknowledged: u64,
    /// Every event up to the mark that the server rejected and that is still pending.
    pub rejected: Vec<RejectedEvent>,
    /// Where the next pull of the team's events resumes (the server's opaque cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_cursor: Option<String>,
}

/// Formats a sync-state commit message; `mark_seq` only makes the subject readable.
pub fn format_sync(node: &str, mark_seq: u64, record: &SyncRecord) -> String {
    let json = serde_json::to_string(record).unwrap_or_default();
    format!(
        "sync {node}: {} acknowledged, {} rejected, up to #{mark_seq} ({})\n\n{json}\n",
        record.acknowledged,
        record.rejected.len(),
        record.server_url,
    )
}

/// Parses a sync-state commit message. Messages written before the mark was stored once end
/// with a `Mark-Seq:` trailer, which is ignored (the mark's own `Seq` is the truth).
pub fn parse_sync(message: &str) -> Result<SyncRecord, MessageError> {
    let (_, rest) = message
        .split_once("\n\n")
        .ok_or(MessageError::MissingSyncRecord)?;
    let json = match rest.rfind("\n\nMark-Seq: ") {
        Some(end) => &rest[..end],
        None => rest,
    };
    let json = json.trim();
    if json.is_empty() {
        return Err(MessageError::MissingSyncRecord);
    }
    serde_json::from_str(json).map_err(|e| MessageError::BadSyncRecord(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Lane, Origin, Payload};

    #[test]
    fn event_message_round_trips() {
        let p = Payload::WPStatusChanged {
            wp_id: "WP01".into(),
            previous_status: Lane::Planned,
            new_status: Lane::Doing,
            changed_by: "alice".into(),
            feature_slug: None,
        };
        let mut e = Event::new(&p, &Origin::default(), None, None);
        e.lamport_clock = 42;
        let msg = format_event(&e, 7);
        assert!(msg.starts_with("WPStatusChanged WP01 planned → doing\n\n{"));
        let t = parse_trailers(&msg).unwrap();
        assert_eq!((t.lamport, t.seq), (42, 7));
        let (back, seq) = parse_event(&msg).unwrap();
        assert_eq!(back, e);
        assert_eq!(seq, 7);
    }

    #[test]
    fn garbage_is_reported_not_panicked() {
        assert_eq!(parse_trailers("hello"), Err(MessageError::MissingTrailers));
        let bad = "s\n\nnot json\n\nEvent-Id: X\nLamport: 1\nSeq: 1\n";
        assert!(matches!(parse_event(bad), Err(MessageError::BadJson(_))));
    }

    fn record() -> SyncRecord {
        SyncRecord {
            server_url: "https://kitty.example.com".into(),
            team: "acme".into(),
            time: "2026-02-05T15:08:07.123+00:00".into(),
            acknowledged: 3,
            rejected: Vec::new(),
            pull_cursor: Some("17".into()),
        }
    }

    #[test]
    fn sync_message_round_trips_without_a_second_copy_of_the_mark() {
        let msg = format_sync("abc", 3, &record());
        assert!(!msg.contains("Mark-Seq"), "{msg}");
        assert!(!msg.contains("mark_seq"), "{msg}");
        assert_eq!(parse_sync(&msg), Ok(record()));
    }

    #[test]
    fn older_sync_messages_with_a_mark_seq_still_parse() {
        let json = r#"{"mark_seq":3,"server_url":"https://kitty.example.com","team":"acme","time":"2026-02-05T15:08:07.123+00:00","acknowledged":3,"rejected":[],"pull_cursor":"17"}"#;
        let msg = format!("sync abc: 3 acknowledged\n\n{json}\n\nMark-Seq: 3\n");
        assert_eq!(parse_sync(&msg), Ok(record()));
    }

    #[test]
    fn a_broken_sync_message_says_so_in_sync_terms() {
        let err = parse_sync("sync abc: 3 acknowledged").unwrap_err();
        assert_eq!(err, MessageError::MissingSyncRecord);
        assert!(!err.to_string().contains("Event-Id"), "{err}");
        let err = parse_sync("sync abc\n\n{not json").unwrap_err();
        assert!(matches!(err, MessageError::BadSyncRecord(_)), "{err}");
    }

    #[test]
    fn witnessed_trailer_is_written_only_above_the_own_clock() {
        let p = Payload::WPStatusChanged {
            wp_id: "WP01".into(),
            previous_status: Lane::Planned,
            new_status: Lane::Doing,
            changed_by: "alice".into(),
            feature_slug: None,
        };
        let mut e = Event::new(&p, &Origin::default(), None, None);
        e.lamport_clock = 4;
        let plain = format_event_witnessed(&e, 2, 4);
        assert!(!plain.contains("Witnessed"));
        assert_eq!(parse_trailers(&plain).unwrap().witnessed, 4);
        let late = format_event_witnessed(&e, 2, 9);
        assert_eq!(parse_trailers(&late).unwrap().witnessed, 9);
        assert_eq!(parse_event(&late).unwrap().0, e);
    }
}
