//! Password logins that hold under attack: the rate limiter and the bounded password hasher.
//!
//! [`authenticate`] is the one way to check a username and password, used by the API's
//! `POST /api/v1/token/` and by any other login path (the dashboard's form):
//!
//! 1. **Reserve** the attempt with the [`LoginLimiter`] *before* hashing: the attempt counts as
//!    a failure from that moment, so a burst of simultaneous requests cannot all slip past the
//!    limit; a success settles it (removes it) afterwards.
//! 2. **Hash** in one of a fixed number of slots ([`HashSlots`], one per core). Each slot
//!    keeps its argon2 working memory (~19 MiB) and reuses it, so a burst costs at most
//!    `slots × 19 MiB`, returned to nobody and requested from nobody again; when every slot is
//!    busy the attempt is answered 429 with `Retry-After` at once instead of queueing.
//!
//! The limiter has three budgets, all in memory (a restart forgets; fine for slowing guesses):
//!
//! * per **(user, address)**: `max_failures` in `window`, then 429 until the oldest expires;
//! * per **user**, over all addresses: after `max_failures` failures in the window, each further
//!   attempt waits an exponentially growing delay (capped at [`BACKOFF_MAX`]), which slows a
//!   distributed guesser down without a fixed lockout;
//! * per **address**, over all users: `ADDRESS_FACTOR × max_failures` (a shared office NAT has
//!   many users behind it).
//!
//! An address where a user logged in successfully within [`KNOWN_GOOD`] is exempt from the
//! per-user and per-address budgets for that user: an attacker elsewhere cannot lock the real
//! user out of their own machine. Each table holds at most `max_keys` entries and evicts the
//! oldest first, in constant time per insert.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::AppState;
use super::error::ApiError;
use super::store::UserRow;

/// The per-address budget is this many times the per-(user, address) one.
pub const ADDRESS_FACTOR: usize = 10;

/// The longest delay the per-user backoff imposes between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The first delay of the per-user backoff; it doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// How long a successful login exempts its address from the per-user and per-address budgets.
pub const KNOWN_GOOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// Entries each limiter table holds at most (a flood of distinct usernames evicts the oldest).
pub const MAX_KEYS: usize = 100_000;

/// The one message for every failed login, so that it does not tell which usernames exist.
pub const INVALID_LOGIN: &str = "Invalid username or password";

/// Failure times and the known-good mark of one key.
struct Entry {
    failures: VecDeque<Instant>,
    good_until: Option<Instant>,
    /// Matches the entry's place in the eviction order.
    stamp: u64,
}

/// A map with a hard size cap that evicts the oldest-inserted entry first.
struct Table {
    map: HashMap<String, Entry>,
    order: VecDeque<(u64, String)>,
    next_stamp: u64,
    cap: usize,
}

impl Table {
    fn new(cap: usize) -> Table {
        Table {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            cap: cap.max(1),
        }
    }

    fn entry(&mut self, key: &str) -> &mut Entry {
        if !self.map.contains_key(key) {
            while self.map.len() >= self.cap {
                let Some((stamp, old)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&old).is_some_and(|e| e.stamp == stamp) {
                    self.map.remove(&old);
                }
            }
            let stamp = self.next_stamp;
            self.next_stamp += 1;
            self.order.push_back((stamp, key.to_owned()));
            self.map.insert(
                key.to_owned(),
                Entry {
                    failures: VecDeque::new(),
                    good_until: None,
                    stamp,
                },
            );
        }
        // Every key is in the map at this point (inserted just above when missing).
        self.map.get_mut(key).expect("entry present")
    }

    #[cfg(test)]
    fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

impl Entry {
    /// Drops failures older than `window`; returns how many remain.
    fn recent(&mut self, now: Instant, window: Duration) -> usize {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.len()
    }

    fn push(&mut self, now: Instant, keep: usize) {
        self.failures.push_back(now);
        while self.failures.len() > keep {
            self.failures.pop_front();
        }
    }

    /// Removes one failure recorded at `at` (a reservation that turned out a success).
    fn unpush(&mut self, at: Instant) {
        if let Some(i) = self.failures.iter().rposition(|t| *t == at) {
            self.failures.remove(i);
        }
    }
}

struct Tables {
    pairs: Table,
    users: Table,
    addrs: Table,
}

/// The limits of a [`LoginLimiter`].
#[derive(Debug, Clone)]
pub struct LimiterConfig {
    /// Failures per (user, address) within `window` before 429.
    pub max_failures: usize,
    pub window: Duration,
    /// Entries per table.
    pub max_keys: usize,
}

/// Counts login attempts; see the module documentation for the rules.
pub struct LoginLimiter {
    config: LimiterConfig,
    tables: Mutex<Tables>,
}

/// A reserved login attempt. It counts as a failure until [`Attempt::succeeded`] is called;
/// dropping it (a failed login, or a request cut off) leaves it counted.
#[must_use = "a reserved attempt counts as a failure unless settled"]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    pair: String,
    user: String,
    addr: String,
    at: Instant,
}

