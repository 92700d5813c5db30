//! Ed25519 key files: the signing-key file `clasp key generate` writes, and trust anchors read
//! from files or flags (FEATURES AU-11).
//!
//! Upstream guessed a file's meaning from its length alone, so a public key saved as hex (what
//! its own docs tell users to do) was read as a signing key and the wrong anchor was trusted.
//! Here a file says what it is: our signing-key files start with [`SIGNING_KEY_HEADER`], a
//! `*.pub` file or a `did:key:` holds a public key, 32 raw bytes are a public key. The one
//! ambiguous case left, a bare 64-hex file not named `.pub`, keeps upstream's reading (a
//! signing key) and says so in the log.

use std::io::Write as _;
use std::path::Path;

/// The key types, re-exported so users of these files need no direct dependency on the crate.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// First line of a signing-key file; how a loader knows the file holds a secret.
pub const SIGNING_KEY_HEADER: &str = "# CLASP Ed25519 signing key";

/// Multicodec prefix of an Ed25519 public key inside a `did:key`.
const DID_KEY_ED25519: [u8; 2] = [0xed, 0x01];

/// Largest key file read; anything bigger is not a key file.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `generate` would replace an existing key.
    #[error("{0} already exists (use --force to overwrite it)")]
    Exists(String),
    /// The content is not a key this module understands.
    #[error("{0}")]
    Format(String),
    /// The system random generator failed.
    #[error("no system randomness for a new key")]
    Random,
}

/// Where a trust anchor came from; logged so an operator sees which reading was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorKind {
    /// A `clasp key generate` file: the anchor is its public key.
    SigningKeyFile,
    /// A bare 64-hex file not named `.pub`: upstream's signing-key reading.
    LegacyHexSigningKey,
    /// 64 hex characters of a public key (a `.pub` file or a flag value).
    PublicKeyHex,
    /// A `did:key:z…` Ed25519 key.
    DidKey,
    /// A file of exactly 32 raw bytes.
    RawPublicKey,
}

impl AnchorKind {
    /// Words for logs and CLI output.
    pub fn describe(self) -> &'static str {
        match self {
            AnchorKind::SigningKeyFile => "signing-key file (its public key)",
            AnchorKind::LegacyHexSigningKey => "bare hex signing key (its public key)",
            AnchorKind::PublicKeyHex => "hex public key",
            AnchorKind::DidKey => "did:key public key",
            AnchorKind::RawPublicKey => "raw 32-byte public key",
        }
    }
}

/// A new signing key from the operating system's random generator.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    use ring::rand::SecureRandom as _;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| KeyError::Random)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Lower-case hex of a public key, the form `clasp key show` prints and `.pub` files hold.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// The text of a signing-key file: the header, comment lines (`# name: value`), the public key
/// as a comment, and the 32-byte seed in hex.
pub fn signing_key_file_text(key: &SigningKey, comments: &[(&str, &str)]) -> String {
    let mut text = format!("{SIGNING_KEY_HEADER} (secret: keep this file private)\n");
    for (name, value) in comments {
        text.push_str(&format!("# {name}: {value}\n"));
    }
    text.push_str(&format!(
        "# public: {}\n",
        public_key_hex(&key.verifying_key())
    ));
    text.push_str(&hex::encode(key.to_bytes()));
    text.push('\n');
    text
}

/// Writes a signing-key file readable by its owner only (0600); refuses to replace an existing
/// file unless `force`, so a key in use is never lost by accident.
pub fn write_signing_key(
    path: &Path,
    key: &SigningKey,
    force: bool,
    comments: &[(&str, &str)],
) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.display().to_string())
        } else {
            io(e)
        }
    })?;
    // An overwritten file keeps its old mode; make it private before the secret goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(signing_key_file_text(key, comments).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_KEY_FILE {
        return Err(KeyError::Format(format!(
            "{}: {len} bytes is too large for a key file",
            path.display()
        )));
    }
    std::fs::read(path).map_err(io)
}

/// The non-comment, non-blank content of a key file, trimmed.
fn key_body(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("")
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Parses 64 hex characters as an Ed25519 public key (flags such as `--audience` and anchors).
pub fn parse_public_key_hex(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = hex32(text.trim())
        .ok_or_else(|| KeyError::Format("a public key is 64 hexadecimal characters".to_owned()))?;
    public_key(&bytes)
}

fn public_key(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(bytes)
        .map_err(|_| KeyError::Format("not a valid Ed25519 public key".to_owned()))
}

/// Parses `did:key:z…` holding an Ed25519 public key (multibase base58btc, multicodec 0xed01).
pub fn parse_did_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bad = || KeyError::Format(format!("{text:?} is not an Ed25519 did:key"));
    let encoded = text.trim().strip_prefix("did:key:z").ok_or_else(bad)?;
    let bytes = bs58::decode(encoded).into_vec().map_err(|_| bad())?;
    let key: [u8; 32] = bytes
        .strip_prefix(&DID_KEY_ED25519[..])
        .and_then(|k| k.try_into().ok())
        .ok_or_else(bad)?;
    public_key(&key)
}

