//! Byte-level helpers shared by the saved forms (sessions and the registry): LEB128 varints,
//! zigzag for signed values, little-endian fixed-width numbers, and a bounds-checked reader that
//! turns every overrun into `Error::Corrupt` instead of a panic.

use crate::error::{Error, Result};

pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked reader over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.buf.split_first().ok_or(Error::Corrupt("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Corrupt("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Error::Corrupt("varint overflow"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                // Canonical form only: no superfluous zero continuation bytes.
                if b == 0 && shift > 0 {
                    return Err(Error::Corrupt("non-canonical varint"));
                }
                return Ok(v);
            }
        }
        Err(Error::Corrupt("varint overflow"))
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn f64_le(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64_le()?))
    }

    pub(crate) fn u16_le(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A length that must fit in what remains.
    pub(crate) fn len_prefix(&mut self) -> Result<usize> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(Error::Corrupt("length exceeds payload")),
        }
    }

    pub(crate) fn prefixed(&mut self) -> Result<&'a [u8]> {
        let n = self.len_prefix()?;
        self.bytes(n)
    }
}
