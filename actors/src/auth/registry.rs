//! The entity registry's operations on the `Auth` actor (FEATURES AU-12..AU-14): create, list,
//! read, update, delete and change status. A status other than Active, or deletion, revokes
//! the entity's live sessions at once (they close within a second).

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::actor::{ApiError, Auth};
use super::entity_token::entity_id_for;
use super::grant::unix_now;
use super::keys::parse_public_key_hex;
use super::scope::Scopes;
use super::store::{EntityRecord, EntityStatus, Inserted};
use super::validators::status_name;

/// Entity kinds; either case is accepted, lower case is stored.
const ENTITY_TYPES: [&str; 4] = ["device", "user", "service", "router"];

/// An entity as the REST API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntityView {
    /// `clasp:` + base58 of the key's first 16 bytes.
    pub id: String,
    /// device | user | service | router.
    pub entity_type: String,
    /// Name.
    pub name: String,
    /// 64 hex digits.
    pub public_key: String,
    /// active | inactive | revoked.
    pub status: &'static str,
    /// Labels.
    pub tags: Vec<String>,
    /// Owned namespaces.
    pub namespaces: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Free-form object.
    pub metadata: serde_json::Value,
    /// Unix seconds.
    pub created_at: u64,
}

impl From<&EntityRecord> for EntityView {
    fn from(e: &EntityRecord) -> Self {
        Self {
            id: e.id.clone(),
            entity_type: e.entity_type.clone(),
            name: e.name.clone(),
            public_key: hex::encode(e.public_key),
            status: status_name(e.status),
            tags: e.tags.clone(),
            namespaces: e.namespaces.clone(),
            scopes: e.scopes.clone(),
            metadata: serde_json::from_str(&e.metadata).unwrap_or(serde_json::Value::Null),
            created_at: e.created_at,
        }
    }
}

/// `POST /api/entities` body.
#[derive(Debug, Deserialize)]
pub struct NewEntity {
    entity_type: String,
    name: String,
    public_key: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// `PUT /api/entities/{id}` body: fields to replace.
#[derive(Debug, Deserialize)]
pub struct EntityPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::BadRequest(text.into())
}

fn entity_type(text: &str) -> Result<String, ApiError> {
    let lower = text.to_ascii_lowercase();
    if ENTITY_TYPES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(bad(format!(
            "entity_type must be one of {}",
            ENTITY_TYPES.join(", ")
        )))
    }
}

/// Parses a status in either spelling; Suspended is Inactive.
pub fn parse_status(text: &str) -> Result<EntityStatus, ApiError> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Ok(EntityStatus::Active),
        "inactive" | "suspended" => Ok(EntityStatus::Inactive),
        "revoked" => Ok(EntityStatus::Revoked),
        _ => Err(bad(
            "status must be active, inactive (suspended) or revoked",
        )),
    }
}

