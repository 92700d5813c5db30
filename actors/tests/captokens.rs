//! Capability tokens (WIRE §10.3, FEATURES AU-9/AU-10): byte-exact compatibility with the
//! upstream vectors, and a validator that checks every link of a delegation chain.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clasp_actors::auth::cap::{CapError, CapToken, CapValidator, ProofLink};
use clasp_actors::auth::Scopes;
use ed25519_dalek::SigningKey;

/// A time before every expiry used here.
const NOW: u64 = 1_700_000_000;
/// The vectors' expiry.
const VECTOR_EXPIRY: u64 = 4_102_444_800;

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("data/captokens.json")).expect("vector file is JSON")
}

fn field(v: &serde_json::Value, name: &str) -> String {
    v[name].as_str().expect(name).to_owned()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn scopes(list: &str) -> Scopes {
    Scopes::parse_list(list).expect("valid scopes")
}

fn validator(anchor: u8) -> CapValidator {
    CapValidator::new(vec![key(anchor).verifying_key()])
}

fn root_token(list: &str) -> CapToken {
    CapToken::create(&key(1), &scopes(list), VECTOR_EXPIRY, None)
}

/// root (seed 1) → child (seed 2) → grandchild (seed 3), each narrower.
fn chain() -> Vec<CapToken> {
    let root = root_token("admin:/**");
    let child = CapToken::delegate(
        &root,
        &key(2),
        &scopes("write:/lights/**"),
        VECTOR_EXPIRY,
        None,
    )
    .expect("child");
    let audience = Some(key(9).verifying_key().to_bytes());
    let grandchild = CapToken::delegate(
        &child,
        &key(3),
        &scopes("read:/lights/stage/*"),
        NOW + 60,
        audience,
    )
    .expect("grandchild");
    vec![root, child, grandchild]
}

#[test]
fn vectors_round_trip_byte_for_byte() {
    let v = vectors();
    for (name, seed) in [("root", 1u8), ("child", 2)] {
        let text = field(&v, &format!("{name}_token"));
        let token = CapToken::decode(&text).expect(&text);
        assert_eq!(
            hex::encode(token.to_msgpack()),
            field(&v, &format!("{name}_token_msgpack_hex"))
        );
        assert_eq!(token.encode(), text);
        assert_eq!(
            hex::encode(token.signable_bytes()),
            field(&v, &format!("{name}_signable_payload_hex"))
        );
        let mut resigned = token.clone();
        resigned.sign(&key(seed));
        assert_eq!(resigned, token, "Ed25519 is deterministic");
        assert_eq!(
            hex::encode(resigned.signature),
            field(&v, &format!("{name}_signature_hex"))
        );
    }
    assert_eq!(
        hex::encode(key(1).verifying_key().as_bytes()),
        field(&v, "root_pubkey_hex")
    );
}

#[test]
fn upstream_root_token_validates() {
    let v = vectors();
    let grant = validator(1)
        .validate(&field(&v, "root_token"), NOW)
        .expect("root vector validates");
    assert_eq!(grant.scopes.to_strings(), ["admin:/**"]);
    assert_eq!(grant.expires_at, VECTOR_EXPIRY);
    assert_eq!(grant.subject, field(&v, "root_pubkey_hex"));
}

#[test]
fn upstream_delegated_token_is_refused_as_unverifiable() {
    let v = vectors();
    let err = validator(1)
        .validate(&field(&v, "child_token"), NOW)
        .expect_err("upstream proof links cannot be verified");
    assert_eq!(err, CapError::UnverifiableChain(0));
    let message = err.to_string();
    assert!(message.contains("cannot be verified"), "{message}");
    assert!(message.contains("clasp token cap delegate"), "{message}");
    assert!(!err.is_expired());
    let child = CapToken::decode(&field(&v, "child_token")).expect("decodes");
    assert_eq!(
        CapToken::delegate(&child, &key(3), &scopes("read:/lights/a"), NOW + 60, None),
        Err(CapError::UnverifiableChain(0))
    );
}

#[test]
fn forged_chain_is_refused() {
    let v = vectors();
    let err = validator(1)
        .validate(&field(&v, "forged_chain_token"), NOW)
        .expect_err("a forged proofs[0] must not pass");
    assert!(!err.is_expired());
    // The same forgery in our proof format: the zero signature is now checked.
    let mut forged = CapToken::decode(&field(&v, "forged_chain_token")).expect("decodes");
    forged.proofs[0].expires_at = Some(VECTOR_EXPIRY);
    forged.proofs[0].nonce = Some("00000000-0000-4000-8000-000000000000".into());
    assert_eq!(
        validator(1).validate(&resigned(forged, 9), NOW),
        Err(CapError::BadSignature("proof link 0".into()))
    );
}

#[test]
fn our_chain_validates_with_the_leaf_scopes() {
    let chain = chain();
    let leaf = &chain[2];
    assert_eq!(leaf.depth(), 2);
    assert_eq!(leaf.expires_at, NOW + 60);
    assert!(leaf.proofs.iter().all(ProofLink::is_verifiable));
    let grant = validator(1).validate(&leaf.encode(), NOW).expect("valid");
    assert_eq!(grant.scopes.to_strings(), ["read:/lights/stage/*"]);
    assert_eq!(
        grant.subject,
        hex::encode(key(3).verifying_key().as_bytes())
    );
    assert_eq!(grant.audience, leaf.audience);
    assert_eq!(CapToken::decode(&leaf.encode()), Ok(leaf.clone()));
}

#[test]
fn delegation_clamps_expiry_and_refuses_wider_scopes() {
    let root = CapToken::create(&key(1), &scopes("write:/a/**"), NOW + 100, None);
    let child = CapToken::delegate(&root, &key(2), &scopes("read:/a/b"), NOW + 999, None)
        .expect("narrower");
    assert_eq!(child.expires_at, NOW + 100);
    for wider in ["admin:/a/**", "read:/**", "write:/a/b,read:/c"] {
        assert!(matches!(
            CapToken::delegate(&root, &key(2), &scopes(wider), NOW + 50, None),
            Err(CapError::ScopeWidened(_))
        ));
    }
}

/// Re-signs a hand-edited leaf with the child key it was issued to.
fn resigned(mut token: CapToken, seed: u8) -> String {
    token.sign(&key(seed));
    token.encode()
}

#[test]
fn hand_built_widening_is_refused() {
    let mut wide = chain().swap_remove(2);
    wide.scopes = vec!["write:/**".into()];
    assert_eq!(
        validator(1).validate(&resigned(wide, 3), NOW),
        Err(CapError::ScopeWidened("the token".into()))
    );
    let mut wide = chain().swap_remove(1);
    wide.scopes = vec!["admin:/**".into(), "read:/**".into()];
    let ok = validator(1).validate(&resigned(wide.clone(), 2), NOW);
    assert!(ok.is_ok(), "equal scopes are a subset: {ok:?}");
    let mut later = chain().swap_remove(2);
    later.expires_at = VECTOR_EXPIRY + 1;
    assert_eq!(
        validator(1).validate(&resigned(later, 3), NOW),
        Err(CapError::ExpiryWidened("the token".into()))
    );
    let mut bad = chain().swap_remove(2);
    bad.scopes = vec!["emit:/lights/stage/x".into()];
    assert!(matches!(
        validator(1).validate(&resigned(bad, 3), NOW),
        Err(CapError::InvalidScope { .. })
    ));
}

#[test]
fn root_scopes_with_unknown_actions_are_dropped() {
    let mut root = root_token("read:/a");
    root.scopes.push("emit:/b".into());
    let grant = validator(1)
        .validate(&resigned(root, 1), NOW)
        .expect("valid");
    assert_eq!(grant.scopes.to_strings(), ["read:/a"]);
}

#[test]
fn expired_is_its_own_error() {
    let token = CapToken::create(&key(1), &scopes("read:/a"), NOW, None).encode();
    assert!(
        validator(1).validate(&token, NOW).is_ok(),
        "valid until expires_at"
    );
    let err = validator(1).validate(&token, NOW + 1).expect_err("expired");
    assert!(err.is_expired(), "{err}");
}

#[test]
fn depth_is_limited() {
    let mut token = root_token("admin:/**");
    for seed in 2..=7u8 {
        token = CapToken::delegate(
            &token,
            &key(seed),
            &scopes("admin:/**"),
            VECTOR_EXPIRY,
            None,
        )
        .expect("delegate");
        let result = validator(1).validate(&token.encode(), NOW);
        if token.depth() <= 5 {
            assert!(result.is_ok(), "depth {}: {result:?}", token.depth());
        } else {
            assert_eq!(result, Err(CapError::TooDeep { depth: 6, max: 5 }));
        }
    }
    assert!(validator(1)
        .with_max_depth(6)
        .validate(&token.encode(), NOW)
        .is_ok());
}

#[test]
fn untrusted_root_is_refused() {
    let leaf = chain().swap_remove(2).encode();
    assert_eq!(
        validator(5).validate(&leaf, NOW),
        Err(CapError::UntrustedRoot(hex::encode(
            key(1).verifying_key().as_bytes()
        )))
    );
    assert!(CapValidator::new(vec![]).validate(&leaf, NOW).is_err());
}

#[test]
fn swapped_proof_signature_is_refused() {
    // A real signature by the root key, but over another token.
    let other = root_token("admin:/**");
    let mut leaf = chain().swap_remove(1);
    leaf.proofs[0].signature = other.signature;
    assert_eq!(
        validator(1).validate(&resigned(leaf, 2), NOW),
        Err(CapError::BadSignature("proof link 0".into()))
    );
    let mut leaf = chain().swap_remove(2);
    leaf.proofs[1].scopes = vec!["admin:/**".into()];
    assert_eq!(
        validator(1).validate(&resigned(leaf, 3), NOW),
        Err(CapError::BadSignature("proof link 1".into()))
    );
}

#[test]
fn non_canonical_encodings_are_refused() {
    let token = root_token("read:/a");
    let good = token.to_msgpack();
    // version 1 as 0xcc 0x01 instead of the fixint.
    let pos = good
        .windows(8)
        .position(|w| w == b"version\x01")
        .expect("version")
        + 7;
    let mut long = good[..pos].to_vec();
    long.extend_from_slice(&[0xcc, 0x01]);
    long.extend_from_slice(&good[pos + 1..]);
    assert!(matches!(
        CapToken::from_msgpack(&long),
        Err(CapError::Malformed(_))
    ));
    let mut trailing = good.clone();
    trailing.push(0xc0);
    assert!(CapToken::from_msgpack(&trailing).is_err());
    let padded = format!("{}=", token.encode());
    assert!(CapToken::decode(&padded).is_err());
    assert_eq!(CapToken::decode("cpsk_abc"), Err(CapError::NotCapability));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let good = chain().swap_remove(2).to_msgpack();
    for end in 0..good.len() {
        assert!(
            CapToken::from_msgpack(&good[..end]).is_err(),
            "prefix {end}"
        );
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 96) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|i| (state >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        let _ = CapToken::from_msgpack(&bytes);
    }
    for hostile in [
        &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
        &[
            0x81, 0xa6, b'p', b'r', b'o', b'o', b'f', b's', 0xdd, 0xff, 0xff, 0xff, 0xff,
        ],
        &[0x81, 0xdb, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(CapToken::from_msgpack(hostile).is_err());
    }
}

/// Every character of a valid token, replaced by `per_position` other base64url characters
/// (rotating with the position) and by one character outside the alphabet, must make
/// validation fail.
fn assert_every_mutation_fails(token: &str, validator: &CapValidator, per_position: usize) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(validator.validate(token, NOW).is_ok());
    let bytes = token.as_bytes();
    for (pos, &original) in bytes.iter().enumerate() {
        let start = ALPHABET.iter().position(|&c| c == original).unwrap_or(0);
        let mut alternatives: Vec<u8> = (1..=per_position)
            .map(|k| ALPHABET[(start + 1 + (k * 21 + pos) % 63) % ALPHABET.len()])
            .collect();
        alternatives.push(b'!');
        for replacement in alternatives {
            let mut mutated = bytes.to_vec();
            mutated[pos] = replacement;
            let mutated = String::from_utf8(mutated).expect("ASCII");
            assert!(
                validator.validate(&mutated, NOW).is_err(),
                "position {pos}: {:?} -> {:?} still validates",
                original as char,
                replacement as char
            );
        }
    }
}

#[test]
fn every_single_character_mutation_is_refused() {
    // Crypto crates are optimised even in debug builds (see the workspace Cargo.toml), so the
    // root token gets every other alphabet character at every position.
    let v = vectors();
    assert_every_mutation_fails(&field(&v, "root_token"), &validator(1), 63);
    assert_every_mutation_fails(&chain()[2].encode(), &validator(1), 4);
}

/// Every byte of the decoded MessagePack replaced by each value in `replacements(original)`,
/// re-encoded as a token: validation must fail.
fn assert_every_byte_mutation_fails(
    token: &CapToken,
    validator: &CapValidator,
    replacements: impl Fn(u8) -> Vec<u8>,
) {
    let bytes = token.to_msgpack();
    assert!(validator.validate(&token.encode(), NOW).is_ok());
    for pos in 0..bytes.len() {
        for replacement in replacements(bytes[pos]) {
            let mut mutated = bytes.clone();
            mutated[pos] = replacement;
            let text = format!("cap_{}", URL_SAFE_NO_PAD.encode(&mutated));
            assert!(
                validator.validate(&text, NOW).is_err(),
                "byte {pos}: {:#04x} -> {replacement:#04x} still validates",
                bytes[pos]
            );
        }
    }
}

#[test]
fn every_single_byte_mutation_is_refused() {
    let v = vectors();
    let root = CapToken::decode(&field(&v, "root_token")).expect("root vector decodes");
    // The root: all 255 other values of every byte.
    assert_every_byte_mutation_fails(&root, &validator(1), |b| {
        (0..=255u8).filter(|&x| x != b).collect()
    });
    // The 2-deep chain: every single-bit flip, and 0x00 / 0xFF, of every byte.
    assert_every_byte_mutation_fails(&chain()[2], &validator(1), |b| {
        let mut r: Vec<u8> = (0..8).map(|i| b ^ (1 << i)).collect();
        r.extend([0x00, 0xFF].into_iter().filter(|&x| x != b));
        r
    });
}
