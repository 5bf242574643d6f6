//! Periodic work of a running server: closing what an administrator revoked, and pruning
//! expired tokens.
//!
//! `spec-kitty-server user disable` runs in another process and only writes the database, so
//! the server looks for revocations itself: every [`REVOCATION_CHECK`] it asks the database
//! about the users and sessions that have live subscriptions (WebSockets, the dashboard) and
//! drops those of disabled users and revoked sessions. Revocations made by this process
//! (logout, refresh-token reuse) are applied at once by their handlers.

use std::sync::Arc;
use std::time::Duration;

use super::AppState;
use super::store::unix_now;

/// How often open subscriptions are checked against the database.
pub const REVOCATION_CHECK: Duration = Duration::from_millis(500);

/// How often expired tokens and sessions are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Rows deleted per table and run, so that one run never holds the writer for long; a backlog
/// is worked off over several runs.
pub const PRUNE_BATCH: usize = 1000;

/// Runs both periodic jobs until the server shuts down.
pub async fn run(state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    let mut check = tokio::time::interval(REVOCATION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = check.tick() => close_revoked(&state).await,
            _ = prune.tick() => prune_expired(&state).await,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

/// Drops the subscriptions of users that are disabled (or gone) and of revoked sessions.
pub async fn close_revoked(state: &Arc<AppState>) {
    let (users, sessions) = state.fanout.subscribed();
    if users.is_empty() {
        return;
    }
    let st = state.clone();
    let found = tokio::task::spawn_blocking(move || st.store.revoked(&users, &sessions)).await;
    match found {
        Ok(Ok((users, sessions))) => {
            for user in &users {
                let n = state.fanout.revoke_user(user);
                tracing::info!(username = %user, subscriptions = n, "closed: user disabled");
            }
            for session in &sessions {
                let n = state.fanout.revoke_session(session);
                tracing::info!(subscriptions = n, "closed: session revoked");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "revocation check failed"),
        Err(e) => tracing::warn!(error = %e, "revocation check failed"),
    }
}

/// Deletes expired refresh tokens, ws tokens and sessions left without tokens, at most
/// [`PRUNE_BATCH`] rows of each per run.
pub async fn prune_expired(state: &Arc<AppState>) {
    let st = state.clone();
    let now = unix_now();
    match tokio::task::spawn_blocking(move || st.store.prune_expired(now, PRUNE_BATCH)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!(rows = n, "pruned expired tokens"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "pruning failed"),
        Err(e) => tracing::warn!(error = %e, "pruning failed"),
    }
}
