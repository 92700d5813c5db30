//! Secrets: CPSK token generation, token hashing and password hashing. Nothing here logs or
//! stores a secret in the clear; token lookups go by SHA-256 hash, and password checks run
//! through argon2's constant-time verifier.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of pre-shared-key tokens (WIRE §10.2).
pub const CPSK_PREFIX: &str = "cpsk_";

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The OS random source failed.
    #[error("system random source failed")]
    Random,
    /// argon2 refused to hash.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// `cpsk_` + 128 random bits as 32 lowercase hex digits (the upstream shape).
pub fn new_cpsk_token() -> Result<String, SecretError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Random)?;
    Ok(format!("{CPSK_PREFIX}{}", hex::encode(bytes)))
}

/// The key a token is stored and looked up under.
pub fn token_hash(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| SecretError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Does `password` match the stored PHC string? A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hashes a dummy password so an unknown username costs as much as a wrong password and
/// timing does not reveal which usernames exist.
pub fn burn_password_check(password: &str) {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3xM0x6V2lJbGZ9Vf8TG3n3u4ZrS2pW1cN3Vq0hXjv0Q";
    let _ = verify_password(password, DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_well_formed() {
        let a = new_cpsk_token().expect("random");
        let b = new_cpsk_token().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 32);
        assert!(a[5..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("secret1").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("secret1", &phc));
        assert!(!verify_password("secret2", &phc));
        assert!(!verify_password("secret1", "not a hash"));
        burn_password_check("x");
    }
}
