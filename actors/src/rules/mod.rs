//! The rules engine (FEATURES RU-1..RU-11): reactive automation that runs as its own actor
//! and reaches the router through a `RouterLink`, like a bridge. `file` reads and validates
//! the rules file, `transform` holds the value transforms, `eval` the threshold and condition
//! checks, `engine` is the actor (triggers, actions, cooldown, loop detection) and `http` its
//! REST API.

pub mod engine;
pub mod eval;
pub mod file;
pub mod http;
pub mod transform;

pub use engine::{ListRules, Reload, Rules, RulesView};
pub use file::{load, Rule, RulesError};
pub use http::RulesApi;
