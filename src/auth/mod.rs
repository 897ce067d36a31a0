//! Who is calling: the original's Basic `username:password@domain` login, password hashing,
//! the verified-credentials cache and the failed-login limiter.
//!
//! Argon2id is deliberately slow (tens of milliseconds), and the original's clients send the
//! password with every request, so a successful verification is remembered: by a salted SHA-256
//! of the credentials together with the stored hash it was checked against. Changing or removing
//! a password changes or removes the stored hash, which invalidates the entry at once.

mod cache;
pub mod password;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache::VerifiedLogins;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Role;
use crate::error::ApiError;
use crate::store::{LoginRecord, NewUser, Store};

pub use crate::domain::Principal;

impl From<&LoginRecord> for Principal {
    fn from(l: &LoginRecord) -> Self {
        Principal {
            tenant_id: l.tenant_id,
            domain: l.domain.clone(),
            username: l.username.clone(),
            role: l.role,
            user_id: l.user_id,
        }
    }
}

/// `username:password@domain`, as in the original's Basic scheme and `DISPATCHLOG_ADMIN`.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub domain: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for Login {
    type Err = String;

    /// Splits on the last `@` (the domain), then on the first `:` (so passwords may hold `:`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (user_pass, domain) = s
            .rsplit_once('@')
            .ok_or("expected username:password@domain (no '@domain')")?;
        let (username, password) = user_pass
            .split_once(':')
            .ok_or("expected username:password@domain (no ':password')")?;
        if username.is_empty() || domain.is_empty() || password.is_empty() {
            return Err("expected username:password@domain (a part is empty)".into());
        }
        // No stored name holds U+0000 (SPEC §8): such credentials match no user, on either
        // engine, without reaching the database (PostgreSQL refuses the character in text).
        if s.contains('\0') {
            return Err("a NUL character (U+0000) is not allowed in credentials".into());
        }
        Ok(Login {
            username: username.to_string(),
            password: password.to_string(),
            domain: domain.to_string(),
        })
    }
}

/// Reads `Authorization: Basic …`; None when absent or malformed.
pub fn basic_login(header: &str) -> Option<Login> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    String::from_utf8(decoded).ok()?.parse().ok()
}

/// Reads `Authorization: Bearer …`.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, value) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !value.trim().is_empty()).then(|| value.trim())
}

/// Tokens are long random strings, so a plain SHA-256 is enough to store them safely (unlike
/// passwords, they cannot be guessed from a dictionary).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new bearer token: `dlt_` and 40 random letters and digits.
pub fn new_token() -> String {
    use rand::distr::Alphanumeric;
    use rand::RngExt as _;
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("dlt_{random}")
}

/// Counts failed logins per client address within a window, exactly: attempts checked in
/// parallel count too. Each attempt that may fail holds a place until its outcome is known;
/// while the failures and the places held reach the limit, a further attempt waits for one of
/// them to end. So 100 wrong passwords sent at once get `limit` × 401 and the rest 429, while
/// a burst of right ones only takes turns (and then finds the login verified).
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Attempts>>,
    /// Signalled whenever an attempt ends, for the ones waiting for a place.
    ended: tokio::sync::Notify,
}

/// One address's attempts in the current window.
#[derive(Debug)]
struct Attempts {
    failed: u32,
    /// Attempts being checked now.
    pending: u32,
    since: Instant,
}

/// Failure records kept at most before expired ones are dropped.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

