//! The auth database (redb): users, issued CPSK tokens (by hash only) and registered entities.
//! It survives restarts, so tokens and entities outlive the process (FEATURES AU-5, AU-12).
//! Records are encoded with postcard.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// username → [`UserRecord`].
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// user id → username, so ids stay unique.
const USER_IDS: TableDefinition<&str, &str> = TableDefinition::new("user_ids");
/// SHA-256 of a token → [`TokenRecord`]. The token itself is never stored.
const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// entity id → [`EntityRecord`].
const ENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entities");
/// nonce of a revoked capability token → its expiry (after which the entry can go).
const REVOKED_CAPS: TableDefinition<&str, u64> = TableDefinition::new("revoked_caps");

/// Why the auth database failed. Every variant is an operator-facing I/O or corruption problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb could not open, read or write.
    #[error("auth database: {0}")]
    Db(String),
    /// A record does not decode (written by an incompatible version, or corrupt).
    #[error("auth database record does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A registered CPSK user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable id (given at registration or generated).
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Scopes issued to this user's tokens.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
}

/// An issued token, stored under the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Who it was issued to (user id, `guest-…`, or `admin`).
    pub subject: String,
    /// Display name.
    pub username: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Unix seconds; `None` never expires (the admin token).
    pub expires_at: Option<u64>,
    /// Unix seconds.
    pub issued_at: u64,
}

/// Lifecycle of a registered entity (FEATURES AU-12: Inactive and Suspended are one state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityStatus {
    /// May connect.
    Active,
    /// Temporarily refused; may be re-activated.
    Inactive,
    /// Refused for good (may still be re-activated by an admin, but sessions are cut).
    Revoked,
}

/// A registered device, user, service or router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// `clasp:` + base58 of the first 16 bytes of the public key.
    pub id: String,
    /// device | user | service | router.
    pub entity_type: String,
    /// Human name.
    pub name: String,
    /// Ed25519 public key, 32 bytes.
    pub public_key: [u8; 32],
    /// Current status.
    pub status: EntityStatus,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Namespaces it owns (`/site-a`), granting admin there when it has no scopes.
    pub namespaces: Vec<String>,
    /// Explicit scopes.
    pub scopes: Vec<String>,
    /// Free-form JSON object, stored as text.
    pub metadata: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// What an insert ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    Ok,
    /// The key (username, user id or entity id) is taken.
    Conflict,
}

