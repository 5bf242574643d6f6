//! The live fan-out of newly stored events to every open subscriber of a team.
//!
//! A subscriber is anything that wants a team's events as they are stored: a WebSocket
//! connection (`ws`), the dashboard's server-sent events. Each one gets a bounded queue; the
//! registry never waits for a subscriber. When a queue is full the subscriber is dropped
//! ([`Closed::TooSlow`]) instead of letting memory grow: its client catches up through pull
//! (PROTOCOL.md). Revoking a user ([`Fanout::revoke_user`]) drops its subscribers at once.
//!
//! Envelopes are handed out as the stored text (`Arc<str>`, shared by every subscriber); each
//! transport frames them itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Identifies one subscriber, so that fan-out can skip the sender of an event.
pub type SubscriberId = u64;

/// The queue length the WebSocket endpoint gives each connection.
pub const DEFAULT_QUEUE: usize = 1024;

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Its queue was full: it could not keep up with the team's events.
    TooSlow,
    /// Its user was disabled or its session revoked.
    Revoked,
}

const OPEN: u8 = 0;
const TOO_SLOW: u8 = 1;
const REVOKED: u8 = 2;

struct Entry {
    tx: mpsc::Sender<Arc<str>>,
    username: String,
    /// The login session (refresh-token family) it was opened under, when known.
    session: Option<String>,
    closed: Arc<AtomicU8>,
}

