//! A load generator that keeps the client out of the measurement: each thread encodes its
//! pipelines to RESP bytes once, then sends them over and over on a raw socket and only counts
//! the replies. With two cores shared by client and server, a client that builds commands on the
//! fly measures itself as much as the server; this one spends its time in `write` and a tiny parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use redis::Cmd;

/// Distinct pipelines each thread prepares (so keys and items vary) and cycles through.
const PREPARED: usize = 32;

/// Counts complete RESP2 replies in `buf[..]`, starting at `*pos`; leaves `*pos` at the first
/// incomplete one.
fn count_replies(buf: &[u8], pos: &mut usize) -> usize {
    let mut n = 0;
    while let Some(end) = skip(buf, *pos) {
        *pos = end;
        n += 1;
    }
    n
}

/// The index of the `\r` ending the line that starts at `from` (RESP lines hold no `\r` of
/// their own; bulk payloads are skipped by length, never scanned).
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let i = memchr::memchr(b'\r', rest)?;
    (rest.get(i + 1) == Some(&b'\n')).then_some(from + i)
}

/// A RESP length or integer (digits with an optional sign), parsed without allocation.
fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -v } else { v })
}

/// The end of the reply starting at `at`, when it is complete.
fn skip(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let eol = line_end(buf, at + 1)?;
    let number = || parse_int(&buf[at + 1..eol]);
    match kind {
        b'+' | b'-' | b':' => Some(eol + 2),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Some(eol + 2);
            }
            let end = eol + 2 + len as usize + 2;
            (end <= buf.len()).then_some(end)
        }
        b'*' => {
            let len = number()?;
            let mut p = eol + 2;
            for _ in 0..len.max(0) {
                p = skip(buf, p)?;
            }
            Some(p)
        }
        _ => None,
    }
}

/// Operations per second: `threads` connections, each sending pipelines of `depth` operations
/// (an operation is what `make` returns, e.g. a whole MULTI block) until `ops` in total are done.
pub fn throughput(
    port: u16,
    threads: usize,
    depth: usize,
    ops: u64,
    make: &(dyn Fn(&mut StdRng) -> Vec<Cmd> + Sync),
) -> f64 {
    let rounds = (ops / (threads * depth) as u64).max(1);
    let prepared: Vec<Vec<(Vec<u8>, usize)>> = (0..threads)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(t as u64 + 1);
            (0..PREPARED)
                .map(|_| {
                    let mut bytes = Vec::new();
                    let mut replies = 0;
                    for _ in 0..depth {
                        for command in make(&mut rng) {
                            bytes.extend_from_slice(&command.get_packed_command());
                            replies += 1;
                        }
                    }
                    (bytes, replies)
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for batches in &prepared {
            scope.spawn(move || {
                let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                sock.set_nodelay(true).ok();
                let mut buf = vec![0u8; 1 << 20];
                for round in 0..rounds as usize {
                    let (bytes, replies) = &batches[round % PREPARED];
                    sock.write_all(bytes).expect("write");
                    let (mut filled, mut pos, mut seen) = (0usize, 0usize, 0usize);
                    while seen < *replies {
                        if filled == buf.len() {
                            buf.copy_within(pos..filled, 0);
                            filled -= pos;
                            pos = 0;
                            if filled == buf.len() {
                                buf.resize(buf.len() * 2, 0);
                            }
                        }
                        let n = sock.read(&mut buf[filled..]).expect("read");
                        assert!(n > 0, "server closed the connection");
                        filled += n;
                        seen += count_replies(&buf[..filled], &mut pos);
                    }
                    assert!(
                        !buf[..filled].starts_with(b"-"),
                        "error reply: {}",
                        String::from_utf8_lossy(&buf[..filled.min(200)])
                    );
                }
            });
        }
    });
    (rounds * (threads * depth) as u64) as f64 / start.elapsed().as_secs_f64()
}

/// What [`send_all`] saw: replies read, how many were errors, and the first error's text.
pub struct Sent {
    pub replies: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Sends `cmds` on one connection in pipelines of `depth`, reading every reply; error replies are
/// counted, not fatal (setup of the worst cases: a limit added later may refuse part of it).
pub fn send_all(port: u16, depth: usize, cmds: impl Iterator<Item = Cmd>) -> Sent {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_nodelay(true).ok();
    let mut sent = Sent {
        replies: 0,
        errors: 0,
        first_error: None,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut cmds = cmds.peekable();
    while cmds.peek().is_some() {
        let mut bytes = Vec::new();
        let mut expected = 0usize;
        for command in cmds.by_ref().take(depth.max(1)) {
            bytes.extend_from_slice(&command.get_packed_command());
            expected += 1;
        }
        sock.write_all(&bytes).expect("write");
        let (mut filled, mut pos, mut seen) = (0usize, 0usize, 0usize);
        while seen < expected {
            while let Some(end) = skip(&buf[..filled], pos) {
                if buf[pos] == b'-' {
                    sent.errors += 1;
                    if sent.first_error.is_none() {
                        sent.first_error =
                            Some(String::from_utf8_lossy(&buf[pos + 1..end - 2]).into_owned());
                    }
                }
                pos = end;
                seen += 1;
            }
            if seen == expected {
                break;
            }
            if filled == buf.len() {
                buf.copy_within(pos..filled, 0);
                filled -= pos;
                pos = 0;
                if filled == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            let n = sock.read(&mut buf[filled..]).expect("read");
            assert!(n > 0, "server closed the connection");
            filled += n;
        }
        sent.replies += seen as u64;
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resp_integers() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"1234567890123"), Some(1_234_567_890_123));
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"1x"), None);
    }

    #[test]
    fn counts_complete_replies_only() {
        let buf = b"+OK\r\n:12\r\n$3\r\nabc\r\n*2\r\n$1\r\nx\r\n:1\r\n$-1\r\n*3\r\n:1\r\n";
        let mut pos = 0;
        assert_eq!(count_replies(buf, &mut pos), 5);
        assert_eq!(&buf[pos..], b"*3\r\n:1\r\n");
    }
}