impl Attempt<'_> {
    /// The password was right: the attempt no longer counts, and the address becomes known
    /// good for this user.
    pub fn succeeded(self) {
        let Ok(mut t) = self.limiter.tables.lock() else {
            return;
        };
        let pair = t.pairs.entry(&self.pair);
        pair.failures.clear();
        pair.good_until = Some(self.at + KNOWN_GOOD);
        t.users.entry(&self.user).unpush(self.at);
        t.addrs.entry(&self.addr).unpush(self.at);
    }
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after: wait.as_secs() + 1,
    }
}

impl LoginLimiter {
    pub fn new(config: LimiterConfig) -> LoginLimiter {
        let config = LimiterConfig {
            max_failures: config.max_failures.max(1),
            ..config
        };
        let cap = config.max_keys;
        LoginLimiter {
            config,
            tables: Mutex::new(Tables {
                pairs: Table::new(cap),
                users: Table::new(cap),
                addrs: Table::new(cap),
            }),
        }
    }

    /// Reserves an attempt for `username` from `addr`, or refuses it with 429 and the
    /// seconds to wait.
    pub fn reserve(&self, username: &str, addr: IpAddr) -> Result<Attempt<'_>, ApiError> {
        self.reserve_at(username, addr, Instant::now())
    }

    fn reserve_at(
        &self,
        username: &str,
        addr: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, ApiError> {
        // Usernames are at most 150 characters; a longer one must not make a huge key.
        let name: String = username.chars().take(160).collect();
        let attempt = Attempt {
            limiter: self,
            pair: format!("{addr} {name}"),
            user: name,
            addr: addr.to_string(),
            at: now,
        };
        let LimiterConfig {
            max_failures,
            window,
            ..
        } = self.config;
        let mut t = self
            .tables
            .lock()
            .map_err(|_| ApiError::Internal("rate limiter lock poisoned".into()))?;
        let pair = t.pairs.entry(&attempt.pair);
        let known_good = pair.good_until.is_some_and(|until| now < until);
        if pair.recent(now, window) >= max_failures {
            let oldest = pair.failures.front().copied().unwrap_or(now);
            return Err(too_many(window.saturating_sub(now.duration_since(oldest))));
        }
        if !known_good {
            let user = t.users.entry(&attempt.user);
            let n = user.recent(now, window);
            if n >= max_failures
                && let Some(last) = user.failures.back()
            {
                let doublings = (n - max_failures).min(16) as u32;
                let delay = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX);
                let ready = *last + delay;
                if now < ready {
                    return Err(too_many(ready - now));
                }
            }
            let addr = t.addrs.entry(&attempt.addr);
            if addr.recent(now, window) >= max_failures * ADDRESS_FACTOR {
                let oldest = addr.failures.front().copied().unwrap_or(now);
                return Err(too_many(window.saturating_sub(now.duration_since(oldest))));
            }
        }
        // Counted now, before any hashing: simultaneous attempts see each other.
        t.pairs.entry(&attempt.pair).push(now, max_failures);
        let keep_user = max_failures + 32;
        t.users.entry(&attempt.user).push(now, keep_user);
        let keep_addr = max_failures * ADDRESS_FACTOR;
        t.addrs.entry(&attempt.addr).push(now, keep_addr);
        Ok(attempt)
    }

    /// Entries per table (pairs, users, addresses), for tests and the health endpoint.
    pub fn sizes(&self) -> (usize, usize, usize) {
        self.tables
            .lock()
            .map_or((0, 0, 0), |t| (t.pairs.len(), t.users.len(), t.addrs.len()))
    }

    #[cfg(test)]
    fn is_known_good(&self, pair: &str, now: Instant) -> bool {
        self.tables.lock().is_ok_and(|t| {
            t.pairs
                .get(pair)
                .and_then(|e| e.good_until)
                .is_some_and(|u| now < u)
        })
    }
}

/// A fixed number of password-hashing slots, each with its reusable argon2 memory.
pub struct HashSlots {
    permits: Arc<tokio::sync::Semaphore>,
    memory: Mutex<Vec<Vec<Block>>>,
}

/// The most argon2 memory one hash may ask for (a stored hash with absurd parameters must not
/// exhaust memory): 64 MiB.
const MAX_HASH_BLOCKS: usize = 64 * 1024;

impl HashSlots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> HashSlots {
        HashSlots {
            permits: Arc::new(tokio::sync::Semaphore::new(n.max(1))),
            memory: Mutex::new(Vec::new()),
        }
    }

    /// One slot per core.
    pub fn per_core() -> HashSlots {
        HashSlots::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Checks `password` against the PHC `hash` in a slot; `Err(TooManyRequests)` when every
    /// slot is busy. Blocking while it hashes: call from `spawn_blocking`.
    fn verify(&self, hash: &str, password: &str) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .try_acquire()
            .map_err(|_| ApiError::TooManyRequests { retry_after: 1 })?;
        let mut memory = self
            .memory
            .lock()
            .map_err(|_| ApiError::Internal("hash memory lock poisoned".into()))?
            .pop()
            .unwrap_or_default();
        let ok = verify_with(&mut memory, hash, password);
        if let Ok(mut pool) = self.memory.lock() {
            pool.push(memory);
        }
        Ok(ok)
    }
}

