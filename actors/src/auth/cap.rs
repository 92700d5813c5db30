//! Capability tokens (`cap_`, WIRE §10.3, FEATURES AU-9/AU-10): Ed25519-signed grants that a
//! key holder can narrow and hand on (delegate) without asking the relay.
//!
//! The byte layout is upstream's (a MessagePack named map) so root tokens minted by either
//! implementation are interchangeable. Delegation is where we differ on purpose: upstream proof
//! links carry only `{issuer, scopes, signature}`, which is not enough to rebuild what the parent
//! signed, so upstream cannot check them and accepts forged chains. Our proof links also carry
//! the parent's `expires_at`, `nonce` and (when set) `audience`, and [`CapValidator`] verifies
//! every link. Delegated tokens without those fields are refused with a message telling the
//! holder to re-delegate (see docs/auth-tokens.md).

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::scope::{ScopeError, Scopes};

/// The text every capability token starts with.
pub const CAP_PREFIX: &str = "cap_";

/// The only token version that exists (WIRE §10.3).
pub const CAP_VERSION: u64 = 1;

/// How many proof links a token may carry unless the relay says otherwise (AU-10).
pub const DEFAULT_MAX_DEPTH: usize = 5;

/// Longest token string we try to decode: far above any real chain, and it keeps a hostile
/// HELLO from making us decode megabytes.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a capability token was refused or could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// The string does not start with `cap_`; another validator may own it.
    #[error("not a capability token (expected the cap_ prefix)")]
    NotCapability,
    /// Bad base64url, bad MessagePack, unknown keys, non-canonical encoding, wrong sizes.
    #[error("malformed capability token: {0}")]
    Malformed(String),
    /// A version this relay does not know.
    #[error("unsupported capability token version {0}")]
    Version(u64),
    /// The leaf has expired (the relay answers ERROR 302).
    #[error("capability token expired at {expires_at} (now {now})")]
    Expired {
        /// The leaf's expiry, Unix seconds.
        expires_at: u64,
        /// The time of the check, Unix seconds.
        now: u64,
    },
    /// More proof links than the relay allows.
    #[error("delegation chain too deep: {depth} links, at most {max}")]
    TooDeep {
        /// Number of proof links.
        depth: usize,
        /// The relay's limit.
        max: usize,
    },
    /// The chain does not start at a key this relay trusts.
    #[error("capability root issuer {0} is not a trust anchor")]
    UntrustedRoot(String),
    /// A proof link lacks the parent's expiry and nonce (an upstream-minted delegation).
    #[error(
        "delegation chain cannot be verified: proof link {0} lacks the parent's expires_at and \
         nonce (token delegated by an upstream implementation); re-delegate it from the parent \
         token with `clasp token cap delegate`"
    )]
    UnverifiableChain(usize),
    /// An issuer field is not a valid Ed25519 public key.
    #[error("{0} is not a valid Ed25519 public key")]
    BadKey(String),
    /// A signature does not verify.
    #[error("bad signature on {0}")]
    BadSignature(String),
    /// A delegated scope string does not parse.
    #[error("invalid scope in {link}: {source}")]
    InvalidScope {
        /// Which part of the chain.
        link: String,
        /// Why the scope is invalid.
        source: ScopeError,
    },
    /// A link grants more than its parent.
    #[error("{0} grants scopes its parent does not hold")]
    ScopeWidened(String),
    /// A link outlives its parent.
    #[error("{0} expires after its parent")]
    ExpiryWidened(String),
}

impl CapError {
    /// Expiry is the one failure the relay reports as ERROR 302; every other one is 300.
    pub fn is_expired(&self) -> bool {
        matches!(self, CapError::Expired { .. })
    }
}