/// Loads a signing key: a `clasp key generate` file, or (upstream's format) a file holding only
/// the seed as 64 hex characters. The secret is never logged.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let bytes = read_key_file(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| KeyError::Format(format!("{}: not a signing-key file", path.display())))?;
    let seed = hex32(&key_body(text)).ok_or_else(|| {
        KeyError::Format(format!(
            "{}: not a signing-key file (expected `clasp key generate` output)",
            path.display()
        ))
    })?;
    warn_if_readable_by_others(path);
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "signing key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Loads a trust anchor from a file, deciding by content and name (see the module doc).
pub fn load_trust_anchor(path: &Path) -> Result<VerifyingKey, KeyError> {
    load_trust_anchor_with_kind(path).map(|(key, _)| key)
}

/// [`load_trust_anchor`], also saying which reading was used.
pub fn load_trust_anchor_with_kind(path: &Path) -> Result<(VerifyingKey, AnchorKind), KeyError> {
    let bytes = read_key_file(path)?;
    let (key, kind) = anchor_from_bytes(path, &bytes)?;
    tracing::info!(
        path = %path.display(),
        kind = kind.describe(),
        public_key = %public_key_hex(&key),
        "trust anchor loaded"
    );
    if kind == AnchorKind::LegacyHexSigningKey {
        tracing::warn!(
            path = %path.display(),
            "bare 64-hex file read as a signing key (upstream format); name public key files *.pub"
        );
    }
    Ok((key, kind))
}

fn anchor_from_bytes(path: &Path, bytes: &[u8]) -> Result<(VerifyingKey, AnchorKind), KeyError> {
    let unknown = || {
        KeyError::Format(format!(
            "{}: not a key file (expected a `clasp key generate` file, a *.pub file with 64 hex \
             characters or a did:key, or 32 raw bytes)",
            path.display()
        ))
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| unknown())?;
        return Ok((public_key(&raw)?, AnchorKind::RawPublicKey));
    };
    let body = key_body(text);
    if text.starts_with(SIGNING_KEY_HEADER) {
        let seed = hex32(&body).ok_or_else(unknown)?;
        let key = SigningKey::from_bytes(&seed).verifying_key();
        return Ok((key, AnchorKind::SigningKeyFile));
    }
    if body.starts_with("did:key:") {
        return Ok((parse_did_key(&body)?, AnchorKind::DidKey));
    }
    if let Some(hex) = hex32(&body) {
        let is_pub = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pub"));
        return if is_pub {
            Ok((public_key(&hex)?, AnchorKind::PublicKeyHex))
        } else {
            let key = SigningKey::from_bytes(&hex).verifying_key();
            Ok((key, AnchorKind::LegacyHexSigningKey))
        };
    }
    let raw: [u8; 32] = bytes.try_into().map_err(|_| unknown())?;
    Ok((public_key(&raw)?, AnchorKind::RawPublicKey))
}

/// A `--trust-anchor` value: 64 hex characters or a `did:key` given directly, else a file path.
pub fn parse_trust_anchor_arg(arg: &str) -> Result<(VerifyingKey, AnchorKind), KeyError> {
    let path = Path::new(arg);
    if !path.exists() {
        if arg.starts_with("did:key:") {
            return Ok((parse_did_key(arg)?, AnchorKind::DidKey));
        }
        if hex32(arg.trim()).is_some() {
            return Ok((parse_public_key_hex(arg)?, AnchorKind::PublicKeyHex));
        }
    }
    load_trust_anchor_with_kind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("clasp-keys-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn every_anchor_reading_gives_the_same_key() {
        let dir = temp("anchors");
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        let key_file = dir.join("root.key");
        write_signing_key(&key_file, &key, true, &[]).expect("write");
        assert!(matches!(
            write_signing_key(&key_file, &key, false, &[]),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(
            load_signing_key(&key_file).expect("load").to_bytes(),
            [7; 32]
        );
        let pub_file = dir.join("root.pub");
        std::fs::write(&pub_file, format!("{}\n", public_key_hex(&public))).expect("write");
        let raw_file = dir.join("root.raw");
        std::fs::write(&raw_file, public.as_bytes()).expect("write");
        let legacy = dir.join("legacy.key");
        std::fs::write(&legacy, hex::encode([7u8; 32])).expect("write");
        let mut did = vec![0xed, 0x01];
        did.extend_from_slice(public.as_bytes());
        let did = format!("did:key:z{}", bs58::encode(did).into_string());
        for (path, kind) in [
            (&key_file, AnchorKind::SigningKeyFile),
            (&pub_file, AnchorKind::PublicKeyHex),
            (&raw_file, AnchorKind::RawPublicKey),
            (&legacy, AnchorKind::LegacyHexSigningKey),
        ] {
            assert_eq!(
                load_trust_anchor_with_kind(path).expect("anchor"),
                (public, kind)
            );
        }
        assert_eq!(parse_trust_anchor_arg(&did).expect("did").0, public);
        assert_eq!(
            parse_trust_anchor_arg(&public_key_hex(&public))
                .expect("hex")
                .0,
            public
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
