//! Argon2id password hashes (PHC strings) and generated passwords.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::distr::Alphanumeric;
use rand::RngExt as _;

/// Hashes a password with Argon2id and a random 16-byte salt from the operating system.
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        // Hashing fails only for parameters out of range, which the defaults are not, or
        // when the operating system has no randomness to give.
        .unwrap_or_default()
}

/// True when `password` matches the stored hash (a PHC string, parameters included, so hashes
/// written with other parameters still verify).
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A random password of 24 letters and digits.
pub fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = super::hash("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("s3cret", &h));
        assert!(!super::verify("S3cret", &h));
        assert!(!super::verify("s3cret", "not a hash"));
        // A hash written by the argon2 0.5 crate (before the upgrade to 0.6) still verifies:
        // databases keep their users' hashes across the upgrade.
        let older = "$argon2id$v=19$m=19456,t=2,p=1$cmzLTsNjxHvFD28nR5OD7w$\
                     vBd0cIu68V0IffFIwOn1kAXcCUtPafu0iOG/kX47obw";
        assert!(super::verify("s3cret", older));
        assert!(!super::verify("s3creT", older));
    }
}