/// One ancestor of a delegated token, root first.
///
/// `issuer`, `scopes` and `signature` are upstream's fields. `expires_at`, `nonce` and
/// `audience` are ours: with them the ancestor's signed bytes can be rebuilt and its signature
/// checked. Links without `expires_at` and `nonce` decode (so `inspect` can show them) but never
/// validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofLink {
    /// The ancestor's signer.
    pub issuer: [u8; 32],
    /// The ancestor's scopes.
    pub scopes: Vec<String>,
    /// The ancestor's signature.
    pub signature: [u8; 64],
    /// The ancestor's expiry (absent in upstream links).
    pub expires_at: Option<u64>,
    /// The ancestor's nonce (absent in upstream links).
    pub nonce: Option<String>,
    /// The ancestor's audience, when it had one.
    pub audience: Option<[u8; 32]>,
}

impl ProofLink {
    /// Can this link's signature be checked (it carries the parent's expiry and nonce)?
    pub fn is_verifiable(&self) -> bool {
        self.expires_at.is_some() && self.nonce.is_some()
    }
}

/// A decoded capability token (WIRE §10.3 field order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapToken {
    /// Always [`CAP_VERSION`] in a valid token.
    pub version: u64,
    /// The signer's Ed25519 public key.
    pub issuer: [u8; 32],
    /// Whom the token is meant for (informational).
    pub audience: Option<[u8; 32]>,
    /// `action:pattern` grants.
    pub scopes: Vec<String>,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    /// Makes two otherwise equal tokens distinct (a UUID string).
    pub nonce: String,
    /// Ancestors, root first; empty for a root token.
    pub proofs: Vec<ProofLink>,
    /// Ed25519 signature of [`CapToken::signable_bytes`] by `issuer`.
    pub signature: [u8; 64],
}

impl CapToken {
    /// A root token signed by `key`, with a fresh random nonce.
    pub fn create(
        key: &SigningKey,
        scopes: &Scopes,
        expires_at: u64,
        audience: Option<[u8; 32]>,
    ) -> CapToken {
        let mut token = CapToken {
            version: CAP_VERSION,
            issuer: [0; 32],
            audience,
            scopes: scopes.to_strings(),
            expires_at,
            nonce: uuid::Uuid::new_v4().to_string(),
            proofs: Vec::new(),
            signature: [0; 64],
        };
        token.sign(key);
        token
    }

    /// A child of `parent` signed by `child_key`: refuses scopes the parent does not hold,
    /// clamps the expiry to the parent's and appends the parent as a verifiable proof link.
    pub fn delegate(
        parent: &CapToken,
        child_key: &SigningKey,
        scopes: &Scopes,
        expires_at: u64,
        audience: Option<[u8; 32]>,
    ) -> Result<CapToken, CapError> {
        if let Some(i) = parent.proofs.iter().position(|p| !p.is_verifiable()) {
            return Err(CapError::UnverifiableChain(i));
        }
        if !Scopes::parse_lenient(&parent.scopes).contains_all(scopes) {
            return Err(CapError::ScopeWidened(format!("the delegation ({scopes})")));
        }
        let mut proofs = parent.proofs.clone();
        proofs.push(parent.as_proof_link());
        let mut token = CapToken {
            version: CAP_VERSION,
            issuer: [0; 32],
            audience,
            scopes: scopes.to_strings(),
            expires_at: expires_at.min(parent.expires_at),
            nonce: uuid::Uuid::new_v4().to_string(),
            proofs,
            signature: [0; 64],
        };
        token.sign(child_key);
        Ok(token)
    }

    /// This token as its children's proof link, with the fields that make it verifiable.
    pub fn as_proof_link(&self) -> ProofLink {
        ProofLink {
            issuer: self.issuer,
            scopes: self.scopes.clone(),
            signature: self.signature,
            expires_at: Some(self.expires_at),
            nonce: Some(self.nonce.clone()),
            audience: self.audience,
        }
    }

    /// Sets `issuer` to `key`'s public key and signs; used by minting and by tests that build
    /// tokens by hand.
    pub fn sign(&mut self, key: &SigningKey) {
        self.issuer = key.verifying_key().to_bytes();
        self.signature = key.sign(&self.signable_bytes()).to_bytes();
    }

