//! `DUMP` payloads of module values, taken apart and rebuilt with a valid checksum, so that a test
//! can hand the module's decoder (not Redis's checksum check) a corrupted saved form.
//!
//! A payload is `[object type][body][RDB version: u16 LE][CRC64: u64 LE]`, the CRC covering all
//! that precedes it. For a module value (type 7, `RDB_TYPE_MODULE_2`) the body is the module type
//! id (an RDB length), then what the type's `rdb_save` wrote (for this module, one string: the
//! opcode 5 and a length-prefixed string), then the EOF opcode 0. With `rdbcompression no` the
//! string is stored raw.

/// Redis's CRC-64 (Jones polynomial, reflected, initial value 0, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0xad93_d235_94c9_35a9_u64.reverse_bits();
    data.iter().fold(0u64, |mut crc, &byte| {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
        crc
    })
}

const RDB_TYPE_MODULE_2: u8 = 7;
const MODULE_OPCODE_STRING: u64 = 5;
const FOOTER_LEN: usize = 10;

/// Reads an RDB length at `*pos` (6-bit, 14-bit, 32-bit or 64-bit form).
pub fn read_len(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    *pos += 1;
    let mut be = |n: usize| {
        let bytes = b.get(*pos..*pos + n)?;
        *pos += n;
        Some(bytes.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    match first >> 6 {
        0 => Some(u64::from(first & 0x3f)),
        1 => Some((u64::from(first & 0x3f) << 8) | be(1)?),
        2 if first == 0x80 => be(4),
        2 if first == 0x81 => be(8),
        _ => None, // an encoded (integer or compressed) string, or garbage
    }
}

/// Writes `n` as an RDB length in its shortest form.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A module value's `DUMP` payload, split around the module's saved form.
#[derive(Debug, Clone)]
pub struct ModuleDump {
    /// Object type and module type id.
    pub header: Vec<u8>,
    /// The bytes the module saved (its codec's output).
    pub saved: Vec<u8>,
    /// Whatever follows the saved string up to the footer (the EOF opcode).
    pub trailer: Vec<u8>,
    /// The RDB version of the footer.
    pub rdb_version: [u8; 2],
}

impl ModuleDump {
    /// Splits a payload written with `rdbcompression no`; checks its CRC first.
    pub fn parse(payload: &[u8]) -> ModuleDump {
        assert!(payload.len() > FOOTER_LEN, "payload too short");
        let (data, crc) = payload.split_at(payload.len() - 8);
        assert_eq!(
            crc64(data),
            u64::from_le_bytes(crc.try_into().expect("8 bytes")),
            "the test's CRC-64 disagrees with the server's"
        );
        let body_end = data.len() - 2;
        assert_eq!(data[0], RDB_TYPE_MODULE_2, "not a module value");
        let mut pos = 1;
        read_len(data, &mut pos).expect("module type id");
        let header = data[..pos].to_vec();
        assert_eq!(read_len(data, &mut pos), Some(MODULE_OPCODE_STRING));
        let len = read_len(data, &mut pos).expect("a raw string (is rdbcompression off?)") as usize;
        let saved = data[pos..pos + len].to_vec();
        ModuleDump {
            header,
            saved,
            trailer: data[pos + len..body_end].to_vec(),
            rdb_version: [data[body_end], data[body_end + 1]],
        }
    }

    /// The payload with `saved` in place of the module's bytes, lengths and CRC recomputed.
    pub fn with_saved(&self, saved: &[u8]) -> Vec<u8> {
        let mut out = self.header.clone();
        write_len(&mut out, MODULE_OPCODE_STRING);
        write_len(&mut out, saved.len() as u64);
        out.extend_from_slice(saved);
        out.extend_from_slice(&self.trailer);
        out.extend_from_slice(&self.rdb_version);
        seal(out)
    }

    /// The payload as DUMP produced it.
    pub fn build(&self) -> Vec<u8> {
        self.with_saved(&self.saved)
    }
}

/// The string Redis hands the module's `rdb_load` when it reads `payload`, framed as Redis frames
/// it: from the start of the saved string on into whatever follows, footer and CRC included (Redis
/// reads the whole payload buffer, so a payload cut short is read on into its footer). `None` if
/// the payload has no such string.
pub fn framed_saved(payload: &[u8]) -> Option<Vec<u8>> {
    framed(payload).map(|(start, end)| payload[start..end].to_vec())
}

/// Whether that string reaches past the payload's body into its footer (RDB version and CRC).
pub fn framed_into_footer(payload: &[u8]) -> bool {
    framed(payload).is_some_and(|(_, end)| end > payload.len() - FOOTER_LEN)
}

/// Where `framed_saved`'s string starts and ends in `payload`.
fn framed(payload: &[u8]) -> Option<(usize, usize)> {
    if *payload.first()? != RDB_TYPE_MODULE_2 {
        return None;
    }
    let mut pos = 1;
    read_len(payload, &mut pos)?;
    if read_len(payload, &mut pos)? != MODULE_OPCODE_STRING {
        return None;
    }
    let len = usize::try_from(read_len(payload, &mut pos)?).ok()?;
    let end = pos.checked_add(len).filter(|&end| end <= payload.len())?;
    Some((pos, end))
}

/// Appends the CRC-64 of `data` (body and RDB version), completing a payload.
pub fn seal(mut data: Vec<u8>) -> Vec<u8> {
    let crc = crc64(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    data
}

/// A payload's body and version without its CRC (to corrupt it and `seal` it again).
pub fn unsealed(payload: &[u8]) -> Vec<u8> {
    payload[..payload.len() - 8].to_vec()
}