impl Entry {
    fn close(&self, why: u8) {
        let _ = self
            .closed
            .compare_exchange(OPEN, why, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[derive(Default)]
struct Inner {
    next_id: AtomicU64,
    teams: Mutex<HashMap<String, HashMap<SubscriberId, Entry>>>,
}

/// The registry of subscribers, per team. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Fanout {
    inner: Arc<Inner>,
}

/// Who subscribes: the team whose events it receives and the user (and session) it acts for,
/// so that revoking them reaches the subscription.
#[derive(Debug, Clone)]
pub struct SubscribeAs {
    pub team_slug: String,
    pub username: String,
    pub session: Option<String>,
}

/// One open subscription; dropping it unsubscribes.
pub struct Subscription {
    id: SubscriberId,
    team_slug: String,
    rx: mpsc::Receiver<Arc<str>>,
    closed: Arc<AtomicU8>,
    fanout: Fanout,
}

impl Subscription {
    /// The id to pass as `except` when this subscriber itself sent the events.
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// The next envelope; `Err` once the subscription was dropped by the registry (it is then
    /// unregistered). Envelopes still queued when a user is revoked are not delivered.
    pub async fn recv(&mut self) -> Result<Arc<str>, Closed> {
        let next = self.rx.recv().await;
        match (self.closed.load(Ordering::Acquire), next) {
            (REVOKED, _) => Err(Closed::Revoked),
            (_, Some(envelope)) => Ok(envelope),
            (_, None) => Err(Closed::TooSlow),
        }
    }

    /// Why the registry dropped this subscription, if it did.
    pub fn closed(&self) -> Option<Closed> {
        match self.closed.load(Ordering::Acquire) {
            TOO_SLOW => Some(Closed::TooSlow),
            REVOKED => Some(Closed::Revoked),
            _ => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.unsubscribe(&self.team_slug, self.id);
    }
}

impl Fanout {
    /// Subscribes to the events of `who.team_slug` with a queue of `capacity` envelopes.
    pub fn subscribe(&self, who: SubscribeAs, capacity: usize) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let closed = Arc::new(AtomicU8::new(OPEN));
        let subscriber = Entry {
            tx,
            username: who.username,
            session: who.session,
            closed: closed.clone(),
        };
        if let Ok(mut teams) = self.inner.teams.lock() {
            teams
                .entry(who.team_slug.clone())
                .or_default()
                .insert(id, subscriber);
        }
        Subscription {
            id,
            team_slug: who.team_slug,
            rx,
            closed,
            fanout: self.clone(),
        }
    }

    fn unsubscribe(&self, team_slug: &str, id: SubscriberId) {
        if let Ok(mut teams) = self.inner.teams.lock()
            && let Some(subs) = teams.get_mut(team_slug)
        {
            subs.remove(&id);
            if subs.is_empty() {
                teams.remove(team_slug);
            }
        }
    }

    /// Queues each envelope for every subscriber of the team except `except`. Never blocks:
    /// a subscriber whose queue is full is dropped.
    pub fn publish(&self, team_slug: &str, except: Option<SubscriberId>, envelopes: &[String]) {
        let Ok(mut teams) = self.inner.teams.lock() else {
            return;
        };
        let Some(subs) = teams.get_mut(team_slug) else {
            return;
        };
        if subs.keys().all(|id| Some(*id) == except) {
            return;
        }
        let shared: Vec<Arc<str>> = envelopes.iter().map(|e| Arc::from(e.as_str())).collect();
        subs.retain(|id, sub| {
            if Some(*id) == except {
                return true;
            }
            let kept = shared.iter().all(|m| sub.tx.try_send(m.clone()).is_ok());
            if !kept {
                sub.close(TOO_SLOW);
            }
            kept
        });
    }

    /// Drops every subscription of `username` (in any team); returns how many.
    pub fn revoke_user(&self, username: &str) -> usize {
        self.revoke(|sub| sub.username == username)
    }

    /// Drops every subscription opened under login session `session`; returns how many.
    pub fn revoke_session(&self, session: &str) -> usize {
        self.revoke(|sub| sub.session.as_deref() == Some(session))
    }

    fn revoke(&self, matches: impl Fn(&Entry) -> bool) -> usize {
        let Ok(mut teams) = self.inner.teams.lock() else {
            return 0;
        };
        let mut n = 0;
        for subs in teams.values_mut() {
            subs.retain(|_, sub| {
                let hit = matches(sub);
                if hit {
                    sub.close(REVOKED);
                    n += 1;
                }
                !hit
            });
        }
        teams.retain(|_, subs| !subs.is_empty());
        n
    }

    /// The distinct users and sessions with open subscriptions, for the revocation check.
    pub fn subscribed(&self) -> (Vec<String>, Vec<String>) {
        let Ok(teams) = self.inner.teams.lock() else {
            return (Vec::new(), Vec::new());
        };
        let mut users: Vec<String> = Vec::new();
        let mut sessions: Vec<String> = Vec::new();
        for sub in teams.values().flat_map(HashMap::values) {
            users.push(sub.username.clone());
            if let Some(s) = &sub.session {
                sessions.push(s.clone());
            }
        }
        users.sort_unstable();
        users.dedup();
        sessions.sort_unstable();
        sessions.dedup();
        (users, sessions)
    }

    /// Open subscriptions, over all teams.
    pub fn len(&self) -> usize {
        self.inner
            .teams
            .lock()
            .map_or(0, |t| t.values().map(HashMap::len).sum())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(team: &str, user: &str) -> SubscribeAs {
        SubscribeAs {
            team_slug: team.into(),
            username: user.into(),
            session: Some(format!("session-of-{user}")),
        }
    }

    #[tokio::test]
    async fn events_reach_the_team_except_the_sender() {
        let fanout = Fanout::default();
        let mut a = fanout.subscribe(who("acme", "alice"), 8);
        let mut b = fanout.subscribe(who("acme", "bob"), 8);
        let mut other = fanout.subscribe(who("evil", "eve"), 8);
        fanout.publish("acme", Some(a.id()), &["{\"n\":1}".into()]);
        assert_eq!(&*b.recv().await.expect("delivered"), "{\"n\":1}");
        fanout.publish("acme", None, &["{\"n\":2}".into()]);
        assert_eq!(&*a.recv().await.expect("delivered"), "{\"n\":2}");
        assert!(other.rx.try_recv().is_err(), "other teams see nothing");
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_subscriber() {
        let fanout = Fanout::default();
        let mut slow = fanout.subscribe(who("acme", "alice"), 2);
        fanout.publish("acme", None, &["1".into(), "2".into(), "3".into()]);
        assert_eq!(fanout.len(), 0, "dropped from the registry");
        assert_eq!(slow.closed(), Some(Closed::TooSlow));
        // What was queued is still delivered, then the end.
        assert!(slow.recv().await.is_ok());
        assert!(slow.recv().await.is_ok());
        assert_eq!(slow.recv().await, Err(Closed::TooSlow));
    }

    #[tokio::test]
    async fn revoking_a_user_or_session_ends_its_subscriptions_at_once() {
        let fanout = Fanout::default();
        let mut a = fanout.subscribe(who("acme", "alice"), 8);
        let mut b = fanout.subscribe(who("acme", "bob"), 8);
        fanout.publish("acme", None, &["queued".into()]);
        assert_eq!(fanout.revoke_user("alice"), 1);
        assert_eq!(
            a.recv().await,
            Err(Closed::Revoked),
            "queued events not delivered"
        );
        assert_eq!(fanout.revoke_session("session-of-bob"), 1);
        assert_eq!(b.recv().await, Err(Closed::Revoked));
        assert!(fanout.is_empty());
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let fanout = Fanout::default();
        let a = fanout.subscribe(who("acme", "alice"), 8);
        assert_eq!(fanout.subscribed().0, ["alice"]);
        drop(a);
        assert!(fanout.is_empty());
    }
}