    /// The bytes `issuer` signs: the token without its signature, `audience` always present
    /// (nil when absent) and `proofs` always present (WIRE §10.3).
    pub fn signable_bytes(&self) -> Vec<u8> {
        signable(
            self.version,
            &self.issuer,
            self.audience.as_ref(),
            &self.scopes,
            self.expires_at,
            &self.nonce,
            &self.proofs,
        )
    }

    /// The token's MessagePack bytes: optional fields omitted when absent, as upstream does.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let entries =
            6 + usize::from(self.audience.is_some()) + usize::from(!self.proofs.is_empty());
        mp::map_len(&mut out, entries);
        mp::str(&mut out, "version");
        mp::uint(&mut out, self.version);
        mp::str(&mut out, "issuer");
        mp::key(&mut out, &self.issuer);
        if let Some(audience) = &self.audience {
            mp::str(&mut out, "audience");
            mp::key(&mut out, audience);
        }
        mp::str(&mut out, "scopes");
        mp::strs(&mut out, &self.scopes);
        mp::str(&mut out, "expires_at");
        mp::uint(&mut out, self.expires_at);
        mp::str(&mut out, "nonce");
        mp::str(&mut out, &self.nonce);
        if !self.proofs.is_empty() {
            mp::str(&mut out, "proofs");
            write_proofs(&mut out, &self.proofs);
        }
        mp::str(&mut out, "signature");
        mp::bin(&mut out, &self.signature);
        out
    }

    /// The token string: `cap_` + base64url without padding.
    pub fn encode(&self) -> String {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_msgpack());
        format!("{CAP_PREFIX}{body}")
    }

    /// Decodes a token string strictly: canonical base64url, known keys only, and bytes that
    /// re-encode exactly, so one token has one encoding. Checks no signature.
    pub fn decode(token: &str) -> Result<CapToken, CapError> {
        let body = token
            .strip_prefix(CAP_PREFIX)
            .ok_or(CapError::NotCapability)?;
        if body.len() > MAX_TOKEN_LEN {
            return Err(CapError::Malformed("token too long".into()));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| CapError::Malformed(format!("base64url: {e}")))?;
        let cap = Self::from_msgpack(&bytes)?;
        // Belt and braces: the engine already refuses padding and trailing bits.
        if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes) != body {
            return Err(CapError::Malformed("non-canonical base64url".into()));
        }
        Ok(cap)
    }

    /// Decodes MessagePack bytes strictly (see [`CapToken::decode`]).
    pub fn from_msgpack(bytes: &[u8]) -> Result<CapToken, CapError> {
        let mut reader = mp::Reader::new(bytes);
        let token = read_token(&mut reader).map_err(malformed)?;
        reader.finish().map_err(malformed)?;
        if token.to_msgpack() != bytes {
            return Err(CapError::Malformed("non-canonical encoding".into()));
        }
        Ok(token)
    }

    /// Number of proof links (0 for a root token).
    pub fn depth(&self) -> usize {
        self.proofs.len()
    }

    /// The key the chain starts from: the first proof's issuer, or ours for a root token.
    pub fn root_issuer(&self) -> [u8; 32] {
        self.proofs.first().map_or(self.issuer, |p| p.issuer)
    }
}

fn malformed(e: mp::Error) -> CapError {
    CapError::Malformed(e.0.into())
}

/// What a valid capability token grants the session that presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapGrant {
    /// The leaf's scopes: the session's grants.
    pub scopes: Scopes,
    /// The leaf's expiry, Unix seconds.
    pub expires_at: u64,
    /// Hex of the leaf issuer's public key: who holds the token.
    pub subject: String,
    /// The leaf's audience, when set (informational).
    pub audience: Option<[u8; 32]>,
}

/// Checks capability tokens against the relay's trust anchors (AU-10), every link included.
#[derive(Debug, Clone)]
pub struct CapValidator {
    /// Keys whose root tokens this relay accepts.
    pub anchors: Vec<VerifyingKey>,
    /// Most proof links a token may carry.
    pub max_depth: usize,
}

