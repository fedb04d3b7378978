//! The module-global registry: content catalogs (and, later, notification groups). Not keys: it
//! lives beside the keyspace, is saved in the RDB as module aux data, and its changes replicate as
//! the registry commands themselves.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::wire::{put_bytes, put_i64, put_u64, Reader};

/// The registry's saved-form version.
pub const REGISTRY_VERSION: u8 = 1;

#[derive(Debug, Default)]
pub struct Registry {
    pub catalogs: BTreeMap<Box<[u8]>, Catalog>,
}

impl Registry {
    pub fn memory(&self) -> usize {
        self.catalogs
            .iter()
            .map(|(name, c)| name.len() + 64 + c.memory())
            .sum()
    }

    pub fn items(&self) -> usize {
        self.catalogs.values().map(Catalog::len).sum()
    }

    /// The saved form: version, catalogs by name, items in slot order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![REGISTRY_VERSION];
        put_u64(&mut out, self.catalogs.len() as u64);
        for (name, catalog) in &self.catalogs {
            put_bytes(&mut out, name);
            put_u64(&mut out, catalog.len() as u64);
            for item in catalog.items() {
                put_bytes(&mut out, &item.id);
                out.extend_from_slice(&item.score.to_le_bytes());
                match item.expires_ms {
                    Some(at) => {
                        out.push(1);
                        put_i64(&mut out, at);
                    }
                    None => out.push(0),
                }
                put_u64(&mut out, item.categories.len() as u64);
                for &c in item.categories.iter() {
                    put_bytes(&mut out, catalog.category_name(c));
                }
            }
        }
        out.push(0);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Registry> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(Error::Corrupt("empty registry"))?;
        if version != REGISTRY_VERSION {
            return Err(Error::UnknownEncoding(version));
        }
        let mut r = Reader::new(rest);
        let mut registry = Registry::default();
        let catalogs = r.len_prefix()?;
        for _ in 0..catalogs {
            let name: Box<[u8]> = r.prefixed()?.into();
            let mut catalog = Catalog::default();
            let items = r.len_prefix()?;
            for _ in 0..items {
                let id = r.prefixed()?;
                let score = r.f64_le()?;
                if !score.is_finite() {
                    return Err(Error::Corrupt("item score is not finite"));
                }
                let expires = match r.byte()? {
                    0 => None,
                    1 => Some(r.i64()?),
                    _ => return Err(Error::Corrupt("bad expiry flag")),
                };
                let n = r.len_prefix()?;
                let mut categories = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    categories.push(r.prefixed()?);
                }
                if !catalog.add(id, score, &categories, expires) {
                    return Err(Error::Corrupt("duplicate catalog item"));
                }
            }
            if registry.catalogs.insert(name, catalog).is_some() {
                return Err(Error::Corrupt("duplicate catalog"));
            }
        }
        if r.byte()? != 0 || !r.is_empty() {
            return Err(Error::Corrupt("bytes after the registry"));
        }
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut reg = Registry::default();
        let mut c = Catalog::default();
        c.add(b"a", 1.5, &[b"x", b"y"], Some(99));
        c.add(b"b", -2.0, &[], None);
        reg.catalogs.insert(b"news"[..].into(), c);
        reg.catalogs.insert(b"empty"[..].into(), Catalog::default());
        let bytes = reg.encode();
        let back = Registry::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.items(), 2);
        for n in 0..bytes.len() {
            assert!(Registry::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Registry::decode(&b); // never panics
        }
    }
}