/// Verifies an argon2 PHC hash using (and growing, once) the caller's memory blocks.
fn verify_with(memory: &mut Vec<Block>, hash: &str, password: &str) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&h), Algorithm::try_from(h.algorithm))
    else {
        return false;
    };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let blocks = params.block_count();
    if blocks > MAX_HASH_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        // Output's equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// Checks a username and password for a login from `addr`: limiter first, then a hashing
/// slot. `Ok(None)` for a wrong password, an unknown or a disabled user (one answer for all,
/// so that it does not tell which usernames exist).
pub async fn authenticate(
    state: &Arc<AppState>,
    username: &str,
    password: String,
    addr: IpAddr,
) -> Result<Option<UserRow>, ApiError> {
    let normalized = super::admin::normalize_username(username);
    let attempt = state.limiter.reserve(&normalized, addr)?;
    let st = state.clone();
    let raw = username.to_owned();
    let user = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let mut user = st.store.find_user(&normalized)?;
        // Accounts made before names were normalised are found by their exact name.
        if user.is_none() && raw != normalized && raw.len() <= 600 {
            user = st.store.find_user(&raw)?;
        }
        let hash = user
            .as_ref()
            .map_or(super::auth::decoy_hash(), |u| u.password_hash.as_str());
        let ok = st.hash_slots.verify(hash, &password)?;
        Ok(user.filter(|u| ok && !u.disabled))
    })
    .await??;
    if user.is_some() {
        attempt.succeeded();
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize, keys: usize) -> LoginLimiter {
        LoginLimiter::new(LimiterConfig {
            max_failures: max,
            window: Duration::from_secs(300),
            max_keys: keys,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn simultaneous_attempts_count_before_any_is_settled() {
        let l = limiter(10, 1000);
        let held: Vec<_> = (0..10)
            .map(|_| l.reserve("dave", ip("10.0.0.1")).expect("under the limit"))
            .collect();
        assert!(
            l.reserve("dave", ip("10.0.0.1")).is_err(),
            "the 11th is refused"
        );
        drop(held);
    }

    #[test]
    fn an_attacker_elsewhere_does_not_lock_the_user_out_of_a_known_address() {
        let l = limiter(3, 1000);
        let t0 = Instant::now();
        l.reserve_at("dave", ip("10.0.0.1"), t0)
            .expect("first login")
            .succeeded();
        for i in 0..50 {
            let _ = l.reserve_at("dave", ip(&format!("192.0.2.{i}")), t0);
        }
        assert!(
            l.reserve_at("dave", ip("192.0.2.200"), t0).is_err(),
            "backoff"
        );
        assert!(
            l.reserve_at("dave", ip("10.0.0.1"), t0).is_ok(),
            "the known address still gets its own budget"
        );
        assert!(l.is_known_good("10.0.0.1 dave", t0));
    }

    #[test]
    fn the_per_user_budget_backs_off_instead_of_locking() {
        let l = limiter(3, 1000);
        let t0 = Instant::now();
        for i in 0..3 {
            drop(
                l.reserve_at("dave", ip(&format!("192.0.2.{i}")), t0)
                    .expect("free"),
            );
        }
        let refused = l.reserve_at("dave", ip("192.0.2.9"), t0);
        assert!(matches!(
            refused,
            Err(ApiError::TooManyRequests { retry_after: 2 })
        ));
        let later = t0 + BACKOFF_BASE;
        drop(
            l.reserve_at("dave", ip("192.0.2.9"), later)
                .expect("after the delay"),
        );
        let refused = l.reserve_at("dave", ip("192.0.2.10"), later);
        assert!(
            matches!(refused, Err(ApiError::TooManyRequests { retry_after: 3 })),
            "doubled"
        );
    }

    #[test]
    fn one_address_does_not_lock_out_the_other_users_behind_it() {
        let l = limiter(10, 1000);
        for _ in 0..10 {
            drop(l.reserve("mallory", ip("10.0.0.1")));
        }
        assert!(l.reserve("mallory", ip("10.0.0.1")).is_err());
        assert!(
            l.reserve("carol", ip("10.0.0.1")).is_ok(),
            "same NAT, other user"
        );
    }

    #[test]
    fn a_flood_of_usernames_stays_within_the_key_cap() {
        let l = limiter(10, 100);
        for i in 0..10_000 {
            drop(l.reserve(&format!("user{i}"), ip("10.0.0.1")));
        }
        let (pairs, users, addrs) = l.sizes();
        assert!(
            pairs <= 100 && users <= 100 && addrs <= 100,
            "{pairs} {users} {addrs}"
        );
    }

    #[test]
    fn verification_with_reused_memory_matches_the_stored_hash() {
        let hash = super::super::auth::hash_password("right password").expect("hash");
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, &hash, "right password"));
        assert!(!verify_with(&mut memory, &hash, "wrong password"));
        assert!(!verify_with(&mut memory, "not a hash", "x"));
    }
}