impl CapValidator {
    /// A validator for these anchors with the default depth limit.
    pub fn new(anchors: Vec<VerifyingKey>) -> Self {
        Self {
            anchors,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// The same validator with another depth limit (`--cap-max-depth`).
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Decodes and fully checks `token` at time `now` (Unix seconds).
    pub fn validate(&self, token: &str, now: u64) -> Result<CapGrant, CapError> {
        let cap = CapToken::decode(token)?;
        if cap.version != CAP_VERSION {
            return Err(CapError::Version(cap.version));
        }
        if now > cap.expires_at {
            return Err(CapError::Expired {
                expires_at: cap.expires_at,
                now,
            });
        }
        if cap.depth() > self.max_depth {
            return Err(CapError::TooDeep {
                depth: cap.depth(),
                max: self.max_depth,
            });
        }
        self.check_anchor(&cap)?;
        if let Some(i) = cap.proofs.iter().position(|p| !p.is_verifiable()) {
            return Err(CapError::UnverifiableChain(i));
        }
        check_signatures(&cap)?;
        let scopes = check_narrowing(&cap)?;
        Ok(CapGrant {
            scopes,
            expires_at: cap.expires_at,
            subject: hex::encode(cap.issuer),
            audience: cap.audience,
        })
    }

    fn check_anchor(&self, cap: &CapToken) -> Result<(), CapError> {
        let root = cap.root_issuer();
        if self.anchors.iter().any(|a| a.as_bytes() == &root) {
            Ok(())
        } else {
            Err(CapError::UntrustedRoot(hex::encode(root)))
        }
    }
}

fn link_name(i: usize) -> String {
    format!("proof link {i}")
}

/// Verifies the leaf's signature and every proof link's, each over its rebuilt signed bytes.
/// The leaf's comes first: it covers the whole chain, so a tampered token costs one check.
fn check_signatures(cap: &CapToken) -> Result<(), CapError> {
    verify(
        &cap.issuer,
        &cap.signable_bytes(),
        &cap.signature,
        "the token",
    )?;
    for (i, link) in cap.proofs.iter().enumerate() {
        let (Some(expires_at), Some(nonce)) = (link.expires_at, &link.nonce) else {
            return Err(CapError::UnverifiableChain(i));
        };
        let signed = signable(
            CAP_VERSION,
            &link.issuer,
            link.audience.as_ref(),
            &link.scopes,
            expires_at,
            nonce,
            &cap.proofs[..i],
        );
        verify(&link.issuer, &signed, &link.signature, &link_name(i))?;
    }
    Ok(())
}

fn verify(
    issuer: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
    what: &str,
) -> Result<(), CapError> {
    let key = VerifyingKey::from_bytes(issuer)
        .map_err(|_| CapError::BadKey(format!("issuer of {what}")))?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| CapError::BadSignature(what.to_owned()))
}

/// Checks that each link only narrows its parent (scopes and expiry) and returns the leaf's
/// scopes. The root's scopes are read leniently (unknown actions dropped, WIRE §10.3); a
/// delegated scope that does not parse refuses the token, so nothing slips past the subset check.
fn check_narrowing(cap: &CapToken) -> Result<Scopes, CapError> {
    let leaf = (&cap.scopes, cap.expires_at, "the token".to_owned());
    let links = cap
        .proofs
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.scopes, p.expires_at.unwrap_or(0), link_name(i)))
        .chain(std::iter::once(leaf));
    let mut parent: Option<(Scopes, u64)> = None;
    for (texts, expires_at, name) in links {
        let scopes = match &parent {
            None => Scopes::parse_lenient(texts),
            Some((parent_scopes, parent_expiry)) => {
                let scopes = Scopes::parse_all(texts).map_err(|source| CapError::InvalidScope {
                    link: name.clone(),
                    source,
                })?;
                if !parent_scopes.contains_all(&scopes) {
                    return Err(CapError::ScopeWidened(name));
                }
                if expires_at > *parent_expiry {
                    return Err(CapError::ExpiryWidened(name));
                }
                scopes
            }
        };
        parent = Some((scopes, expires_at));
    }
    Ok(parent.map(|(scopes, _)| scopes).unwrap_or_default())
}