impl FailureLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        FailureLimiter {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
            ended: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Attempts>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds to wait, when this address has failed too often.
    pub fn blocked_for(&self, client: IpAddr) -> Option<u64> {
        let failures = self.lock();
        let attempts = failures.get(&client)?;
        let elapsed = attempts.since.elapsed();
        (attempts.failed >= self.limit && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// A place for one attempt from `client` that may fail, or the seconds to wait (429).
    pub async fn admit(&self, client: IpAddr) -> Result<Attempt<'_>, u64> {
        loop {
            // Registered before looking, so an attempt ending in between still wakes this one.
            let ended = self.ended.notified();
            if let Some(attempt) = self.try_place(client)? {
                return Ok(attempt);
            }
            ended.await;
        }
    }

    /// Counts a failure that needed no check (a malformed header): Ok (401) while under the
    /// limit, else the seconds to wait (429).
    pub fn fail_now(&self, client: IpAddr) -> Result<(), u64> {
        match self.try_place(client)? {
            Some(attempt) => {
                attempt.fail();
                Ok(())
            }
            // Every place is held by an attempt about to end.
            None => Err(1),
        }
    }

    /// A place, none free right now (Ok(None)), or blocked (the seconds to wait).
    fn try_place(&self, client: IpAddr) -> Result<Option<Attempt<'_>>, u64> {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            let window = self.window;
            failures.retain(|_, a| a.pending > 0 || a.since.elapsed() < window);
        }
        let attempts = failures.entry(client).or_insert(Attempts {
            failed: 0,
            pending: 0,
            since: Instant::now(),
        });
        let elapsed = attempts.since.elapsed();
        if elapsed >= self.window {
            attempts.failed = 0;
            attempts.since = Instant::now();
        } else if attempts.failed >= self.limit {
            return Err((self.window - elapsed).as_secs().max(1));
        }
        if attempts.failed + attempts.pending >= self.limit {
            return Ok(None);
        }
        attempts.pending += 1;
        Ok(Some(Attempt {
            limiter: self,
            client,
            failed: false,
        }))
    }
}

/// A login attempt's place in its address's count; a failure is counted when the attempt
/// ends with [`Attempt::fail`], anything else (success, a database error) frees the place.
pub struct Attempt<'a> {
    limiter: &'a FailureLimiter,
    client: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    pub fn fail(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        {
            let mut failures = self.limiter.lock();
            if let Some(attempts) = failures.get_mut(&self.client) {
                attempts.pending = attempts.pending.saturating_sub(1);
                if self.failed {
                    attempts.failed += 1;
                }
            }
        }
        self.limiter.ended.notify_waiters();
    }
}

