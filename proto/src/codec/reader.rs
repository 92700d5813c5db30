//! A bounds-checked cursor: every read either returns the bytes or a typed error carrying
//! the field name and the absolute offset, so no input can cause a panic or an out-of-bounds
//! read.

use alloc::string::{String, ToString};

use crate::{Address, DecodeError, Pattern};

/// Cursor over one payload. `base` is the payload's offset within the frame, so errors
/// report frame offsets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        match rest.get(..n) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(DecodeError::Truncated {
                field,
                offset: self.offset(),
                needed: n,
                available: rest.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    pub(crate) fn f32(&mut self, field: &'static str) -> Result<f32, DecodeError> {
        self.array(field).map(f32::from_be_bytes)
    }

    pub(crate) fn f64(&mut self, field: &'static str) -> Result<f64, DecodeError> {
        self.array(field).map(f64::from_be_bytes)
    }

    /// A §3.1 string: u16 length + UTF-8.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16(field)?);
        let offset = self.offset();
        let bytes = self.take(len, field)?;
        core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field, offset })
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.str(field).map(ToString::to_string)
    }

    /// A string where length 0 means absent.
    pub(crate) fn optional_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, DecodeError> {
        let s = self.str(field)?;
        Ok((!s.is_empty()).then(|| s.to_string()))
    }

    pub(crate) fn address(&mut self, field: &'static str) -> Result<Address, DecodeError> {
        let offset = self.offset();
        let text = self.str(field)?;
        Address::parse(text).map_err(|reason| DecodeError::InvalidAddress {
            address: text.to_string(),
            reason,
            offset,
        })
    }

    pub(crate) fn pattern(&mut self, field: &'static str) -> Result<Pattern, DecodeError> {
        let offset = self.offset();
        let text = self.str(field)?;
        Pattern::compile(text).map_err(|reason| DecodeError::InvalidPattern {
            pattern: text.to_string(),
            reason,
            offset,
        })
    }

    /// Capacity to reserve for `count` items of at least `min_size` bytes each: never more
    /// than the remaining bytes could hold, so a lying count cannot make us allocate.
    pub(crate) fn capacity(&self, count: usize, min_size: usize) -> usize {
        count.min(self.remaining() / min_size.max(1))
    }
}