/// The signed bytes of a token with these fields (WIRE §10.3): a 7-entry map.
fn signable(
    version: u64,
    issuer: &[u8; 32],
    audience: Option<&[u8; 32]>,
    scopes: &[String],
    expires_at: u64,
    nonce: &str,
    proofs: &[ProofLink],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    mp::map_len(&mut out, 7);
    mp::str(&mut out, "version");
    mp::uint(&mut out, version);
    mp::str(&mut out, "issuer");
    mp::key(&mut out, issuer);
    mp::str(&mut out, "audience");
    match audience {
        Some(a) => mp::key(&mut out, a),
        None => mp::nil(&mut out),
    }
    mp::str(&mut out, "scopes");
    mp::strs(&mut out, scopes);
    mp::str(&mut out, "expires_at");
    mp::uint(&mut out, expires_at);
    mp::str(&mut out, "nonce");
    mp::str(&mut out, nonce);
    mp::str(&mut out, "proofs");
    write_proofs(&mut out, proofs);
    out
}

fn write_proofs(out: &mut Vec<u8>, proofs: &[ProofLink]) {
    mp::array_len(out, proofs.len());
    for link in proofs {
        write_proof(out, link);
    }
}

/// A proof link: upstream's three keys, then ours when present.
fn write_proof(out: &mut Vec<u8>, link: &ProofLink) {
    let entries = 3
        + usize::from(link.expires_at.is_some())
        + usize::from(link.nonce.is_some())
        + usize::from(link.audience.is_some());
    mp::map_len(out, entries);
    mp::str(out, "issuer");
    mp::key(out, &link.issuer);
    mp::str(out, "scopes");
    mp::strs(out, &link.scopes);
    mp::str(out, "signature");
    mp::bin(out, &link.signature);
    if let Some(expires_at) = link.expires_at {
        mp::str(out, "expires_at");
        mp::uint(out, expires_at);
    }
    if let Some(nonce) = &link.nonce {
        mp::str(out, "nonce");
        mp::str(out, nonce);
    }
    if let Some(audience) = &link.audience {
        mp::str(out, "audience");
        mp::key(out, audience);
    }
}

/// Stores a field once; a repeated key is malformed.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &'static str) -> Result<(), mp::Error> {
    if slot.replace(value).is_some() {
        return Err(mp::Error(key));
    }
    Ok(())
}

fn read_token(r: &mut mp::Reader<'_>) -> Result<CapToken, mp::Error> {
    let entries = r.map_len()?;
    let (mut version, mut issuer, mut audience, mut scopes) = (None, None, None, None);
    let (mut expires_at, mut nonce, mut proofs, mut signature) = (None, None, None, None);
    for _ in 0..entries {
        match r.str()? {
            "version" => set_once(&mut version, r.uint()?, "duplicate version")?,
            "issuer" => set_once(&mut issuer, r.key()?, "duplicate issuer")?,
            "audience" => set_once(&mut audience, r.key()?, "duplicate audience")?,
            "scopes" => set_once(&mut scopes, r.strs()?, "duplicate scopes")?,
            "expires_at" => set_once(&mut expires_at, r.uint()?, "duplicate expires_at")?,
            "nonce" => set_once(&mut nonce, r.str()?.to_owned(), "duplicate nonce")?,
            "proofs" => set_once(&mut proofs, read_proofs(r)?, "duplicate proofs")?,
            "signature" => set_once(&mut signature, r.signature()?, "duplicate signature")?,
            _ => return Err(mp::Error("unknown key in token")),
        }
    }
    Ok(CapToken {
        version: version.ok_or(mp::Error("missing version"))?,
        issuer: issuer.ok_or(mp::Error("missing issuer"))?,
        audience,
        scopes: scopes.ok_or(mp::Error("missing scopes"))?,
        expires_at: expires_at.ok_or(mp::Error("missing expires_at"))?,
        nonce: nonce.ok_or(mp::Error("missing nonce"))?,
        proofs: proofs.unwrap_or_default(),
        signature: signature.ok_or(mp::Error("missing signature"))?,
    })
}

