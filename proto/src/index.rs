//! The subscription index: who receives this address?
//!
//! A segment trie of compiled [`Pattern`]s with a result cache, in the manner of NATS's
//! sublist. Lookups that hit the cache cost one hash probe; a miss walks the trie once and
//! fills the cache. Inserting or removing a pattern evicts only the cached addresses that
//! pattern matches, so a busy router keeps its cache warm while clients come and go.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::{HashMap, HashSet};

use crate::pattern::{Glob, Segment};
use crate::Pattern;

/// Default number of cached addresses per index.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// Maps patterns to subscribers (`T`: a session id, a subscription key...) and answers which
/// subscribers match an address. Results are sorted and de-duplicated.
pub struct PatternIndex<T> {
    root: Node<T>,
    cache: HashMap<Box<str>, Arc<[T]>>,
    cache_capacity: usize,
    len: usize,
}

struct Node<T> {
    literal: HashMap<Box<str>, Node<T>>,
    one: Option<Box<Node<T>>>,
    any: Option<Box<Node<T>>>,
    globs: Vec<(Glob, Node<T>)>,
    subscribers: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            literal: HashMap::new(),
            one: None,
            any: None,
            globs: Vec::new(),
            subscribers: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
            && self.literal.is_empty()
            && self.one.is_none()
            && self.any.is_none()
            && self.globs.is_empty()
    }
}

impl<T: Clone + Ord> Default for PatternIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Ord> PatternIndex<T> {
    /// An empty index with the default cache size.
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An empty index caching up to `capacity` addresses (0 disables the cache).
    pub fn with_cache_capacity(capacity: usize) -> Self {
        Self {
            root: Node::default(),
            cache: HashMap::new(),
            cache_capacity: capacity,
            len: 0,
        }
    }

    /// Number of (pattern, subscriber) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of cached addresses (for metrics).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Adds `subscriber` under `pattern`. Returns false if that exact entry already existed.
    pub fn insert(&mut self, pattern: &Pattern, subscriber: T) -> bool {
        let mut node = &mut self.root;
        for seg in pattern.segments() {
            node = match seg {
                Segment::Literal(s) => node.literal.entry(s.clone()).or_default(),
                Segment::One => node.one.get_or_insert_with(Default::default),
                Segment::Any => node.any.get_or_insert_with(Default::default),
                Segment::Glob(g) => {
                    let pos = match node.globs.iter().position(|(x, _)| x == g) {
                        Some(pos) => pos,
                        None => {
                            node.globs.push((g.clone(), Node::default()));
                            node.globs.len() - 1
                        }
                    };
                    &mut node.globs[pos].1
                }
            };
        }
        if node.subscribers.contains(&subscriber) {
            return false;
        }
        node.subscribers.push(subscriber);
        self.len += 1;
        self.invalidate(pattern);
        true
    }

    /// Removes `subscriber` from `pattern`. Returns false if it was not there.
    pub fn remove(&mut self, pattern: &Pattern, subscriber: &T) -> bool {
        let removed = Self::remove_at(&mut self.root, pattern.segments(), subscriber);
        if removed {
            self.len -= 1;
            self.invalidate(pattern);
        }
        removed
    }

    fn remove_at(node: &mut Node<T>, segments: &[Segment], subscriber: &T) -> bool {
        let Some((seg, rest)) = segments.split_first() else {
            let before = node.subscribers.len();
            node.subscribers.retain(|s| s != subscriber);
            return node.subscribers.len() != before;
        };
        match seg {
            Segment::Literal(s) => {
                let Some(child) = node.literal.get_mut(&**s) else {
                    return false;
                };
                let removed = Self::remove_at(child, rest, subscriber);
                if child.is_empty() {
                    node.literal.remove(&**s);
                }
                removed
            }
            Segment::One | Segment::Any => {
                let slot = if *seg == Segment::One {
                    &mut node.one
                } else {
                    &mut node.any
                };
                let Some(child) = slot.as_mut() else {
                    return false;
                };
                let removed = Self::remove_at(child, rest, subscriber);
                if child.is_empty() {
                    *slot = None;
                }
                removed
            }
            Segment::Glob(g) => {
                let Some(pos) = node.globs.iter().position(|(x, _)| x == g) else {
                    return false;
                };
                let removed = Self::remove_at(&mut node.globs[pos].1, rest, subscriber);
                if node.globs[pos].1.is_empty() {
                    node.globs.swap_remove(pos);
                }
                removed
            }
        }
    }

    /// Removes every entry of `subscriber` (e.g. when a session ends). Clears the cache.
    pub fn remove_subscriber(&mut self, subscriber: &T) -> usize {
        let removed = Self::purge(&mut self.root, subscriber);
        self.len -= removed;
        if removed > 0 {
            self.cache.clear();
        }
        removed
    }