/// Checks credentials against the store.
pub struct Authenticator {
    store: Arc<dyn Store>,
    salt: [u8; 32],
    verified: VerifiedLogins,
    limiter: FailureLimiter,
    /// Verified when the user does not exist, so that the answer takes as long either way.
    decoy_hash: String,
    /// Bounds the Argon2 verifications running at once. Each holds about 19 MiB for tens of
    /// milliseconds; unbounded, a burst of new connections with the same not-yet-cached
    /// credentials (32 clients starting together) ran one each and took the server's memory
    /// past 500 MiB for good (freed memory stays in the allocator's per-thread arenas).
    verifying: tokio::sync::Semaphore,
    /// The last attempt to read the store's credentials version: what it read (None: the
    /// read failed) and when ([`Authenticator::credentials_version`]).
    version: std::sync::Mutex<Option<(Option<i64>, Instant)>>,
    /// Held by the one caller reading the version.
    version_read: tokio::sync::Mutex<()>,
    recheck_after: Duration,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, limiter: FailureLimiter, recheck_after: Duration) -> Self {
        Authenticator {
            store,
            salt: rand::random(),
            // `recheck_after`: how long a verified login is trusted without reading the user's
            // row again. Changing a password, removing a user or revoking a token (from the
            // command line, possibly in another process) takes effect within this time; in
            // exchange a busy client costs no database read per request, and while no stored
            // credentials change, the whole instance reads one number per interval
            // (`credentials_version`) instead of each logged-in user's row.
            verified: VerifiedLogins::new(
                cache::MAX_CACHED_LOGINS,
                cache::IDLE_EXPIRY,
                recheck_after,
            ),
            limiter,
            decoy_hash: password::hash(&Uuid::new_v4().to_string()),
            verifying: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            version: std::sync::Mutex::new(None),
            version_read: tokio::sync::Mutex::new(()),
            recheck_after,
        }
    }

    /// The current credentials version and when it was read: read from the store at most once
    /// per recheck interval for the whole instance (one caller reads, the others wait for it),
    /// so that logins verified at that version need no read of their own. None when it cannot
    /// be read: every login is then checked against its row, as without it.
    async fn credentials_version(&self) -> Option<(i64, Instant)> {
        // The last reading while fresh; None without a read when the last attempt failed
        // within the interval (with the database away, requests must not queue up here behind
        // one failing read after another).
        let known = || -> Result<Option<(i64, Instant)>, ()> {
            let last = self.version.lock().unwrap_or_else(|e| e.into_inner());
            match *last {
                Some((reading, at)) if at.elapsed() < self.recheck_after => {
                    Ok(reading.map(|v| (v, at)))
                }
                _ => Err(()),
            }
        };
        if let Ok(reading) = known() {
            return reading;
        }
        let _reader = self.version_read.lock().await;
        if let Ok(reading) = known() {
            return reading;
        }
        // Taken before the read: the reading vouches for nothing later than this.
        let at = Instant::now();
        let version = self.store.credentials_version().await.ok();
        *self.version.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, at));
        version.map(|v| (v, at))
    }

    fn still_valid(&self, key: &[u8; 32], reading: Option<(i64, Instant)>) -> Option<Principal> {
        let (version, at) = reading?;
        self.verified.still_valid(key, version, at)
    }

    fn cache_key(&self, login: &Login) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        for part in [&login.domain, &login.username, &login.password] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// The caller behind an `Authorization` header, or the 401/429 to answer.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Result<Principal, ApiError> {
        let too_many = |retry_after_secs| ApiError::TooManyRequests { retry_after_secs };
        if let Some(retry_after_secs) = self.limiter.blocked_for(client) {
            return Err(too_many(retry_after_secs));
        }
        if let Some(token) = authorization.and_then(bearer_token) {
            let hash = token_hash(token);
            let key: [u8; 32] = Sha256::digest(hash.as_bytes()).into();
            if let Some(principal) = self.verified.recently_verified(&key) {
                return Ok(principal);
            }
            let version = self.credentials_version().await;
            if let Some(principal) = self.still_valid(&key, version) {
                return Ok(principal);
            }
            let attempt = self.limiter.admit(client).await.map_err(too_many)?;
            if let Some(principal) = self.verified.recently_verified(&key) {
                return Ok(principal);
            }
            return match self.store.find_token(&hash).await? {
                Some(record) => {
                    self.verified.remember(key, &record, version.map(|v| v.0));
                    Ok(Principal::from(&record))
                }
                None => {
                    attempt.fail();
                    Err(ApiError::Unauthorized)
                }
            };
        }
        let login = authorization.and_then(basic_login);
        let Some(login) = login else {
            if authorization.is_some() {
                self.limiter.fail_now(client).map_err(too_many)?;
            }
            return Err(ApiError::Unauthorized);
        };
        let key = self.cache_key(&login);
        if let Some(principal) = self.verified.recently_verified(&key) {
            return Ok(principal);
        }
        // Read before the user's row, so that a change after it shows as a new version.
        let version = self.credentials_version().await;
        if let Some(principal) = self.still_valid(&key, version) {
            return Ok(principal);
        }
        let version = version.map(|v| v.0);
        // From here the attempt may fail: it holds a place in the address's count.
        let attempt = self.limiter.admit(client).await.map_err(too_many)?;
        // Attempts with the same credentials may have verified them while this one waited.
        if let Some(principal) = self.verified.recently_verified(&key) {
            return Ok(principal);
        }
        let record = self
            .store
            .find_login(&login.domain, &login.username)
            .await?;
        if let Some(record) = record
            .as_ref()
            .filter(|r| self.verified.confirm(&key, r, version))
        {
            return Ok(Principal::from(record));
        }
        let _permit = self
            .verifying
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        // A request with the same credentials may have verified them while this one waited.
        if let Some(record) = record
            .as_ref()
            .filter(|r| self.verified.confirm(&key, r, version))
        {
            return Ok(Principal::from(record));
        }
        let hash = record
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| self.decoy_hash.clone());
        let password = login.password.clone();
        let matches = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        match record {
            Some(record) if matches => {
                self.verified.remember(key, &record, version);
                Ok(Principal::from(&record))
            }
            _ => {
                attempt.fail();
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// What start-up did about the first user.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// `DISPATCHLOG_ADMIN` named an admin that now exists with that password.
    Ensured,
    /// No user existed: `admin@default` was created with this password.
    Generated { password: String },
    /// Users exist and no admin was named.
    Nothing,
}

/// Makes sure the named admin exists (idempotent), or creates `admin@default` when the
/// database has no user at all.
pub async fn bootstrap(store: &dyn Store, admin: Option<&Login>) -> anyhow::Result<Bootstrap> {
    if let Some(admin) = admin {
        let existing = store.find_login(&admin.domain, &admin.username).await?;
        match existing {
            Some(record) if password::verify(&admin.password, &record.password_hash) => {}
            Some(_) => {
                store
                    .set_password(
                        &admin.domain,
                        &admin.username,
                        &password::hash(&admin.password),
                    )
                    .await?;
            }
            None => {
                store
                    .add_user(NewUser {
                        domain: admin.domain.clone(),
                        username: admin.username.clone(),
                        password_hash: password::hash(&admin.password),
                        role: Role::Admin,
                        user_id: Uuid::nil(),
                    })
                    .await?;
            }
        }
        return Ok(Bootstrap::Ensured);
    }
    if store.count_users().await? > 0 {
        return Ok(Bootstrap::Nothing);
    }
    let password = password::generate();
    store
        .add_user(NewUser {
            domain: "default".into(),
            username: "admin".into(),
            password_hash: password::hash(&password),
            role: Role::Admin,
            user_id: Uuid::nil(),
        })
        .await?;
    Ok(Bootstrap::Generated { password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_after_the_last_at_and_the_password_after_the_first_colon() {
        let l: Login = "jo@field:pa:ss@w0rd@acme.example".parse().unwrap();
        assert_eq!(l.username, "jo@field");
        assert_eq!(l.password, "pa:ss@w0rd");
        assert_eq!(l.domain, "acme.example");
        assert!("nodomain:pw".parse::<Login>().is_err());
        assert!("user@domain".parse::<Login>().is_err());
    }

    #[test]
    fn basic_headers_decode() {
        let value = base64::engine::general_purpose::STANDARD.encode("jo:pw@acme");
        let l = basic_login(&format!("Basic {value}")).unwrap();
        assert_eq!((l.username.as_str(), l.domain.as_str()), ("jo", "acme"));
        assert!(basic_login("Bearer abc").is_none());
        assert!(basic_login("Basic !!!").is_none());
    }

    #[test]
    fn the_limiter_blocks_after_the_limit() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(ip), None);
            limiter.fail_now(ip).unwrap();
        }
        assert!(limiter.blocked_for(ip).is_some());
        assert!(limiter.fail_now(ip).is_err());
        assert_eq!(limiter.blocked_for("10.0.0.2".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn attempts_in_flight_count_against_the_limit_until_they_end() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limiter.admit(ip).await.unwrap();
        let second = limiter.admit(ip).await.unwrap();
        // Both places are held: a third attempt waits, and a malformed header is refused.
        assert!(limiter.fail_now(ip).is_err());
        let third = tokio::time::timeout(Duration::from_millis(50), limiter.admit(ip)).await;
        assert!(third.is_err(), "the third attempt must wait");
        // One attempt succeeds: its place is free again.
        drop(first);
        let third = limiter.admit(ip).await.unwrap();
        second.fail();
        third.fail();
        assert!(limiter.blocked_for(ip).is_some());
        assert!(limiter.admit(ip).await.is_err());
    }
}
