//! Values carried by params and signals (§3.2).

use alloc::string::String;
use alloc::vec::Vec;

/// Deepest nesting of arrays and maps accepted on decode (§3.2 recommends a cap).
pub const MAX_DEPTH: usize = 64;

/// Value type codes of §3.2 (decoders accept all; encoders write only the canonical ones).
#[allow(missing_docs)]
pub mod code {
    pub const NULL: u8 = 0x00;
    pub const BOOL: u8 = 0x01;
    pub const I8: u8 = 0x02;
    pub const I16: u8 = 0x03;
    pub const I32: u8 = 0x04;
    pub const I64: u8 = 0x05;
    pub const F32: u8 = 0x06;
    pub const F64: u8 = 0x07;
    pub const STRING: u8 = 0x08;
    pub const BYTES: u8 = 0x09;
    pub const ARRAY: u8 = 0x0A;
    pub const MAP: u8 = 0x0B;
}

/// A CLASP value. Narrow wire types widen on decode (i8/i16/i32 to [`Value::Int`], f32 to
/// [`Value::Float`]) and are always written back in the canonical codes 0x05 and 0x07, as the
/// reference router does; clients only ever see the canonical codes.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Value {
    /// 0x00.
    #[default]
    Null,
    /// 0x01.
    Bool(bool),
    /// 0x02..=0x05 in, 0x05 out.
    Int(i64),
    /// 0x06/0x07 in, 0x07 out.
    Float(f64),
    /// 0x08, always valid UTF-8.
    String(String),
    /// 0x09.
    Bytes(Vec<u8>),
    /// 0x0A.
    Array(Vec<Value>),
    /// 0x0B, in wire order. Duplicate keys are kept so a frame re-encodes as it came;
    /// lookups take the last one, as every official decoder does.
    Map(Vec<(String, Value)>),
}

/// The kind of a [`Value`], with its canonical wire type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// Null.
    Null = 0x00,
    /// Bool.
    Bool = 0x01,
    /// i64.
    Int = 0x05,
    /// f64.
    Float = 0x07,
    /// UTF-8 string.
    String = 0x08,
    /// Byte string.
    Bytes = 0x09,
    /// Array.
    Array = 0x0A,
    /// Map.
    Map = 0x0B,
}

impl Value {
    /// The value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Null => ValueKind::Null,
            Value::Bool(_) => ValueKind::Bool,
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::String(_) => ValueKind::String,
            Value::Bytes(_) => ValueKind::Bytes,
            Value::Array(_) => ValueKind::Array,
            Value::Map(_) => ValueKind::Map,
        }
    }

    /// Numeric view (ints and floats), for strategies like max/min and epsilon filters.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Integer view.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Boolean view.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// String view.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Map lookup; with duplicate keys the last wins (§3.2).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Equality that treats floats bit-for-bit (NaN equals NaN of the same bits), for
    /// "did the value change" checks and round-trip tests.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same_as(vb))
            }
            _ => self == other,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(<$conv>::from(v))
            }
        })*
    };
}

value_from! {
    bool => Bool as bool,
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float as f64,
    String => String as String, &str => String as String,
    Vec<u8> => Bytes as Vec<u8>, Vec<Value> => Array as Vec<Value>,
}

impl From<()> for Value {
    fn from(_: ()) -> Self {
        Value::Null
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
