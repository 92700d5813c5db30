//! Entries encoded by the shard that accepted them. A shard writes each accepted change
//! straight into byte buffers and hands the `Journal` whole segments: no per-entry structs,
//! shared-string reference counts or value copies cross threads, and the journal's thread
//! only concatenates and commits.
//!
//! A segment stores each distinct string (writer ids, addresses) once and entries refer to
//! them by index, with timestamps as deltas: a fader moved by one session costs about 20
//! bytes per entry instead of 70, and the bytes written are what the journal's cost scales
//! with. Row layout (postcard): `Vec<Segment>`, a segment being `strings: Vec<str>`,
//! `entries: Vec<(timestamp delta: i64, author: u32, address: u32, Body)>`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::Recipient;
use bytes::Bytes;
use clasp_proto::{TypeMask, Value};
use serde::{Deserialize, Serialize};

use super::{Body, Entry};
use crate::messages::Deliver;

/// [`Body`] borrowing its parts (same variant order, so the same encoding).
#[derive(Serialize)]
enum BodyRef<'a> {
    Set { value: &'a Value, revision: u64 },
    Publish { signal: u8, frame: &'a [u8] },
}

/// One entry of a segment as written.
#[derive(Serialize)]
struct CompactRef<'a> {
    delta: i64,
    author: u32,
    address: u32,
    body: BodyRef<'a>,
}

/// One entry of a segment as read.
#[derive(Deserialize)]
struct Compact {
    delta: i64,
    author: u32,
    address: u32,
    body: Body,
}

/// A segment as read, borrowing its strings from the row.
#[derive(Deserialize)]
struct SegmentRow<'a> {
    #[serde(borrow)]
    strings: Vec<&'a str>,
    entries: Vec<Compact>,
}

/// An ACK frame and who gets it once the entries before it are durable.
pub type PendingAck = (Recipient<Deliver>, Bytes);

/// Entries one shard accepted since it last handed them over, in order, with the ACKs that
/// wait for them to be durable: one segment in the making.
#[derive(Default)]
pub struct EncodedEntries {
    /// The distinct strings' encodings, back to back.
    strings: Vec<u8>,
    /// Where each string's text lies in `strings`, by index.
    spans: Vec<(usize, usize)>,
    /// String index by a hash of its text (the text is compared on a hit, so a collision
    /// only costs a second copy of a string).
    index: HashMap<u64, u32>,
    hasher: std::collections::hash_map::RandomState,
    /// The entries' encodings, back to back.
    entries: Vec<u8>,
    /// How many entries `entries` holds.
    count: u64,
    /// The previous entry's timestamp (deltas are taken from it).
    last_timestamp: u64,
    /// ACK frames to send once everything here is committed.
    acks: Vec<PendingAck>,
}

impl EncodedEntries {
    /// Appends an accepted SET.
    pub fn push_set(
        &mut self,
        timestamp: u64,
        author: &str,
        address: &str,
        value: &Value,
        revision: u64,
    ) -> Result<(), postcard::Error> {
        self.push(timestamp, author, address, BodyRef::Set { value, revision })
    }

    /// Appends an accepted PUBLISH, kept as the frame subscribers received.
    pub fn push_publish(
        &mut self,
        timestamp: u64,
        author: &str,
        address: &str,
        signal: u8,
        frame: &[u8],
    ) -> Result<(), postcard::Error> {
        self.push(
            timestamp,
            author,
            address,
            BodyRef::Publish { signal, frame },
        )
    }

    fn push(
        &mut self,
        timestamp: u64,
        author: &str,
        address: &str,
        body: BodyRef<'_>,
    ) -> Result<(), postcard::Error> {
        let (strings, spans) = (self.strings.len(), self.spans.len());
        let entry = self.intern(author).and_then(|author| {
            let address = self.intern(address)?;
            Ok(CompactRef {
                delta: timestamp.wrapping_sub(self.last_timestamp) as i64,
                author,
                address,
                body,
            })
        });
        let before = self.entries.len();
        match entry.and_then(|e| postcard::serialize_with_flavor(&e, Append(&mut self.entries))) {
            Ok(()) => {
                self.count += 1;
                self.last_timestamp = timestamp;
                Ok(())
            }
            Err(e) => {
                // Whatever part of this entry was written goes; the entries before it stay.
                self.entries.truncate(before);
                self.strings.truncate(strings);
                self.spans.truncate(spans);
                self.index.retain(|_, i| (*i as usize) < spans);
                Err(e)
            }
        }
    }

