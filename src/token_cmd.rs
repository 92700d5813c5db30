//! `clasp key generate|show` and `clasp token cap|entity ...`: Ed25519 keys, capability tokens
//! (`cap_`) and entity tokens (`ent_`) made and checked offline, without a relay (CLI-7, CLI-8).
//! Tokens go to stdout alone on a line (so `TOKEN=$(clasp token cap create ...)` works);
//! everything else a person should read goes to stderr. Exit codes: 0 ok, 1 failure (invalid
//! token, refused delegation, unreadable key), 2 usage (bad flag values, bad trust anchors).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};
use clasp_actors::auth::cap::{CapError, CapToken, CapValidator, DEFAULT_MAX_DEPTH};
use clasp_actors::auth::entity_token::{entity_id_for, EntityToken};
use clasp_actors::auth::keys::{self, KeyError, SigningKey, VerifyingKey};
use clasp_actors::auth::Scopes;

use crate::client_cmd::Failure;

/// `clasp key ...`: the Ed25519 keys that sign capability and entity tokens.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a signing key file (mode 0600) and print its public key (64 hex).
    Generate {
        /// Where to write the key.
        #[arg(short, long)]
        output: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key and entity id of a key file (signing key, .pub, did:key or raw).
    Show {
        /// The key file.
        file: PathBuf,
    },
}

/// `clasp token ...`: tokens made and checked offline.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Capability tokens (cap_): signed scopes that holders can narrow and hand on.
    #[command(subcommand)]
    Cap(CapCommand),
    /// Entity tokens (ent_): a registered entity proves it holds its key.
    #[command(subcommand)]
    Entity(EntityCommand),
}

/// `clasp token cap ...`.
#[derive(Debug, Subcommand)]
pub enum CapCommand {
    /// Mint a root token signed by KEY (its public key is the relay's --trust-anchor).
    Create {
        /// Signing key file.
        #[arg(short, long)]
        key: PathBuf,
        /// Scopes, comma-separated action:pattern (e.g. write:/lights/**,read:/**).
        #[arg(short, long, value_parser = parse_scopes)]
        scopes: Scopes,
        /// Lifetime: 30d, 12h, 15m, 90s, or bare seconds.
        #[arg(short, long, default_value = "30d", value_parser = parse_duration)]
        expires: u64,
        /// Public key (64 hex) of the intended holder; informational.
        #[arg(long, value_parser = parse_audience)]
        audience: Option<[u8; 32]>,
    },
    /// Narrow PARENT and hand it to the holder of KEY; wider scopes are refused.
    Delegate {
        /// The parent token (or a file holding it).
        parent: String,
        /// The child's signing key file.
        #[arg(short, long)]
        key: PathBuf,
        /// Scopes, each within the parent's.
        #[arg(short, long, value_parser = parse_scopes)]
        scopes: Scopes,
        /// Lifetime (clamped to the parent's expiry).
        #[arg(short, long, default_value = "7d", value_parser = parse_duration)]
        expires: u64,
        /// Public key (64 hex) of the intended holder; informational.
        #[arg(long, value_parser = parse_audience)]
        audience: Option<[u8; 32]>,
    },
    // Token positionals use the id `token_text`: `token` is the global `--token` flag's id.
    /// Decode a token and print its fields and chain (checks no signature).
    Inspect {
        /// The token (or a file holding it).
        #[arg(id = "token_text", value_name = "TOKEN")]
        token: String,
    },
    /// Check a token as a relay would: exit 0 and print its scopes if valid, 1 if not.
    Verify {
        /// The token (or a file holding it).
        #[arg(id = "token_text", value_name = "TOKEN")]
        token: String,
        /// Trusted root key: a key file, a .pub file, 64 hex or a did:key (repeatable).
        #[arg(long = "trust-anchor", required = true)]
        trust_anchors: Vec<String>,
        /// Most delegation links accepted.
        #[arg(long, default_value_t = DEFAULT_MAX_DEPTH)]
        max_depth: usize,
    },
}