fn check_scopes(scopes: &[String]) -> Result<(), ApiError> {
    Scopes::parse_all(scopes)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

fn check_namespaces(namespaces: &[String]) -> Result<(), ApiError> {
    for ns in namespaces {
        clasp_proto::Pattern::compile(ns).map_err(|e| bad(format!("namespace {ns:?}: {e}")))?;
    }
    Ok(())
}

fn metadata_text(metadata: Option<serde_json::Value>) -> Result<String, ApiError> {
    match metadata {
        None => Ok("{}".into()),
        Some(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        Some(_) => Err(bad("metadata must be a JSON object")),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id
        .strip_prefix("clasp:")
        .is_some_and(|rest| !rest.is_empty() && bs58::decode(rest).into_vec().is_ok());
    if ok {
        Ok(())
    } else {
        Err(bad(format!("{id:?} is not an entity id (clasp:<base58>)")))
    }
}

/// Registers an entity.
#[derive(Message, Debug)]
#[rtype(result = "Result<EntityView, ApiError>")]
pub struct CreateEntity(pub NewEntity);

impl Handler<CreateEntity> for Auth {
    type Result = Result<EntityView, ApiError>;
    fn handle(&mut self, msg: CreateEntity, _: &mut Context<Self>) -> Self::Result {
        let new = msg.0;
        let key =
            parse_public_key_hex(&new.public_key).map_err(|e| bad(format!("public_key: {e}")))?;
        let name = new.name.trim().to_string();
        if name.is_empty() || name.len() > 256 {
            return Err(bad("name must be 1 to 256 bytes"));
        }
        check_scopes(&new.scopes)?;
        check_namespaces(&new.namespaces)?;
        let record = EntityRecord {
            id: entity_id_for(&key),
            entity_type: entity_type(&new.entity_type)?,
            name,
            public_key: key.to_bytes(),
            status: EntityStatus::Active,
            tags: new.tags,
            namespaces: new.namespaces,
            scopes: new.scopes,
            metadata: metadata_text(new.metadata)?,
            created_at: unix_now(),
        };
        match self.store.insert_entity(&record)? {
            Inserted::Ok => {
                tracing::info!(entity = %record.id, kind = %record.entity_type, "entity registered");
                Ok(EntityView::from(&record))
            }
            Inserted::Conflict => Err(ApiError::Conflict(format!(
                "entity {} already exists",
                record.id
            ))),
        }
    }
}

/// A page of entities.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<EntityView>, ApiError>")]
pub struct ListEntities {
    /// Skip this many.
    pub offset: usize,
    /// At most this many (capped at 1000).
    pub limit: usize,
}

impl Handler<ListEntities> for Auth {
    type Result = Result<Vec<EntityView>, ApiError>;
    fn handle(&mut self, msg: ListEntities, _: &mut Context<Self>) -> Self::Result {
        let page = self.store.entities(msg.offset, msg.limit.min(1000))?;
        Ok(page.iter().map(EntityView::from).collect())
    }
}

/// One entity.
#[derive(Message, Debug)]
#[rtype(result = "Result<EntityView, ApiError>")]
pub struct GetEntity(pub String);

impl Auth {
    fn existing(&self, id: &str) -> Result<EntityRecord, ApiError> {
        check_id(id)?;
        self.store
            .entity(id)?
            .ok_or_else(|| ApiError::NotFound(format!("entity {id} not found")))
    }
}

impl Handler<GetEntity> for Auth {
    type Result = Result<EntityView, ApiError>;
    fn handle(&mut self, msg: GetEntity, _: &mut Context<Self>) -> Self::Result {
        Ok(EntityView::from(&self.existing(&msg.0)?))
    }
}

/// Replaces some fields of an entity.
#[derive(Message, Debug)]
#[rtype(result = "Result<EntityView, ApiError>")]
pub struct UpdateEntity(pub String, pub EntityPatch);

impl Handler<UpdateEntity> for Auth {
    type Result = Result<EntityView, ApiError>;
    fn handle(&mut self, msg: UpdateEntity, _: &mut Context<Self>) -> Self::Result {
        let mut e = self.existing(&msg.0)?;
        let patch = msg.1;
        let grants_change = patch.scopes.is_some() || patch.namespaces.is_some();
        if let Some(name) = patch.name {
            e.name = name.trim().to_string();
        }
        if let Some(tags) = patch.tags {
            e.tags = tags;
        }
        if let Some(ns) = patch.namespaces {
            check_namespaces(&ns)?;
            e.namespaces = ns;
        }
        if let Some(scopes) = patch.scopes {
            check_scopes(&scopes)?;
            e.scopes = scopes;
        }
        if patch.metadata.is_some() {
            e.metadata = metadata_text(patch.metadata)?;
        }
        self.store.update_entity(&e)?;
        // Grants are fixed at HELLO: when scopes or namespaces change, live sessions are cut
        // so the change (a narrowing, say) takes effect now; they reconnect with the new grant.
        if grants_change {
            self.revoke_live(&e.id);
        }
        Ok(EntityView::from(&e))
    }
}

/// Changes an entity's status.
#[derive(Message, Debug)]
#[rtype(result = "Result<EntityView, ApiError>")]
pub struct SetEntityStatus(pub String, pub EntityStatus);

impl Handler<SetEntityStatus> for Auth {
    type Result = Result<EntityView, ApiError>;
    fn handle(&mut self, msg: SetEntityStatus, _: &mut Context<Self>) -> Self::Result {
        let mut e = self.existing(&msg.0)?;
        e.status = msg.1;
        self.store.update_entity(&e)?;
        let closed = if e.status == EntityStatus::Active {
            0
        } else {
            self.revoke_live(&e.id)
        };
        tracing::info!(entity = %e.id, status = status_name(e.status), sessions_closed = closed, "entity status changed");
        Ok(EntityView::from(&e))
    }
}

/// Deletes an entity and ends its sessions.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), ApiError>")]
pub struct DeleteEntity(pub String);

impl Handler<DeleteEntity> for Auth {
    type Result = Result<(), ApiError>;
    fn handle(&mut self, msg: DeleteEntity, _: &mut Context<Self>) -> Self::Result {
        check_id(&msg.0)?;
        if !self.store.remove_entity(&msg.0)? {
            return Err(ApiError::NotFound(format!("entity {} not found", msg.0)));
        }
        self.revoke_live(&msg.0);
        tracing::info!(entity = %msg.0, "entity deleted");
        Ok(())
    }
}

/// The trust anchors and chain limit, public so token minters can check their setup.
#[derive(Message, Debug)]
#[rtype(result = "(Vec<String>, usize)")]
pub struct TrustAnchors;

impl Handler<TrustAnchors> for Auth {
    type Result = MessageResult<TrustAnchors>;
    fn handle(&mut self, _: TrustAnchors, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.validators.anchors(), self.config.cap_max_depth))
    }
}
