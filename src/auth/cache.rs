//! The verified-login cache: which credentials were checked against which stored hash, and when
//! the user's row was last read.
//!
//! Bounded, with per-entry expiry (moka): when full it evicts the entries least worth keeping
//! (TinyLFU admission, LRU eviction) rather than forgetting everyone at once — emptying a full
//! map made every active client pay an Argon2 verification in the same second.
//!
//! An entry outlives the `--login-recheck` interval on purpose. After the interval the user's
//! row is read again, and if it still holds the hash the credentials were verified against, the
//! entry is confirmed without running Argon2 again; only entries nobody used for `idle` expire.
//! Expiring entries after the recheck interval would cost every busy client one Argon2
//! verification (tens of milliseconds, ~19 MiB) per interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::domain::Principal;
use crate::store::LoginRecord;

/// Entries kept at most. An entry is a few hundred bytes (the stored hash, the principal), so
/// the cache stays within a few tens of MiB while holding every active user of a large
/// deployment.
pub const MAX_CACHED_LOGINS: u64 = 100_000;

/// An entry unused this long is dropped, whatever the recheck interval.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// A login checked against the stored hash (or token), and when its row was last read.
#[derive(Debug)]
struct Verified {
    password_hash: String,
    principal: Principal,
    confirmed: Instant,
    /// The credentials version read before the user's row was (see
    /// [`VerifiedLogins::still_valid`]); None when it could not be read.
    version: Option<i64>,
}

/// Keyed by a salted digest of the credentials (never the credentials themselves).
pub struct VerifiedLogins {
    entries: Cache<[u8; 32], Arc<Verified>>,
    recheck_after: Duration,
}

impl VerifiedLogins {
    pub fn new(capacity: u64, idle: Duration, recheck_after: Duration) -> Self {
        VerifiedLogins {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle.max(recheck_after))
                .build(),
            recheck_after,
        }
    }

    /// The caller, when these credentials were verified less than `recheck_after` ago.
    pub fn recently_verified(&self, key: &[u8; 32]) -> Option<Principal> {
        self.entries
            .get(key)
            .filter(|v| v.confirmed.elapsed() < self.recheck_after)
            .map(|v| v.principal.clone())
    }

    /// The caller, when these credentials were verified at a credentials version that is still
    /// the current one, read at `read_at`: nothing about any stored credentials changed between
    /// that verification and `read_at`, so the entry is trusted for `recheck_after` from
    /// `read_at` without reading the user's row.
    pub fn still_valid(&self, key: &[u8; 32], version: i64, read_at: Instant) -> Option<Principal> {
        let entry = self.entries.get(key)?;
        if entry.version != Some(version) || read_at.elapsed() >= self.recheck_after {
            return None;
        }
        if read_at > entry.confirmed {
            self.entries.insert(
                *key,
                Arc::new(Verified {
                    password_hash: entry.password_hash.clone(),
                    principal: entry.principal.clone(),
                    confirmed: read_at,
                    version: entry.version,
                }),
            );
        }
        Some(entry.principal.clone())
    }

    /// True when these credentials were verified against the hash the row holds now; the
    /// entry is then trusted for another `recheck_after`. A changed hash (new password) drops
    /// the entry, so the old password is never accepted again from the cache. `version`: the
    /// credentials version read before the row.
    pub fn confirm(&self, key: &[u8; 32], record: &LoginRecord, version: Option<i64>) -> bool {
        match self.entries.get(key) {
            Some(v) if v.password_hash == record.password_hash => {
                self.remember(*key, record, version);
                true
            }
            Some(_) => {
                self.entries.invalidate(key);
                false
            }
            None => false,
        }
    }

    /// `version`: the credentials version read before the row was.
    pub fn remember(&self, key: [u8; 32], record: &LoginRecord, version: Option<i64>) {
        self.entries.insert(
            key,
            Arc::new(Verified {
                password_hash: record.password_hash.clone(),
                principal: Principal::from(record),
                confirmed: Instant::now(),
                version,
            }),
        );
    }

    /// Entries held, after pending evictions have run (moka applies them lazily).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use uuid::Uuid;

    fn record(username: &str, hash: &str) -> LoginRecord {
        LoginRecord {
            login_id: 1,
            tenant_id: 1,
            domain: "acme".into(),
            username: username.into(),
            password_hash: hash.into(),
            role: Role::Dispatcher,
            user_id: Uuid::nil(),
        }
    }

    fn key(n: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_le_bytes());
        k
    }

    #[test]
    fn a_full_cache_evicts_some_entries_instead_of_forgetting_everyone() {
        let cache = VerifiedLogins::new(100, IDLE_EXPIRY, Duration::from_secs(60));
        // A busy client: used often, so the admission policy keeps it over one-off logins.
        let busy = key(u32::MAX);
        cache.remember(busy, &record("busy", "h"), None);
        for _ in 0..20 {
            assert!(cache.recently_verified(&busy).is_some());
        }
        for n in 0..1_000 {
            cache.remember(key(n), &record(&format!("u{n}"), "h"), None);
            cache.recently_verified(&busy);
        }
        let held = cache.len();
        assert!(held <= 100, "bounded: {held} entries");
        assert!(held >= 50, "not emptied: {held} entries");
        assert!(cache.recently_verified(&busy).is_some());
    }

    #[test]
    fn a_login_is_trusted_until_the_recheck_then_confirmed_against_the_stored_hash() {
        let cache = VerifiedLogins::new(100, IDLE_EXPIRY, Duration::from_millis(50));
        let k = key(1);
        cache.remember(k, &record("jo", "hash-1"), None);
        assert_eq!(cache.recently_verified(&k).unwrap().username, "jo");
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.recently_verified(&k).is_none(), "recheck due");
        assert!(
            cache.confirm(&k, &record("jo", "hash-1"), None),
            "same hash: no Argon2"
        );
        assert!(cache.recently_verified(&k).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(
            !cache.confirm(&k, &record("jo", "hash-2"), None),
            "password changed"
        );
        assert!(
            !cache.confirm(&k, &record("jo", "hash-1"), None),
            "entry dropped"
        );
    }

    #[test]
    fn an_entry_nobody_uses_expires() {
        let cache = VerifiedLogins::new(100, Duration::from_millis(50), Duration::from_millis(10));
        let k = key(7);
        cache.remember(k, &record("jo", "h"), None);
        std::thread::sleep(Duration::from_millis(120));
        assert!(!cache.confirm(&k, &record("jo", "h"), None));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn an_unchanged_credentials_version_vouches_for_a_login_and_a_changed_one_does_not() {
        let cache = VerifiedLogins::new(100, IDLE_EXPIRY, Duration::from_millis(50));
        let (k, other) = (key(1), key(2));
        cache.remember(k, &record("jo", "h"), Some(7));
        cache.remember(other, &record("al", "h"), None);
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.recently_verified(&k).is_none(), "recheck due");
        let read_at = Instant::now();
        assert!(
            cache.still_valid(&k, 8, read_at).is_none(),
            "credentials changed"
        );
        assert!(
            cache.still_valid(&other, 7, read_at).is_none(),
            "verified without a version: its row must be read"
        );
        assert_eq!(cache.still_valid(&k, 7, read_at).unwrap().username, "jo");
        assert!(
            cache.recently_verified(&k).is_some(),
            "trusted again from the reading"
        );
        // A reading older than the recheck interval vouches for nothing.
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.still_valid(&k, 7, read_at).is_none());
    }
}
