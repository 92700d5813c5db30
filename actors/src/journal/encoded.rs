//! Entries encoded by the shard that accepted them. A shard writes each accepted change
//! straight into a byte buffer (postcard, the layout of [`Entry`](super::Entry)) and hands the
//! `Journal` whole buffers: no per-entry structs, shared-string reference counts or value
//! copies cross threads, and the journal's thread only concatenates and commits.

use actix::Recipient;
use bytes::Bytes;
use clasp_proto::{TypeMask, Value};
use serde::Serialize;

use crate::messages::Deliver;

/// [`Entry`](super::Entry) borrowing its parts: serialises to the same bytes, field for field.
#[derive(Serialize)]
struct EntryRef<'a> {
    timestamp: u64,
    author: &'a str,
    address: &'a str,
    body: BodyRef<'a>,
}

/// [`Body`](super::Body) borrowing its parts (same variant order, so the same tags).
#[derive(Serialize)]
enum BodyRef<'a> {
    Set { value: &'a Value, revision: u64 },
    Publish { signal: u8, frame: &'a [u8] },
}

/// An ACK frame and who gets it once the entries before it are durable.
pub type PendingAck = (Recipient<Deliver>, Bytes);

/// Entries one shard accepted since it last handed them over, in order, with the ACKs that
/// wait for them to be durable.
#[derive(Default)]
pub struct EncodedEntries {
    /// The entries' encodings, back to back (no count prefix: the journal adds it per row).
    bytes: Vec<u8>,
    /// How many entries `bytes` holds.
    count: u64,
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
        self.push(EntryRef {
            timestamp,
            author,
            address,
            body: BodyRef::Set { value, revision },
        })
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
        self.push(EntryRef {
            timestamp,
            author,
            address,
            body: BodyRef::Publish { signal, frame },
        })
    }

    fn push(&mut self, entry: EntryRef<'_>) -> Result<(), postcard::Error> {
        let before = self.bytes.len();
        match postcard::serialize_with_flavor(&entry, Append(&mut self.bytes)) {
            Ok(()) => {
                self.count += 1;
                Ok(())
            }
            Err(e) => {
                // Whatever part of this entry was written goes; the entries before it stay.
                self.bytes.truncate(before);
                Err(e)
            }
        }
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

    /// The entries' bytes and the ACKs.
    pub fn into_parts(self) -> (Vec<u8>, u64, Vec<PendingAck>) {
        (self.bytes, self.count, self.acks)
    }
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
    use crate::journal::{Body, Entry};

    /// What a shard encodes must read back as the entries the journal's readers expect.
    #[test]
    fn encoded_entries_decode_as_a_vec_of_entries() {
        let mut enc = EncodedEntries::default();
        enc.push_set(7, "s1", "/a/b", &Value::Float(0.5), 3)
            .expect("encodes");
        enc.push_publish(8, "s2", "/c", 2, &[1, 2, 3])
            .expect("encodes");
        enc.push_set(9, "s1", "/d", &Value::String("cue".into()), 1)
            .expect("encodes");
        let (bytes, count, acks) = enc.into_parts();
        assert!(acks.is_empty());
        let mut row = postcard::to_allocvec(&(count as usize)).expect("varint");
        // postcard writes a usize as the same varint a sequence length uses.
        row.extend_from_slice(&bytes);
        let back: Vec<Entry> = postcard::from_bytes(&row).expect("decodes");
        let expected = vec![
            Entry {
                timestamp: 7,
                author: "s1".into(),
                address: "/a/b".into(),
                body: Body::Set {
                    value: Value::Float(0.5),
                    revision: 3,
                },
            },
            Entry {
                timestamp: 8,
                author: "s2".into(),
                address: "/c".into(),
                body: Body::Publish {
                    signal: 2,
                    frame: vec![1, 2, 3],
                },
            },
            Entry {
                timestamp: 9,
                author: "s1".into(),
                address: "/d".into(),
                body: Body::Set {
                    value: Value::String("cue".into()),
                    revision: 1,
                },
            },
        ];
        assert_eq!(back, expected);
        // And byte for byte what encoding the owned entries gives.
        assert_eq!(row, postcard::to_allocvec(&expected).expect("encodes"));
    }
}