/// Kinds of entity the registry knows (AU-12).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EntityType {
    /// A device (a controller, a light desk, a sensor).
    Device,
    /// A person.
    User,
    /// A program.
    Service,
    /// Another router.
    Router,
}

impl EntityType {
    fn as_str(self) -> &'static str {
        match self {
            EntityType::Device => "device",
            EntityType::User => "user",
            EntityType::Service => "service",
            EntityType::Router => "router",
        }
    }
}

/// `clasp token entity ...`.
#[derive(Debug, Subcommand)]
pub enum EntityCommand {
    /// Create an entity key; print its entity id and public key for registration.
    Keygen {
        /// Where to write the signing key (without it the secret is printed).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Display name, recorded in the key file.
        #[arg(short, long)]
        name: Option<String>,
        /// Entity type, recorded in the key file.
        #[arg(short = 't', long = "type", value_enum, default_value = "device")]
        entity_type: EntityType,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Mint an entity token signed by KEY for the entity the key belongs to.
    #[command(alias = "sign")]
    Mint {
        /// The entity's signing key file.
        #[arg(short, long)]
        key: PathBuf,
        /// Entity id; must be the key's own (clasp:...).
        #[arg(long)]
        id: Option<String>,
    },
    /// Decode a token; with --key also check its signature.
    Inspect {
        /// The token (or a file holding it).
        #[arg(id = "token_text", value_name = "TOKEN")]
        token: String,
        /// The entity's key (file, .pub, 64 hex or did:key) to check the signature.
        #[arg(long)]
        key: Option<String>,
    },
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Warnings (a world-readable key, a legacy anchor file) reach stderr; RUST_LOG shows more.
fn init_logging() {
    // A second initialisation can only fail harmlessly.
    let _ = crate::cli::init_logging("warn", false, crate::cli::LogFormat::Text);
}

/// Runs one `clasp key` subcommand.
pub fn run_key(cmd: KeyCommand) -> Result<(), Failure> {
    init_logging();
    match cmd {
        KeyCommand::Generate { output, force } => {
            let key = keys::generate_signing_key().map_err(key_failure)?;
            keys::write_signing_key(&output, &key, force, &[]).map_err(key_failure)?;
            eprintln!(
                "signing key written to {} (keep it secret)",
                output.display()
            );
            println!("{}", keys::public_key_hex(&key.verifying_key()));
            Ok(())
        }
        KeyCommand::Show { file } => {
            let (public, kind) = keys::load_trust_anchor_with_kind(&file).map_err(key_failure)?;
            eprintln!("{}: {}", file.display(), kind.describe());
            println!("public_key: {}", keys::public_key_hex(&public));
            println!("entity_id:  {}", entity_id_for(&public));
            Ok(())
        }
    }
}

/// Runs one `clasp token` subcommand.
pub fn run_token(cmd: TokenCommand) -> Result<(), Failure> {
    init_logging();
    match cmd {
        TokenCommand::Cap(cmd) => run_cap(cmd),
        TokenCommand::Entity(cmd) => run_entity(cmd),
    }
}

fn run_cap(cmd: CapCommand) -> Result<(), Failure> {
    match cmd {
        CapCommand::Create {
            key,
            scopes,
            expires,
            audience,
        } => {
            let key = load_key(&key)?;
            let token = CapToken::create(&key, &scopes, expires_at(expires)?, audience);
            println!("{}", token.encode());
            Ok(())
        }
        CapCommand::Delegate {
            parent,
            key,
            scopes,
            expires,
            audience,
        } => delegate(&parent, &key, &scopes, expires, audience),
        CapCommand::Inspect { token } => {
            let token = decode_cap(&token)?;
            print!("{}", describe_cap(&token, now()));
            Ok(())
        }
        CapCommand::Verify {
            token,
            trust_anchors,
            max_depth,
        } => verify_cap(&token, &trust_anchors, max_depth),
    }
}

fn delegate(
    parent: &str,
    key: &Path,
    scopes: &Scopes,
    lifetime: u64,
    audience: Option<[u8; 32]>,
) -> Result<(), Failure> {
    let parent = decode_cap(parent)?;
    let now = now();
    if now > parent.expires_at {
        return Err(failure(format!(
            "the parent token expired at {}",
            utc(parent.expires_at)
        )));
    }
    let key = load_key(key)?;
    let wanted = expires_at(lifetime)?;
    let child =
        CapToken::delegate(&parent, &key, scopes, wanted, audience).map_err(|e| match e {
            CapError::ScopeWidened(_) => failure(format!(
                "refusing to delegate {scopes}: not within the parent's scopes ({})",
                parent.scopes.join(",")
            )),
            other => failure(other.to_string()),
        })?;
    if child.expires_at < wanted {
        eprintln!("expiry clamped to the parent's: {}", utc(child.expires_at));
    }
    println!("{}", child.encode());
    Ok(())
}

fn verify_cap(token: &str, anchors: &[String], max_depth: usize) -> Result<(), Failure> {
    let anchors = anchors
        .iter()
        .map(|a| load_anchor(a))
        .collect::<Result<Vec<_>, _>>()?;
    let token = token_text(token)?;
    let grant = CapValidator::new(anchors)
        .with_max_depth(max_depth)
        .validate(&token, now())
        .map_err(|e| failure(format!("invalid capability token: {e}")))?;
    println!("valid");
    println!("subject:    {}", grant.subject);
    println!("scopes:     {}", grant.scopes);
    println!(
        "expires_at: {} ({})",
        grant.expires_at,
        utc(grant.expires_at)
    );
    Ok(())
}

fn load_anchor(arg: &str) -> Result<VerifyingKey, Failure> {
    let (key, kind) = keys::parse_trust_anchor_arg(arg)
        .map_err(|e| usage(format!("--trust-anchor {arg}: {e}")))?;
    eprintln!(
        "trust anchor {} ({})",
        keys::public_key_hex(&key),
        kind.describe()
    );
    Ok(key)
}

fn run_entity(cmd: EntityCommand) -> Result<(), Failure> {
    match cmd {
        EntityCommand::Keygen {
            output,
            name,
            entity_type,
            force,
        } => entity_keygen(output.as_deref(), name.as_deref(), entity_type, force),
        EntityCommand::Mint { key, id } => {
            let key = load_key(&key)?;
            let own = entity_id_for(&key.verifying_key());
            if let Some(id) = id.filter(|id| *id != own) {
                return Err(failure(format!(
                    "the key belongs to entity {own}, not {id}"
                )));
            }
            println!("{}", EntityToken::mint(&key, &own, now()).encode());
            Ok(())
        }
        EntityCommand::Inspect { token, key } => entity_inspect(&token, key.as_deref()),
    }
}

fn entity_keygen(
    output: Option<&Path>,
    name: Option<&str>,
    entity_type: EntityType,
    force: bool,
) -> Result<(), Failure> {
    let key = keys::generate_signing_key().map_err(key_failure)?;
    let public = key.verifying_key();
    let id = entity_id_for(&public);
    match output {
        Some(path) => {
            let mut comments = vec![("entity", id.as_str()), ("type", entity_type.as_str())];
            if let Some(name) = name {
                comments.push(("name", name));
            }
            keys::write_signing_key(path, &key, force, &comments).map_err(key_failure)?;
            eprintln!("signing key written to {} (keep it secret)", path.display());
        }
        None => {
            eprintln!("no --output: the secret key is printed below; store it safely");
            println!("secret_key: {}", hex::encode(key.to_bytes()));
        }
    }
    println!("entity_id:  {id}");
    println!("public_key: {}", keys::public_key_hex(&public));
    let body = serde_json::json!({
        "entity_type": entity_type.as_str(),
        "name": name.unwrap_or(&id),
        "public_key": keys::public_key_hex(&public),
    });
    eprintln!("register it with: POST /api/entities {body}");
    Ok(())
}

/// Prints the token's fields; with a key, checks the signature first so that a failure prints
/// nothing on stdout.
fn entity_inspect(token: &str, key: Option<&str>) -> Result<(), Failure> {
    let parsed = EntityToken::parse(&token_text(token)?).map_err(|e| failure(e.to_string()))?;
    let verified = match key {
        Some(key) => {
            let (public, _) = keys::parse_trust_anchor_arg(key)
                .map_err(|e| usage(format!("--key {key}: {e}")))?;
            parsed.verify(&public).map_err(|e| failure(e.to_string()))?;
            Some(public)
        }
        None => None,
    };
    println!("entity_id: {}", parsed.entity_id);
    println!(
        "timestamp: {} ({}, {})",
        parsed.timestamp,
        utc(parsed.timestamp),
        age(parsed.timestamp, now())
    );
    println!("signature: {}", hex::encode(parsed.signature));
    if let Some(public) = verified {
        println!("verified:  signed by {}", keys::public_key_hex(&public));
    }
    Ok(())
}

fn key_failure(e: KeyError) -> Failure {
    failure(e.to_string())
}

fn load_key(path: &Path) -> Result<SigningKey, Failure> {
    keys::load_signing_key(path).map_err(key_failure)
}

/// A token given directly, or the path of a file holding one.
fn token_text(arg: &str) -> Result<String, Failure> {
    let arg = arg.trim();
    if arg.starts_with("cap_") || arg.starts_with("ent_") || !Path::new(arg).is_file() {
        return Ok(arg.to_owned());
    }
    std::fs::read_to_string(arg)
        .map(|t| t.trim().to_owned())
        .map_err(|e| failure(format!("{arg}: {e}")))
}

fn decode_cap(arg: &str) -> Result<CapToken, Failure> {
    CapToken::decode(&token_text(arg)?).map_err(|e| failure(e.to_string()))
}

/// Everything `inspect` shows, one field a line, then the chain root first.
fn describe_cap(token: &CapToken, now: u64) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<11} {value}\n"));
    line("version:", token.version.to_string());
    line("issuer:", hex::encode(token.issuer));
    line(
        "audience:",
        token.audience.map_or_else(|| "(none)".into(), hex::encode),
    );
    line("scopes:", token.scopes.join(","));
    let expired = if now > token.expires_at {
        ", expired"
    } else {
        ""
    };
    line(
        "expires_at:",
        format!("{} ({}{expired})", token.expires_at, utc(token.expires_at)),
    );
    line("nonce:", token.nonce.clone());
    line("depth:", token.depth().to_string());
    out.push_str("chain:\n");
    for (i, link) in token.proofs.iter().enumerate() {
        let expiry = link.expires_at.map_or_else(|| "unknown".into(), utc);
        let note = if link.is_verifiable() {
            ""
        } else {
            "  [upstream link: cannot be verified]"
        };
        out.push_str(&format!(
            "  {i}: issuer {} scopes {} expires {expiry}{note}\n",
            hex::encode(link.issuer),
            link.scopes.join(",")
        ));
    }
    out.push_str(&format!(
        "  leaf: issuer {} scopes {}\n",
        hex::encode(token.issuer),
        token.scopes.join(",")
    ));
    out
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn expires_at(lifetime: u64) -> Result<u64, Failure> {
    now()
        .checked_add(lifetime)
        .ok_or_else(|| usage("lifetime too long"))
}

/// `30d`, `12h`, `15m`, `90s` or bare seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let factor = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(format!("{text:?}: unit must be d, h, m or s")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 30d, 12h, 15m, 90s, 3600)"))
}

fn parse_scopes(text: &str) -> Result<Scopes, String> {
    let scopes = Scopes::parse_list(text).map_err(|e| e.to_string())?;
    if scopes.is_empty() {
        return Err("at least one scope is needed".into());
    }
    Ok(scopes)
}

fn parse_audience(text: &str) -> Result<[u8; 32], String> {
    keys::parse_public_key_hex(text)
        .map(|k| k.to_bytes())
        .map_err(|e| e.to_string())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (H. Hinnant's algorithm, for days ≥ 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn age(timestamp: u64, now: u64) -> String {
    match now.checked_sub(timestamp) {
        Some(secs) => format!("{secs} s ago"),
        None => format!("{} s in the future", timestamp - now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("3600"), Ok(3600));
        for bad in ["", "d", "5w", "-1", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