fn read_proofs(r: &mut mp::Reader<'_>) -> Result<Vec<ProofLink>, mp::Error> {
    let count = r.array_len()?;
    let mut proofs = Vec::new();
    for _ in 0..count {
        proofs.push(read_proof(r)?);
    }
    Ok(proofs)
}

fn read_proof(r: &mut mp::Reader<'_>) -> Result<ProofLink, mp::Error> {
    let entries = r.map_len()?;
    let (mut issuer, mut scopes, mut signature) = (None, None, None);
    let (mut expires_at, mut nonce, mut audience) = (None, None, None);
    for _ in 0..entries {
        match r.str()? {
            "issuer" => set_once(&mut issuer, r.key()?, "duplicate proof issuer")?,
            "scopes" => set_once(&mut scopes, r.strs()?, "duplicate proof scopes")?,
            "signature" => set_once(&mut signature, r.signature()?, "duplicate proof signature")?,
            "expires_at" => set_once(&mut expires_at, r.uint()?, "duplicate proof expires_at")?,
            "nonce" => set_once(&mut nonce, r.str()?.to_owned(), "duplicate proof nonce")?,
            "audience" => set_once(&mut audience, r.key()?, "duplicate proof audience")?,
            _ => return Err(mp::Error("unknown key in proof link")),
        }
    }
    Ok(ProofLink {
        issuer: issuer.ok_or(mp::Error("proof link without issuer"))?,
        scopes: scopes.ok_or(mp::Error("proof link without scopes"))?,
        signature: signature.ok_or(mp::Error("proof link without signature"))?,
        expires_at,
        nonce,
        audience,
    })
}

/// The little MessagePack the token formats need, written and read by hand so that decoding is
/// strict, bounded by the input and cannot panic. Writing always uses the shortest form.
pub(crate) mod mp {
    /// Why bytes are not the expected MessagePack.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Error(pub(crate) &'static str);

    pub(crate) fn map_len(out: &mut Vec<u8>, len: usize) {
        container_len(out, len, 0x80, 0xde);
    }

    pub(crate) fn array_len(out: &mut Vec<u8>, len: usize) {
        container_len(out, len, 0x90, 0xdc);
    }