    /// The index of `text` in this segment's strings, adding it when new.
    fn intern(&mut self, text: &str) -> Result<u32, postcard::Error> {
        let key = std::hash::BuildHasher::hash_one(&self.hasher, text);
        if let Some(&i) = self.index.get(&key) {
            let (start, end) = self.spans[i as usize];
            if &self.strings[start..end] == text.as_bytes() {
                return Ok(i);
            }
        }
        let i =
            u32::try_from(self.spans.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
        postcard::serialize_with_flavor(text, Append(&mut self.strings))?;
        let end = self.strings.len();
        self.spans.push((end - text.len(), end));
        self.index.insert(key, i);
        Ok(i)
    }

    /// Adds an ACK to send once everything pushed so far is durable.
    pub fn push_ack(&mut self, to: Recipient<Deliver>, frame: Bytes) {
        self.acks.push((to, frame));
    }

    /// Nothing to hand over.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.acks.is_empty()
    }

    /// How many entries.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The finished segment's encoding (empty when there are no entries), how many entries
    /// it holds, and the ACKs.
    pub fn into_parts(self) -> (Vec<u8>, u64, Vec<PendingAck>) {
        if self.count == 0 {
            return (Vec::new(), 0, self.acks);
        }
        let mut segment = Vec::with_capacity(self.strings.len() + self.entries.len() + 20);
        // Lengths first, as postcard writes a sequence's; these cannot fail on a Vec.
        let _ = postcard::serialize_with_flavor(&self.spans.len(), Append(&mut segment));
        segment.extend_from_slice(&self.strings);
        let _ = postcard::serialize_with_flavor(&(self.count as usize), Append(&mut segment));
        segment.extend_from_slice(&self.entries);
        (segment, self.count, self.acks)
    }
}

/// The entries of one stored row (a `Vec` of segments), in order. Each distinct string is
/// allocated once per segment and shared by its entries.
pub fn decode_row(row: &[u8]) -> Result<Vec<Entry>, postcard::Error> {
    let segments: Vec<SegmentRow<'_>> = postcard::from_bytes(row)?;
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.entries.len()).sum());
    for segment in segments {
        let strings: Vec<Arc<str>> = segment.strings.iter().map(|s| Arc::from(*s)).collect();
        let text = |i: u32| {
            strings
                .get(i as usize)
                .cloned()
                .ok_or(postcard::Error::DeserializeBadVarint)
        };
        let mut timestamp = 0u64;
        for e in segment.entries {
            timestamp = timestamp.wrapping_add(e.delta as u64);
            out.push(Entry {
                timestamp,
                author: text(e.author)?,
                address: text(e.address)?,
                body: e.body,
            });
        }
    }
    Ok(out)
}

/// How many entries a stored row holds, without building them.
pub fn row_len(row: &[u8]) -> Result<usize, postcard::Error> {
    let segments: Vec<SegmentRow<'_>> = postcard::from_bytes(row)?;
    Ok(segments.iter().map(|s| s.entries.len()).sum())
}

/// A row holding `entries` as one segment (rows of the earlier one-struct-per-entry layout
/// are rewritten with it when a journal is opened).
pub fn encode_row(entries: &[Entry]) -> Result<Vec<u8>, postcard::Error> {
    let mut segment = EncodedEntries::default();
    for e in entries {
        match &e.body {
            Body::Set { value, revision } => {
                segment.push_set(e.timestamp, &e.author, &e.address, value, *revision)?
            }
            Body::Publish { signal, frame } => {
                segment.push_publish(e.timestamp, &e.author, &e.address, *signal, frame)?
            }
        }
    }
    let (bytes, count, _) = segment.into_parts();
    let mut row = postcard::to_allocvec(&usize::from(count > 0))?;
    row.extend_from_slice(&bytes);
    Ok(row)
}

