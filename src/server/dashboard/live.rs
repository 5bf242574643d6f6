//! `GET /a/<team>/dashboards/live`: server-sent events for the live board.
//!
//! The stream subscribes to the team on the server's [`Fanout`](super::super::fanout::Fanout)
//! and sends `hello` first (the page then refreshes, which also catches up after a
//! reconnect), then `change` for each batch of new events. It ends when the server shuts
//! down, when the user is disabled, or when the page cannot keep up; the browser's
//! EventSource reconnects by itself (`retry: 1000`) and the `hello` of the new stream brings
//! the board up to date.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream;
use futures_util::{FutureExt, Stream};

use super::super::AppState;
use super::super::fanout::{SubscribeAs, Subscription};
use super::{DashError, Viewer, own_team};

/// Envelopes queued for one page before it counts as too slow (it then reconnects).
const QUEUE: usize = 256;

struct Follow {
    subscription: Subscription,
    hello: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// `GET /a/<team>/dashboards/live`
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(team): Path<String>,
    viewer: Viewer,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DashError> {
    own_team(&viewer, &team)?;
    let subscription = state.fanout.subscribe(
        SubscribeAs {
            team_slug: team,
            username: viewer.username,
            // Browser sessions are not API sessions (the registry checks those against the
            // database and would drop this at once); disabling the user still closes it.
            session: None,
        },
        QUEUE,
    );
    let follow = Follow {
        subscription,
        hello: false,
        shutdown: state.shutdown.clone(),
    };
    let events = stream::unfold(follow, |mut f| async move {
        if !f.hello {
            f.hello = true;
            let hello = Event::default()
                .event("hello")
                .data("{}")
                .retry(Duration::from_secs(1));
            return Some((Ok(hello), f));
        }
        if *f.shutdown.borrow() {
            return None;
        }
        tokio::select! {
            next = f.subscription.recv() => next.ok()?,
            _ = f.shutdown.changed() => return None,
        };
        // One refresh for a whole batch: count what is already queued behind the first.
        let mut n = 1;
        while let Some(Ok(_)) = f.subscription.recv().now_or_never() {
            n += 1;
        }
        let change = Event::default()
            .event("change")
            .data(format!("{{\"events\":{n}}}"));
        Some((Ok(change), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
