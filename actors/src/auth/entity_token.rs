//! Entity tokens (`ent_`, WIRE §10.2, FEATURES AU-13): a registered device, user, service or
//! router proves it holds the key the entity registry has on file by signing its id and the time.
//!
//! This module is only the format and the signature check; the registry decides whether the
//! entity exists, is active, and how old a token may be.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::cap::mp;

/// The text every entity token starts with.
pub const ENT_PREFIX: &str = "ent_";

/// The text every entity id starts with (AU-12).
pub const ENTITY_ID_PREFIX: &str = "clasp:";

/// Longest token string we try to decode; a real one is about 130 characters.
pub const MAX_ENTITY_TOKEN_LEN: usize = 4096;

/// Why an entity token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityTokenError {
    /// The string does not start with `ent_`; another validator may own it.
    #[error("not an entity token (expected the ent_ prefix)")]
    NotEntityToken,
    /// Bad base64url, bad MessagePack, wrong sizes or a non-canonical encoding.
    #[error("malformed entity token: {0}")]
    Malformed(String),
    /// The signature does not verify with the registered key.
    #[error("entity token signature does not match the key of {0}")]
    BadSignature(String),
}

/// A decoded entity token: `[entity_id, timestamp, signature]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityToken {
    /// The registry id, `clasp:` + base58 of the key's first 16 bytes.
    pub entity_id: String,
    /// When it was minted, Unix seconds (the registry may bound its age).
    pub timestamp: u64,
    /// Ed25519 signature of [`EntityToken::signed_message`].
    pub signature: [u8; 64],
}

impl EntityToken {
    /// A token for `entity_id` at time `now` (Unix seconds), signed by the entity's key.
    pub fn mint(key: &SigningKey, entity_id: &str, now: u64) -> EntityToken {
        let message = Self::signed_message(entity_id, now);
        EntityToken {
            entity_id: entity_id.to_owned(),
            timestamp: now,
            signature: key.sign(&message).to_bytes(),
        }
    }

    /// What the entity signs: the id's UTF-8 bytes, then the timestamp as u64 big-endian.
    pub fn signed_message(entity_id: &str, timestamp: u64) -> Vec<u8> {
        let mut message = Vec::with_capacity(entity_id.len() + 8);
        message.extend_from_slice(entity_id.as_bytes());
        message.extend_from_slice(&timestamp.to_be_bytes());
        message
    }

    /// The MessagePack array `[entity_id: str, timestamp: uint, signature: bin 64]`.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entity_id.len() + 80);
        mp::array_len(&mut out, 3);
        mp::str(&mut out, &self.entity_id);
        mp::uint(&mut out, self.timestamp);
        mp::bin(&mut out, &self.signature);
        out
    }

    /// The token string: `ent_` + base64url without padding.
    pub fn encode(&self) -> String {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_msgpack());
        format!("{ENT_PREFIX}{body}")
    }

    /// Decodes a token string strictly (canonical base64url and MessagePack, nothing
    /// trailing), so one token has exactly one spelling. Checks no signature.
    pub fn parse(token: &str) -> Result<EntityToken, EntityTokenError> {
        let body = token
            .strip_prefix(ENT_PREFIX)
            .ok_or(EntityTokenError::NotEntityToken)?;
        if body.len() > MAX_ENTITY_TOKEN_LEN {
            return Err(EntityTokenError::Malformed("token too long".into()));
        }
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let bytes = engine
            .decode(body)
            .map_err(|e| EntityTokenError::Malformed(format!("base64url: {e}")))?;
        let token = Self::from_msgpack(&bytes)?;
        if engine.encode(&bytes) != body {
            return Err(EntityTokenError::Malformed(
                "non-canonical base64url".into(),
            ));
        }
        Ok(token)
    }

    /// Decodes the MessagePack array strictly (see [`EntityToken::parse`]).
    pub fn from_msgpack(bytes: &[u8]) -> Result<EntityToken, EntityTokenError> {
        let malformed = |e: mp::Error| EntityTokenError::Malformed(e.0.into());
        let mut r = mp::Reader::new(bytes);
        if r.array_len().map_err(malformed)? != 3 {
            return Err(EntityTokenError::Malformed("expected 3 fields".into()));
        }
        let token = EntityToken {
            entity_id: r.str().map_err(malformed)?.to_owned(),
            timestamp: r.uint().map_err(malformed)?,
            signature: r.signature().map_err(malformed)?,
        };
        r.finish().map_err(malformed)?;
        if token.to_msgpack() != bytes {
            return Err(EntityTokenError::Malformed("non-canonical encoding".into()));
        }
        Ok(token)
    }

    /// Checks the signature with the key the registry holds for `entity_id`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), EntityTokenError> {
        let message = Self::signed_message(&self.entity_id, self.timestamp);
        key.verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| EntityTokenError::BadSignature(self.entity_id.clone()))
    }
}

/// The registry id of the entity holding `key`: `clasp:` + base58 of its first 16 bytes, so
/// an id can be recomputed from the key alone (AU-12).
pub fn entity_id_for(key: &VerifyingKey) -> String {
    let bytes = key.as_bytes();
    format!(
        "{ENTITY_ID_PREFIX}{}",
        bs58::encode(&bytes[..16]).into_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn round_trip_and_verify() {
        let k = key(3);
        let id = entity_id_for(&k.verifying_key());
        assert!(id.starts_with("clasp:"));
        let token = EntityToken::mint(&k, &id, 1_700_000_000);
        let text = token.encode();
        let parsed = EntityToken::parse(&text).expect("parses");
        assert_eq!(parsed, token);
        parsed.verify(&k.verifying_key()).expect("verifies");
        assert!(parsed.verify(&key(4).verifying_key()).is_err());
    }

    /// Every character replaced by three other base64url characters and one outside the
    /// alphabet: the token must no longer parse or verify.
    #[test]
    fn every_single_character_mutation_is_refused() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let k = key(5);
        let public = k.verifying_key();
        let text = EntityToken::mint(&k, &entity_id_for(&public), 1_700_000_000).encode();
        let accepted = |t: &str| EntityToken::parse(t).is_ok_and(|e| e.verify(&public).is_ok());
        assert!(accepted(&text));
        for (pos, &original) in text.as_bytes().iter().enumerate() {
            let start = ALPHABET.iter().position(|&c| c == original).unwrap_or(0);
            let mut alternatives: Vec<u8> = (1..=3)
                .map(|n| ALPHABET[(start + 1 + (n * 21 + pos) % 63) % ALPHABET.len()])
                .collect();
            alternatives.push(b'.');
            for replacement in alternatives {
                let mut mutated = text.clone().into_bytes();
                mutated[pos] = replacement;
                let mutated = String::from_utf8(mutated).expect("ASCII");
                assert!(
                    !accepted(&mutated),
                    "position {pos} -> {}",
                    replacement as char
                );
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for len in 0..64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert!(EntityToken::from_msgpack(&bytes).is_err());
        }
        assert!(EntityToken::from_msgpack(&[0x93, 0xdb, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