    fn purge(node: &mut Node<T>, subscriber: &T) -> usize {
        let before = node.subscribers.len();
        node.subscribers.retain(|s| s != subscriber);
        let mut removed = before - node.subscribers.len();
        node.literal.retain(|_, child| {
            removed += Self::purge(child, subscriber);
            !child.is_empty()
        });
        for slot in [&mut node.one, &mut node.any] {
            if let Some(child) = slot.as_mut() {
                removed += Self::purge(child, subscriber);
                if child.is_empty() {
                    *slot = None;
                }
            }
        }
        node.globs.retain_mut(|(_, child)| {
            removed += Self::purge(child, subscriber);
            !child.is_empty()
        });
        removed
    }

    fn invalidate(&mut self, pattern: &Pattern) {
        if pattern.is_exact() {
            self.cache.remove(pattern.as_str());
        } else {
            self.cache.retain(|address, _| !pattern.matches(address));
        }
    }

    /// Subscribers whose pattern matches `address`, sorted and de-duplicated.
    pub fn lookup(&mut self, address: &str) -> Arc<[T]> {
        if let Some(hit) = self.cache.get(address) {
            return hit.clone();
        }
        let result: Arc<[T]> = self.lookup_uncached(address).into();
        if self.cache_capacity > 0 {
            if self.cache.len() >= self.cache_capacity {
                // Like NATS: drop an arbitrary part of the cache rather than track recency.
                let drop: Vec<Box<str>> = self
                    .cache
                    .keys()
                    .take(self.cache_capacity / 4 + 1)
                    .cloned()
                    .collect();
                for key in drop {
                    self.cache.remove(&key);
                }
            }
            self.cache.insert(address.into(), result.clone());
        }
        result
    }

    /// The same answer as [`lookup`](Self::lookup) without touching the cache.
    pub fn lookup_uncached(&self, address: &str) -> Vec<T> {
        let mut out = Vec::new();
        let Some(rest) = address.strip_prefix('/') else {
            return out;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let mut visited = HashSet::new();
        Self::collect(&self.root, &segments, &mut out, &mut visited);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect(
        node: &Node<T>,
        segments: &[&str],
        out: &mut Vec<T>,
        visited: &mut HashSet<(*const Node<T>, usize)>,
    ) {
        match segments.split_first() {
            None => out.extend(node.subscribers.iter().cloned()),
            Some((head, rest)) => {
                if let Some(child) = node.literal.get(*head) {
                    Self::collect(child, rest, out, visited);
                }
                if let Some(child) = &node.one {
                    Self::collect(child, rest, out, visited);
                }
                for (glob, child) in &node.globs {
                    if glob.matches(head) {
                        Self::collect(child, rest, out, visited);
                    }
                }
            }
        }
        if let Some(any) = &node.any {
            // `**` absorbs zero or more segments; each (node, position) is walked once, so
            // patterns with several `**` cannot make a lookup exponential.
            for skip in 0..=segments.len() {
                let key = (&**any as *const Node<T>, segments.len() - skip);
                if visited.insert(key) {
                    Self::collect(any, &segments[skip..], out, visited);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::compile(s).expect("valid pattern")
    }

    #[test]
    fn index_agrees_with_matcher() {
        let patterns = [
            "/a/b",
            "/a/*",
            "/a/**",
            "/**",
            "/a/**/c",
            "/*/b",
            "/a/b*",
            "/x/**/y/**/z",
        ];
        let addrs = [
            "/a/b",
            "/a",
            "/a/",
            "/a/b/c",
            "/b/b",
            "/a/bcd",
            "/x/y/z",
            "/x/1/y/2/z",
            "/",
        ];
        let mut idx = PatternIndex::new();
        for (i, pat) in patterns.iter().enumerate() {
            assert!(idx.insert(&p(pat), i));
        }
        for a in addrs {
            let expected: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, pat)| p(pat).matches(a))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(&*idx.lookup(a), &expected[..], "address {a}");
            assert_eq!(&*idx.lookup(a), &expected[..], "cached address {a}");
        }
    }

    #[test]
    fn insert_and_remove_invalidate_cache() {
        let mut idx = PatternIndex::new();
        assert!(idx.lookup("/a/b").is_empty());
        idx.insert(&p("/a/*"), 1u32);
        assert_eq!(&*idx.lookup("/a/b"), &[1]);
        idx.insert(&p("/a/b"), 2);
        assert_eq!(&*idx.lookup("/a/b"), &[1, 2]);
        assert!(idx.remove(&p("/a/*"), &1));
        assert_eq!(&*idx.lookup("/a/b"), &[2]);
        assert!(!idx.remove(&p("/a/*"), &1));
        assert_eq!(idx.remove_subscriber(&2), 1);
        assert!(idx.lookup("/a/b").is_empty());
        assert!(idx.is_empty());
    }
}
