//! The 79 rows of the spec's pattern table (`tests/data/patterns.json`): our single matcher
//! must accept exactly the patterns upstream accepts on SUBSCRIBE and match exactly the
//! live-delivery column (the RECOMMENDED semantics of WIRE.md §9.3), and the subscription
//! index must agree with the matcher on every row.

use clasp_proto::{Pattern, PatternIndex};
use serde_json::Value as Json;

fn rows() -> Vec<Json> {
    let data: Json =
        serde_json::from_str(include_str!("data/patterns.json")).expect("patterns.json");
    data["rows"].as_array().expect("rows").clone()
}

#[test]
fn every_row_matches_the_live_delivery_column() {
    let rows = rows();
    assert_eq!(rows.len(), 79);
    for row in &rows {
        let pattern = row["pattern"].as_str().expect("pattern");
        let address = row["address"].as_str().expect("address");
        let accepted = row["subscribe_accepted"]
            .as_bool()
            .expect("subscribe_accepted");
        match Pattern::compile(pattern) {
            Ok(p) => {
                assert!(accepted, "{pattern:?} should be rejected");
                let want = row["router_live_delivery"].as_bool().expect("live column");
                assert_eq!(p.matches(address), want, "{pattern:?} vs {address:?}");
            }
            Err(e) => assert!(!accepted, "{pattern:?} rejected: {e}"),
        }
    }
}

#[test]
fn the_index_agrees_with_the_matcher_on_every_row() {
    let rows = rows();
    let mut index = PatternIndex::new();
    let mut compiled = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if let Ok(p) = Pattern::compile(row["pattern"].as_str().expect("pattern")) {
            index.insert(&p, i);
            compiled.push((i, p));
        }
    }
    for row in &rows {
        let address = row["address"].as_str().expect("address");
        let want: Vec<usize> = compiled
            .iter()
            .filter(|(_, p)| p.matches(address))
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            index.lookup(address).to_vec(),
            want,
            "cached lookup of {address:?}"
        );
        assert_eq!(
            index.lookup_uncached(address),
            want,
            "uncached lookup of {address:?}"
        );
        // Second lookup is served from the cache and must not change.
        assert_eq!(
            index.lookup(address).to_vec(),
            want,
            "cache hit for {address:?}"
        );
    }
}