/// A postcard output that appends to a buffer it borrows, so an error leaves the buffer
/// (and the entries already in it) with its owner.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Whether entries of `signal` (a §3.3 code, 0 for params) are journaled under `types`.
pub fn journaled(types: TypeMask, signal: u8) -> bool {
    types.includes(clasp_proto::SignalType::from_code(signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry {
                timestamp: 1_796_000_000_000_007,
                author: "s1".into(),
                address: "/a/b".into(),
                body: Body::Set {
                    value: Value::Float(0.5),
                    revision: 3,
                },
            },
            Entry {
                timestamp: 1_796_000_000_000_008,
                author: "s2".into(),
                address: "/c".into(),
                body: Body::Publish {
                    signal: 2,
                    frame: vec![1, 2, 3],
                },
            },
            Entry {
                // The clock may step back: deltas are signed.
                timestamp: 1_796_000_000_000_001,
                author: "s1".into(),
                address: "/a/b".into(),
                body: Body::Set {
                    value: Value::String("cue".into()),
                    revision: 4,
                },
            },
        ]
    }

    /// Segments from several shards, concatenated by the journal, read back as the entries.
    #[test]
    fn segments_concatenated_into_a_row_decode_in_order() {
        let entries = sample();
        let mut a = EncodedEntries::default();
        let mut b = EncodedEntries::default();
        for (i, e) in entries.iter().enumerate() {
            let seg = if i == 1 { &mut b } else { &mut a };
            match &e.body {
                Body::Set { value, revision } => seg
                    .push_set(e.timestamp, &e.author, &e.address, value, *revision)
                    .expect("encodes"),
                Body::Publish { signal, frame } => seg
                    .push_publish(e.timestamp, &e.author, &e.address, *signal, frame)
                    .expect("encodes"),
            }
        }
        let (sa, na, _) = a.into_parts();
        let (sb, nb, _) = b.into_parts();
        assert_eq!((na, nb), (2, 1));
        let mut row = postcard::to_allocvec(&2usize).expect("varint");
        row.extend_from_slice(&sa);
        row.extend_from_slice(&sb);
        let back = decode_row(&row).expect("decodes");
        assert_eq!(
            back,
            vec![entries[0].clone(), entries[2].clone(), entries[1].clone()]
        );
        assert_eq!(row_len(&row).expect("counts"), 3);
        // One allocation per distinct string in a segment.
        assert!(Arc::ptr_eq(&back[0].address, &back[1].address));
        assert!(Arc::ptr_eq(&back[0].author, &back[1].author));
    }

    /// Strings are told apart by their text, not only by where they live.
    #[test]
    fn equal_and_different_strings_are_interned_by_text() {
        let shared: Arc<str> = "/x".into();
        let copy: Arc<str> = "/x".into();
        let mut seg = EncodedEntries::default();
        for address in [&shared, &copy, &shared] {
            seg.push_set(1, "w", address, &Value::Int(1), 1)
                .expect("encodes");
        }
        seg.push_set(2, "w", "/y", &Value::Int(2), 1)
            .expect("encodes");
        let (bytes, count, _) = seg.into_parts();
        let mut row = postcard::to_allocvec(&1usize).expect("varint");
        row.extend_from_slice(&bytes);
        let back = decode_row(&row).expect("decodes");
        assert_eq!(count, 4);
        let addresses: Vec<&str> = back.iter().map(|e| &*e.address).collect();
        assert_eq!(addresses, ["/x", "/x", "/x", "/y"]);
    }

    /// The row written for migrated entries is the same format.
    #[test]
    fn encode_row_round_trips_and_an_empty_row_is_empty() {
        let entries = sample();
        let row = encode_row(&entries).expect("encodes");
        assert_eq!(decode_row(&row).expect("decodes"), entries);
        assert!(decode_row(&encode_row(&[]).expect("encodes"))
            .expect("decodes")
            .is_empty());
    }

    /// A row that is not one (a truncated or foreign value) is an error, not a panic.
    #[test]
    fn a_damaged_row_is_an_error() {
        let row = encode_row(&sample()).expect("encodes");
        assert!(decode_row(&row[..row.len() / 2]).is_err());
        assert!(decode_row(&[0xff, 0xff, 0xff]).is_err());
        // An index past the segment's strings.
        let mut bad = postcard::to_allocvec(&1usize).expect("varint");
        bad.extend_from_slice(&postcard::to_allocvec(&Vec::<&str>::new()).expect("strings"));
        bad.extend_from_slice(&[1, 0, 5, 5, 0, 0, 1]);
        assert!(decode_row(&bad).is_err());
    }
}