    fn container_len(out: &mut Vec<u8>, len: usize, fix: u8, marker16: u8) {
        if len < 16 {
            out.push(fix | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            out.push(marker16);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(marker16 + 1);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub(crate) fn nil(out: &mut Vec<u8>) {
        out.push(0xc0);
    }

    pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
        if v < 0x80 {
            out.push(v as u8);
        } else if let Ok(v) = u8::try_from(v) {
            out.extend_from_slice(&[0xcc, v]);
        } else if let Ok(v) = u16::try_from(v) {
            out.push(0xcd);
            out.extend_from_slice(&v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            out.push(0xce);
            out.extend_from_slice(&v.to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub(crate) fn str(out: &mut Vec<u8>, s: &str) {
        let len = s.len();
        if len < 32 {
            out.push(0xa0 | len as u8);
        } else {
            sized(out, len, 0xd9);
        }
        out.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn bin(out: &mut Vec<u8>, b: &[u8]) {
        sized(out, b.len(), 0xc4);
        out.extend_from_slice(b);
    }

    /// A length after a marker of the 8/16/32-bit family starting at `marker8`.
    fn sized(out: &mut Vec<u8>, len: usize, marker8: u8) {
        if let Ok(len) = u8::try_from(len) {
            out.extend_from_slice(&[marker8, len]);
        } else if let Ok(len) = u16::try_from(len) {
            out.push(marker8 + 1);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(marker8 + 2);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub(crate) fn strs(out: &mut Vec<u8>, items: &[String]) {
        array_len(out, items.len());
        for s in items {
            str(out, s);
        }
    }

    /// A 32-byte key as upstream writes it: an array of 32 uints, not bin.
    pub(crate) fn key(out: &mut Vec<u8>, key: &[u8; 32]) {
        array_len(out, key.len());
        for &b in key {
            uint(out, u64::from(b));
        }
    }

    /// Reads MessagePack from a slice; every length is checked against what is left.
    pub(crate) struct Reader<'a> {
        buf: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub(crate) fn new(buf: &'a [u8]) -> Self {
            Self { buf }
        }

        /// Nothing may follow the value.
        pub(crate) fn finish(&self) -> Result<(), Error> {
            if self.buf.is_empty() {
                Ok(())
            } else {
                Err(Error("trailing bytes"))
            }
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
            if n > self.buf.len() {
                return Err(Error("truncated"));
            }
            let (head, tail) = self.buf.split_at(n);
            self.buf = tail;
            Ok(head)
        }

        fn byte(&mut self) -> Result<u8, Error> {
            Ok(self.take(1)?[0])
        }

        fn be(&mut self, n: usize) -> Result<u64, Error> {
            Ok(self
                .take(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        }

        fn len_of(&mut self, width: usize) -> Result<usize, Error> {
            usize::try_from(self.be(width)?).map_err(|_| Error("length too large"))
        }

        pub(crate) fn map_len(&mut self) -> Result<usize, Error> {
            match self.byte()? {
                m @ 0x80..=0x8f => Ok(usize::from(m & 0x0f)),
                0xde => self.len_of(2),
                0xdf => self.len_of(4),
                _ => Err(Error("expected a map")),
            }
        }

        pub(crate) fn array_len(&mut self) -> Result<usize, Error> {
            match self.byte()? {
                m @ 0x90..=0x9f => Ok(usize::from(m & 0x0f)),
                0xdc => self.len_of(2),
                0xdd => self.len_of(4),
                _ => Err(Error("expected an array")),
            }
        }

        pub(crate) fn uint(&mut self) -> Result<u64, Error> {
            match self.byte()? {
                m @ 0x00..=0x7f => Ok(u64::from(m)),
                0xcc => self.be(1),
                0xcd => self.be(2),
                0xce => self.be(4),
                0xcf => self.be(8),
                _ => Err(Error("expected an unsigned integer")),
            }
        }

        pub(crate) fn str(&mut self) -> Result<&'a str, Error> {
            let len = match self.byte()? {
                m @ 0xa0..=0xbf => usize::from(m & 0x1f),
                0xd9 => self.len_of(1)?,
                0xda => self.len_of(2)?,
                0xdb => self.len_of(4)?,
                _ => return Err(Error("expected a string")),
            };
            std::str::from_utf8(self.take(len)?).map_err(|_| Error("string is not UTF-8"))
        }

        pub(crate) fn bin(&mut self) -> Result<&'a [u8], Error> {
            let len = match self.byte()? {
                0xc4 => self.len_of(1)?,
                0xc5 => self.len_of(2)?,
                0xc6 => self.len_of(4)?,
                _ => return Err(Error("expected binary data")),
            };
            self.take(len)
        }

        pub(crate) fn strs(&mut self) -> Result<Vec<String>, Error> {
            let count = self.array_len()?;
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(self.str()?.to_owned());
            }
            Ok(items)
        }

        /// A 64-byte Ed25519 signature as bin.
        pub(crate) fn signature(&mut self) -> Result<[u8; 64], Error> {
            self.bin()?
                .try_into()
                .map_err(|_| Error("signature is not 64 bytes"))
        }

        /// A 32-byte key written as an array of 32 uints.
        pub(crate) fn key(&mut self) -> Result<[u8; 32], Error> {
            if self.array_len()? != 32 {
                return Err(Error("key is not 32 bytes"));
            }
            let mut key = [0u8; 32];
            for b in &mut key {
                *b = u8::try_from(self.uint()?).map_err(|_| Error("key byte above 255"))?;
            }
            Ok(key)
        }
    }
}