/// The database handle; cheap operations, each its own transaction.
pub struct AuthStore {
    db: Database,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(postcard::to_allocvec(value)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(postcard::from_bytes(bytes)?)
}

impl AuthStore {
    /// Opens (or creates) the database at `path` and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(USERS)?;
        tx.open_table(USER_IDS)?;
        tx.open_table(TOKENS)?;
        tx.open_table(ENTITIES)?;
        tx.open_table(REVOKED_CAPS)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Adds a user unless the username or id is taken.
    pub fn insert_user(&self, user: &UserRecord) -> Result<Inserted, StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut users = tx.open_table(USERS)?;
            let mut ids = tx.open_table(USER_IDS)?;
            if users.get(user.username.as_str())?.is_some()
                || ids.get(user.user_id.as_str())?.is_some()
            {
                return Ok(Inserted::Conflict);
            }
            users.insert(user.username.as_str(), encode(user)?.as_slice())?;
            ids.insert(user.user_id.as_str(), user.username.as_str())?;
        }
        tx.commit()?;
        Ok(Inserted::Ok)
    }

    /// The user called `username`.
    pub fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let users = tx.open_table(USERS)?;
        let found = users.get(username)?;
        found.map(|v| decode(v.value())).transpose()
    }

    /// Is this name or id held by a registered user? (Guests may not borrow them.)
    pub fn user_exists(&self, username: &str, user_id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        let users = tx.open_table(USERS)?;
        let ids = tx.open_table(USER_IDS)?;
        Ok(users.get(username)?.is_some() || ids.get(user_id)?.is_some())
    }

    /// Stores a token record under its hash (replacing any record with that hash).
    pub fn insert_token(&self, hash: &[u8; 32], record: &TokenRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(TOKENS)?
            .insert(hash.as_slice(), encode(record)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The record of the token with this hash.
    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let tokens = tx.open_table(TOKENS)?;
        let found = tokens.get(hash.as_slice())?;
        found.map(|v| decode(v.value())).transpose()
    }

    /// Deletes a token; true when it existed.
    pub fn remove_token(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(TOKENS)?.remove(hash.as_slice())?.is_some();
        tx.commit()?;
        Ok(existed)
    }

    /// Deletes every token that expired before `now`; returns how many.
    pub fn purge_expired_tokens(&self, now: u64) -> Result<usize, StoreError> {
        let tx = self.db.begin_write()?;
        let removed = {
            let mut tokens = tx.open_table(TOKENS)?;
            let mut dead = Vec::new();
            for entry in tokens.iter()? {
                let (k, v) = entry?;
                let record: TokenRecord = decode(v.value())?;
                if record.expires_at.is_some_and(|e| e < now) {
                    dead.push(k.value().to_vec());
                }
            }
            for k in &dead {
                tokens.remove(k.as_slice())?;
            }
            let mut caps = tx.open_table(REVOKED_CAPS)?;
            let mut gone = Vec::new();
            for entry in caps.iter()? {
                let (k, v) = entry?;
                if v.value() < now {
                    gone.push(k.value().to_string());
                }
            }
            for k in &gone {
                caps.remove(k.as_str())?;
            }
            dead.len() + gone.len()
        };
        tx.commit()?;
        Ok(removed)
    }

    /// Records a capability token's nonce as revoked until `expires_at`.
    pub fn revoke_nonce(&self, nonce: &str, expires_at: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(REVOKED_CAPS)?.insert(nonce, expires_at)?;
        tx.commit()?;
        Ok(())
    }

    /// The first of `nonces` that was revoked, if any.
    pub fn revoked_nonce<'a>(&self, nonces: &[&'a str]) -> Result<Option<&'a str>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(REVOKED_CAPS)?;
        for n in nonces {
            if table.get(*n)?.is_some() {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// Adds an entity unless its id is taken.
    pub fn insert_entity(&self, entity: &EntityRecord) -> Result<Inserted, StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(ENTITIES)?;
            if table.get(entity.id.as_str())?.is_some() {
                return Ok(Inserted::Conflict);
            }
            table.insert(entity.id.as_str(), encode(entity)?.as_slice())?;
        }
        tx.commit()?;
        Ok(Inserted::Ok)
    }

    /// Replaces an existing entity; false when there is none with that id.
    pub fn update_entity(&self, entity: &EntityRecord) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = {
            let mut table = tx.open_table(ENTITIES)?;
            let existed = table.get(entity.id.as_str())?.is_some();
            if existed {
                table.insert(entity.id.as_str(), encode(entity)?.as_slice())?;
            }
            existed
        };
        tx.commit()?;
        Ok(existed)
    }

    /// The entity with this id.
    pub fn entity(&self, id: &str) -> Result<Option<EntityRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENTITIES)?;
        let found = table.get(id)?;
        found.map(|v| decode(v.value())).transpose()
    }

    /// A page of entities in id order.
    pub fn entities(&self, offset: usize, limit: usize) -> Result<Vec<EntityRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENTITIES)?;
        let mut out = Vec::new();
        for entry in table.iter()?.skip(offset).take(limit) {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Deletes an entity; true when it existed.
    pub fn remove_entity(&self, id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(ENTITIES)?.remove(id)?.is_some();
        tx.commit()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("clasp-auth-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    fn user(name: &str, id: &str) -> UserRecord {
        UserRecord {
            user_id: id.into(),
            username: name.into(),
            password_hash: "$argon2id$...".into(),
            scopes: vec!["read:/**".into()],
            created_at: 1,
        }
    }

    #[test]
    fn users_tokens_and_entities_survive_reopening() {
        let path = temp_db("reopen");
        let hash = [7u8; 32];
        let entity = EntityRecord {
            id: "clasp:abc".into(),
            entity_type: "device".into(),
            name: "fader".into(),
            public_key: [1; 32],
            status: EntityStatus::Active,
            tags: vec![],
            namespaces: vec!["/stage".into()],
            scopes: vec![],
            metadata: "{}".into(),
            created_at: 2,
        };
        {
            let store = AuthStore::open(&path).expect("open");
            assert_eq!(
                store.insert_user(&user("alice", "u1")).expect("insert"),
                Inserted::Ok
            );
            assert_eq!(
                store.insert_user(&user("alice", "u2")).expect("insert"),
                Inserted::Conflict
            );
            assert_eq!(
                store.insert_user(&user("bob", "u1")).expect("insert"),
                Inserted::Conflict
            );
            let record = TokenRecord {
                subject: "u1".into(),
                username: "alice".into(),
                scopes: vec!["read:/**".into()],
                expires_at: Some(100),
                issued_at: 1,
            };
            store.insert_token(&hash, &record).expect("token");
            assert_eq!(store.insert_entity(&entity).expect("entity"), Inserted::Ok);
        }
        let store = AuthStore::open(&path).expect("reopen");
        assert_eq!(
            store.user("alice").expect("read"),
            Some(user("alice", "u1"))
        );
        assert!(store.user_exists("nobody", "u1").expect("read"));
        assert_eq!(
            store.token(&hash).expect("read").map(|t| t.subject),
            Some("u1".into())
        );
        assert_eq!(
            store.entity("clasp:abc").expect("read"),
            Some(entity.clone())
        );
        assert_eq!(store.entities(0, 10).expect("list").len(), 1);
        assert_eq!(store.purge_expired_tokens(101).expect("purge"), 1);
        store.revoke_nonce("n1", 500).expect("revoke");
        assert_eq!(
            store.revoked_nonce(&["n0", "n1"]).expect("read"),
            Some("n1")
        );
        assert_eq!(store.revoked_nonce(&["n0"]).expect("read"), None);
        assert_eq!(store.token(&hash).expect("read"), None);
        assert!(store.remove_entity("clasp:abc").expect("remove"));
        assert!(!store.remove_entity("clasp:abc").expect("remove"));
        let _ = std::fs::remove_file(&path);
    }
}
