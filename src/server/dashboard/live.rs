//! `GET /a/<team>/dashboards/live`: server-sent events for the live board.
//!
//! The stream first sends `hello` (the page then refreshes, which also catches up after a
//! reconnect), then `change` whenever the team has new events. The stream ends when the
//! server shuts down; the browser's EventSource reconnects by itself (`retry: 1000`), to
//! this server when it is back or to another replica.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;

use super::super::AppState;
use super::{DashError, Viewer, own_team};

/// How often the team's event count is read (one primary-key read) when no notification came.
const POLL: Duration = Duration::from_millis(500);

struct Follow {
    state: Arc<AppState>,
    team: String,
    seen: Option<i64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// `GET /a/<team>/dashboards/live`
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(team): Path<String>,
    viewer: Viewer,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DashError> {
    own_team(&viewer, &team)?;
    let follow = Follow {
        shutdown: state.shutdown.clone(),
        state,
        team,
        seen: None,
    };
    let events = stream::unfold(follow, |mut f| async move {
        if f.seen.is_none() {
            f.seen = Some(count(&f).await);
            return Some((Ok(Event::default().event("hello").data("{}").retry(Duration::from_secs(1))), f));
        }
        loop {
            if *f.shutdown.borrow() {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = f.shutdown.changed() => return None,
            }
            let now = count(&f).await;
            if Some(now) != f.seen {
                f.seen = Some(now);
                let data = format!("{{\"events\":{now}}}");
                return Some((Ok(Event::default().event("change").data(data)), f));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The team's event count (the last one seen if the database cannot be read right now).
async fn count(f: &Follow) -> i64 {
    let (st, team) = (f.state.clone(), f.team.clone());
    match tokio::task::spawn_blocking(move || st.store.dashboard_event_count(&team)).await {
        Ok(Ok(n)) => n,
        _ => f.seen.unwrap_or(0),
    }
}
