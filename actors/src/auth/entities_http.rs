//! Entity registry REST API (FEATURES AU-12), admin bearer token required.

use actix_web::web;

/// Adds the registry routes.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
