//! Argument parsing for the SESSION commands, on raw bytes (arguments are binary, never assumed
//! UTF-8). Pure functions so that they are unit-tested and fuzzed without a server.

use crate::activity::hll::{MAX_PRECISION, MIN_PRECISION};
use crate::activity::SketchParams;
use crate::enrich::{Enrich, Thresholds};
use crate::error::{Error, Result};
use crate::session::{Touch, MAX_LIFETIME_S};

/// Largest `AT`: year 2500 or so; keeps every millisecond sum far from overflow.
pub const MAX_AT_MS: i64 = 16_725_225_600_000;

/// A cursor over a command's arguments.
pub struct Args<'a> {
    items: &'a [&'a [u8]],
    pos: usize,
}

impl<'a> Args<'a> {
    pub fn new(items: &'a [&'a [u8]]) -> Self {
        Args { items, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.items.len()
    }

    /// The next argument, not consumed.
    pub fn peek(&self) -> Option<&'a [u8]> {
        self.items.get(self.pos).copied()
    }

    pub fn next_arg(&mut self) -> Result<&'a [u8]> {
        let item = self.items.get(self.pos).ok_or(Error::Syntax)?;
        self.pos += 1;
        Ok(item)
    }

    /// The next `n` arguments, or a syntax error when fewer remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [&'a [u8]]> {
        let end = self.pos.checked_add(n).ok_or(Error::Syntax)?;
        let slice = self.items.get(self.pos..end).ok_or(Error::Syntax)?;
        self.pos = end;
        Ok(slice)
    }

    pub fn next_int(&mut self, what: &'static str, min: i64, max: i64) -> Result<i64> {
        let raw = self.next_arg()?;
        let v = parse_i64(raw).ok_or(Error::NotInteger)?;
        if v < min || v > max {
            return Err(Error::OutOfRange { what, min, max });
        }
        Ok(v)
    }

    /// A finite floating-point number within `[min, max]`.
    pub fn next_float(&mut self, what: &'static str, min: f64, max: f64) -> Result<f64> {
        let raw = self.next_arg()?;
        let v = parse_f64(raw).ok_or(Error::NotFloat)?;
        if !(min..=max).contains(&v) {
            return Err(Error::OutOfRangeFloat { what, min, max });
        }
        Ok(v)
    }

    /// Consumes the next argument when it is `word` (case-insensitive).
    pub fn eat(&mut self, word: &str) -> bool {
        match self.items.get(self.pos) {
            Some(item) if item.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// A list count: at least 1, and no more than the arguments left divided by `per_item`.
    pub fn next_count(&mut self, what: &'static str, per_item: usize) -> Result<usize> {
        let left = self.items.len().saturating_sub(self.pos + 1);
        let raw = self.next_arg()?;
        match parse_i64(raw) {
            Some(n) if n >= 1 && (n as u64) <= (left / per_item.max(1)) as u64 => Ok(n as usize),
            Some(_) => Err(Error::Count(what)),
            None => Err(Error::NotInteger),
        }
    }
}

/// Strict integer parsing as Redis does it: optional '-', digits, no '+', no spaces, no leading
/// zeros except "0" itself.
pub fn parse_i64(raw: &[u8]) -> Option<i64> {
    let (neg, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' || neg && digits == b"0" {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// A finite decimal number (`0.01`, `1e-3`); no `inf`, `nan` or surrounding spaces.
pub fn parse_f64(raw: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Case-insensitive keyword match.
fn is(token: &[u8], word: &str) -> bool {
    token.eq_ignore_ascii_case(word.as_bytes())
}

/// Parses the arguments of `SESSION.TOUCH` that follow the key.
pub fn parse_touch<'a>(items: &'a [&'a [u8]]) -> Result<Touch<'a>> {
    let mut args = Args::new(items);
    let mut t = Touch::default();
    let lifetime = i64::from(MAX_LIFETIME_S);
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "IDLE") {
            once(t.idle_s.is_some())?;
            t.idle_s = Some(args.next_int("IDLE", 1, lifetime)? as u32);
        } else if is(token, "MAXAGE") {
            once(t.maxage_s.is_some())?;
            t.maxage_s = Some(args.next_int("MAXAGE", 1, lifetime)? as u32);
        } else if is(token, "XX") {
            once(t.xx)?;
            t.xx = true;
        } else if is(token, "USER") {
            once(t.user.is_some())?;
            t.user = Some(args.next_arg()?);
        } else if is(token, "SET") {
            once(!t.set.is_empty())?;
            let n = args.next_count("SET", 2)?;
            t.set = args
                .take(n * 2)?
                .chunks_exact(2)
                .map(|p| (p[0], p[1]))
                .collect();
        } else if is(token, "DEL") {
            once(!t.del.is_empty())?;
            let n = args.next_count("DEL", 1)?;
            t.del = args.take(n)?;
        } else if is(token, "EVENT") {
            once(t.event.is_some())?;
            t.event = Some(args.next_arg()?);
            if args.eat("CATEGORIES") {
                let n = args.next_count("CATEGORIES", 1)?;
                t.categories = args.take(n)?;
            }
        } else if is(token, "PARAMS") {
            once(t.params.is_some())?;
            t.params = Some(parse_params(&mut args)?);
        } else if is(token, "AT") {
            once(t.at_ms.is_some())?;
            t.at_ms = Some(args.next_int("AT", 0, MAX_AT_MS)?);
        } else if is(token, "PIDLE") {
            once(t.idle_s.is_some())?;
            t.idle_s = Some(next_ms_as_s(&mut args, "PIDLE")?);
        } else if is(token, "PMAXAGE") {
            once(t.maxage_s.is_some())?;
            t.maxage_s = Some(next_ms_as_s(&mut args, "PMAXAGE")?);
        } else if is(token, "REPLACE") {
            once(t.replace.is_some())?;
            t.replace = Some(parse_replace(&mut args)?);
        } else if is(token, "WITHFIELDS") {
            once(t.with_fields.is_some())?;
            t.with_fields = Some(parse_with_fields(&mut args)?);
        } else {
            return Err(Error::Syntax);
        }
    }
    // REPLACE names the whole field set: SET or DEL beside it would be ambiguous.
    if t.replace.is_some() && (!t.set.is_empty() || !t.del.is_empty()) {
        return Err(Error::Syntax);
    }
    Ok(t)
}

/// A lifetime in milliseconds (`PIDLE`, `PMAXAGE`: 1..=MAX_LIFETIME_S * 1000), rounded up to the
/// whole second a session stores, so a cookie's `maxAge` never ends early.
fn next_ms_as_s(args: &mut Args, what: &'static str) -> Result<u32> {
    let ms = args.next_int(what, 1, i64::from(MAX_LIFETIME_S) * 1000)?;
    Ok(((ms + 999) / 1000) as u32)
}

/// `REPLACE count field value ...` after the keyword; count 0 clears every field.
fn parse_replace<'a>(args: &mut Args<'a>) -> Result<Vec<(&'a [u8], &'a [u8])>> {
    let left = args.items.len().saturating_sub(args.pos + 1);
    let raw = args.next_arg()?;
    let n = match parse_i64(raw) {
        Some(n) if n >= 0 && (n as u64) <= (left / 2) as u64 => n as usize,
        Some(_) => return Err(Error::Count("REPLACE")),
        None => return Err(Error::NotInteger),
    };
    Ok(args
        .take(n * 2)?
        .chunks_exact(2)
        .map(|p| (p[0], p[1]))
        .collect())
}

/// `WITHFIELDS [count field ...]` after the keyword: an empty list means every field. A count is
/// recognized by being an integer (no TOUCH keyword is one).
fn parse_with_fields<'a>(args: &mut Args<'a>) -> Result<&'a [&'a [u8]]> {
    match args.items.get(args.pos) {
        Some(next) if parse_i64(next).is_some() => {
            let n = args.next_count("WITHFIELDS", 1)?;
            args.take(n)
        }
        _ => Ok(&[]),
    }
}

/// `SESSION.ROTATE key newkey [CLEARFIELDS]`: whether to clear the fields (login: the new id keeps
/// the activity, the anonymous fields go).
pub fn parse_rotate(items: &[&[u8]]) -> Result<bool> {
    match items {
        [] => Ok(false),
        [word] if is(word, "CLEARFIELDS") => Ok(true),
        _ => Err(Error::Syntax),
    }
}

/// `SESSION.UPGRADE key [FIELD name]`: the field that receives a legacy string session's value
/// (default `sess`).
pub fn parse_upgrade<'a>(items: &'a [&'a [u8]]) -> Result<&'a [u8]> {
    match items {
        [] => Ok(b"sess"),
        [word, name] if is(word, "FIELD") => Ok(name),
        _ => Err(Error::Syntax),
    }
}

/// Parses the arguments of `SESSION.ENRICH` that follow the key.
pub fn parse_enrich<'a>(items: &'a [&'a [u8]]) -> Result<Enrich<'a>> {
    let mut args = Args::new(items);
    let mut e = Enrich::default();
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "ATTRS") {
            once(e.attrs.is_some())?;
            e.attrs = Some(args.next_arg()?);
        } else if is(token, "JOIN") {
            once(!e.join.is_empty())?;
            let n = args.next_count("JOIN", 1)?;
            e.join = args.take(n)?.to_vec();
        } else if is(token, "LEAVE") {
            once(!e.leave.is_empty())?;
            let n = args.next_count("LEAVE", 1)?;
            e.leave = args.take(n)?.to_vec();
        } else if is(token, "AT") {
            once(e.at_ms.is_some())?;
            e.at_ms = Some(args.next_int("AT", 0, MAX_AT_MS)?);
        } else if is(token, "THRESHOLDS") {
            once(e.thresholds.is_some())?;
            e.thresholds = Some(next_thresholds(&mut args)?);
        } else if is(token, "NEWONLY") {
            once(e.new_only)?;
            e.new_only = true;
        } else {
            return Err(Error::Syntax);
        }
    }
    // NEWONLY qualifies a JOIN
    if e.new_only && e.join.is_empty() {
        return Err(Error::Syntax);
    }
    Ok(e)
}

/// Re-encodes an ENRICH with its time and rules explicit (the replicated form).
pub fn enrich_effect_args(e: &Enrich, rules: &Thresholds, at_ms: i64) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(12 + e.join.len() + e.leave.len());
    if let Some(attrs) = e.attrs {
        out.push(b"ATTRS".to_vec());
        out.push(attrs.to_vec());
    }
    for (word, list) in [(&b"JOIN"[..], &e.join), (&b"LEAVE"[..], &e.leave)] {
        if !list.is_empty() {
            out.push(word.to_vec());
            out.push(list.len().to_string().into_bytes());
            out.extend(list.iter().map(|g| g.to_vec()));
        }
    }
    if e.new_only {
        // the replica's registry is at the same sequence at this point of the stream
        out.push(b"NEWONLY".to_vec());
    }
    out.push(b"AT".to_vec());
    out.push(at_ms.to_string().into_bytes());
    out.push(b"THRESHOLDS".to_vec());
    out.push(rules.engaged.to_string().into_bytes());
    out.push(rules.dormant_after_s.to_string().into_bytes());
    out.push(rules.returning_gap_s.to_string().into_bytes());
    out.push(rules.interest_weight.to_string().into_bytes());
    out
}

/// `SESSION.CATALOG ADD catalog item [SCORE s] [CATEGORIES n c ...] [TTL s | EXPIREAT ms]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogAdd<'a> {
    pub catalog: &'a [u8],
    pub item: &'a [u8],
    pub score: f64,
    pub categories: Vec<&'a [u8]>,
    pub ttl_s: Option<i64>,
    pub expire_at_ms: Option<i64>,
}

/// Parses the arguments of `SESSION.CATALOG ADD` that follow `ADD`.
pub fn parse_catalog_add<'a>(items: &'a [&'a [u8]]) -> Result<CatalogAdd<'a>> {
    let mut args = Args::new(items);
    let mut add = CatalogAdd {
        catalog: args.next_arg()?,
        item: args.next_arg()?,
        ..CatalogAdd::default()
    };
    let (mut score_seen, mut cats_seen) = (false, false);
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "SCORE") {
            once(score_seen)?;
            score_seen = true;
            add.score = args.next_float(
                "SCORE",
                crate::limits::CATALOG_SCORE.0,
                crate::limits::CATALOG_SCORE.1,
            )?;
        } else if is(token, "CATEGORIES") {
            once(cats_seen)?;
            cats_seen = true;
            let n = args.next_count("CATEGORIES", 1)?;
            add.categories = args.take(n)?.to_vec();
        } else if is(token, "TTL") {
            once(add.ttl_s.is_some() || add.expire_at_ms.is_some())?;
            add.ttl_s = Some(args.next_int("TTL", 1, i64::from(MAX_LIFETIME_S))?);
        } else if is(token, "EXPIREAT") {
            once(add.ttl_s.is_some() || add.expire_at_ms.is_some())?;
            add.expire_at_ms = Some(args.next_int("EXPIREAT", 0, MAX_AT_MS)?);
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(add)
}

/// What `SESSION.SURFACE` draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum SurfaceSource<'a> {
    Catalog(&'a [u8]),
    Items(Vec<&'a [u8]>),
}

/// `SESSION.SURFACE key FROM catalog [COUNT n] [CATEGORY c] [EXPLORE r] [MAXIMPRESSIONS n]
/// [NOMARK] [WITHSCORES]` or `SESSION.SURFACE key ITEMS count item ... [COUNT n]
/// [MAXIMPRESSIONS n] [NOMARK]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface<'a> {
    pub source: SurfaceSource<'a>,
    pub count: Option<usize>,
    pub category: Option<&'a [u8]>,
    pub explore: f64,
    pub max_impressions: Option<u32>,
    pub nomark: bool,
    pub with_scores: bool,
}

/// Most items one SURFACE may return.
pub const MAX_SURFACE_COUNT: i64 = 1000;

/// Parses the arguments of `SESSION.SURFACE` that follow the key.
pub fn parse_surface<'a>(items: &'a [&'a [u8]]) -> Result<Surface<'a>> {
    let mut args = Args::new(items);
    let first = args.next_arg()?;
    let source = if is(first, "FROM") {
        SurfaceSource::Catalog(args.next_arg()?)
    } else if is(first, "ITEMS") {
        let n = args.next_count("ITEMS", 1)?;
        SurfaceSource::Items(args.take(n)?.to_vec())
    } else {
        return Err(Error::Syntax);
    };
    let from = matches!(source, SurfaceSource::Catalog(_));
    let mut s = Surface {
        source,
        count: None,
        category: None,
        explore: 0.0,
        max_impressions: None,
        nomark: false,
        with_scores: false,
    };
    let mut explore_seen = false;
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "COUNT") {
            once(s.count.is_some())?;
            s.count = Some(args.next_int("COUNT", 1, MAX_SURFACE_COUNT)? as usize);
        } else if is(token, "MAXIMPRESSIONS") {
            once(s.max_impressions.is_some())?;
            s.max_impressions = Some(args.next_int("MAXIMPRESSIONS", 1, 255)? as u32);
        } else if is(token, "NOMARK") {
            once(s.nomark)?;
            s.nomark = true;
        } else if from && is(token, "CATEGORY") {
            once(s.category.is_some())?;
            s.category = Some(args.next_arg()?);
        } else if from && is(token, "EXPLORE") {
            once(explore_seen)?;
            explore_seen = true;
            s.explore = args.next_float("EXPLORE", 0.0, 1.0)?;
        } else if from && is(token, "WITHSCORES") {
            once(s.with_scores)?;
            s.with_scores = true;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(s)
}

/// `SESSION.IMPRESS key count item ... [WIDTH w]`
pub fn parse_impress<'a>(items: &'a [&'a [u8]]) -> Result<(Vec<&'a [u8]>, Option<u32>)> {
    let mut args = Args::new(items);
    let n = args.next_count("IMPRESS", 1)?;
    let list = args.take(n)?.to_vec();
    let mut width = None;
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "WIDTH") && width.is_none() {
            width = Some(args.next_int(
                "WIDTH",
                i64::from(crate::activity::impressions::MIN_WIDTH),
                i64::from(crate::activity::impressions::MAX_WIDTH),
            )? as u32);
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok((list, width))
}

/// `JOINEDBEFORE`'s bound: a time, or the publication's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedBefore {
    At(i64),
    Now,
}

/// `SESSION.NOTIFYGROUP group id payload [TTL s | EXPIREAT ms] [MAXLEN n] [AT ms]
/// [JOINEDBEFORE ms|NOW] [JOINEDAFTER ms]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyGroup<'a> {
    pub group: &'a [u8],
    pub id: &'a [u8],
    pub payload: &'a [u8],
    pub ttl_s: Option<i64>,
    pub expire_at_ms: Option<i64>,
    pub max_len: Option<usize>,
    pub at_ms: Option<i64>,
    /// The sequence number the primary gave it (replication and AOF form).
    pub seq: Option<u64>,
    /// The ACL user that published it on the primary (replication and AOF form).
    pub publisher: Option<&'a [u8]>,
    /// Reach only members that joined strictly before this time.
    pub joined_before: Option<JoinedBefore>,
    /// Reach only members that joined at or after this time.
    pub joined_after: Option<i64>,
}

impl NotifyGroup<'_> {
    /// The join restriction at publication time `now_ms` (`NOW` resolved to it): refused when no
    /// join time could satisfy it, before any work.
    pub fn window(&self, now_ms: i64) -> Result<crate::notify::JoinWindow> {
        let mut w = crate::notify::JoinWindow::ANY;
        if let Some(after) = self.joined_after {
            w.after = after;
        }
        match self.joined_before {
            Some(JoinedBefore::At(before)) => w.before = before,
            Some(JoinedBefore::Now) => w.before = now_ms,
            None => {}
        }
        if !w.is_valid(MAX_AT_MS) {
            return Err(Error::EmptyJoinWindow);
        }
        Ok(w)
    }
}

pub fn parse_notify<'a>(items: &'a [&'a [u8]]) -> Result<NotifyGroup<'a>> {
    let mut args = Args::new(items);
    let mut n = NotifyGroup {
        group: args.next_arg()?,
        id: args.next_arg()?,
        payload: args.next_arg()?,
        ..NotifyGroup::default()
    };
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "TTL") {
            once(n.ttl_s.is_some() || n.expire_at_ms.is_some())?;
            n.ttl_s = Some(args.next_int("TTL", 1, i64::from(MAX_LIFETIME_S))?);
        } else if is(token, "EXPIREAT") {
            once(n.ttl_s.is_some() || n.expire_at_ms.is_some())?;
            n.expire_at_ms = Some(args.next_int("EXPIREAT", 0, MAX_AT_MS)?);
        } else if is(token, "MAXLEN") {
            once(n.max_len.is_some())?;
            n.max_len = Some(args.next_int("MAXLEN", 1, 100_000)? as usize);
        } else if is(token, "AT") {
            once(n.at_ms.is_some())?;
            n.at_ms = Some(args.next_int("AT", 0, MAX_AT_MS)?);
        } else if is(token, "SEQ") {
            once(n.seq.is_some())?;
            n.seq = Some(args.next_int("SEQ", 1, i64::MAX)? as u64);
        } else if is(token, "PUBLISHER") {
            once(n.publisher.is_some())?;
            n.publisher = Some(args.next_arg()?);
        } else if is(token, "JOINEDBEFORE") {
            once(n.joined_before.is_some())?;
            let raw = args.peek().ok_or(Error::Syntax)?;
            n.joined_before = Some(if is(raw, "NOW") {
                args.next_arg()?;
                JoinedBefore::Now
            } else {
                JoinedBefore::At(args.next_int("JOINEDBEFORE", 0, MAX_AT_MS)?)
            });
        } else if is(token, "JOINEDAFTER") {
            once(n.joined_after.is_some())?;
            n.joined_after = Some(args.next_int("JOINEDAFTER", 0, MAX_AT_MS)?);
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(n)
}

/// One `SESSION.INBOX`, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inbox {
    pub count: Option<usize>,
    /// `PEEK` (or its synonym `UNREAD`): list the unread ones (delivered or not) without changing
    /// anything.
    pub unread: bool,
    pub at_ms: Option<i64>,
    /// Segment rules (the replicated form; reserved for the primary and the AOF).
    pub thresholds: Option<Thresholds>,
}

/// `SESSION.INBOX key [COUNT n] [PEEK | UNREAD] [AT ms] [THRESHOLDS e d r w]`.
pub fn parse_inbox(items: &[&[u8]]) -> Result<Inbox> {
    let mut args = Args::new(items);
    let mut out = Inbox::default();
    let once = |seen: bool| if seen { Err(Error::Syntax) } else { Ok(()) };
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "COUNT") {
            once(out.count.is_some())?;
            out.count = Some(args.next_int("COUNT", 1, 100_000)? as usize);
        } else if is(token, "PEEK") || is(token, "UNREAD") {
            // one clause: `PEEK UNREAD` is a repeat, as before
            once(out.unread)?;
            out.unread = true;
        } else if is(token, "AT") {
            once(out.at_ms.is_some())?;
            out.at_ms = Some(args.next_int("AT", 0, MAX_AT_MS)?);
        } else if is(token, "THRESHOLDS") {
            once(out.thresholds.is_some())?;
            out.thresholds = Some(next_thresholds(&mut args)?);
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(out)
}

/// The four values of a `THRESHOLDS` clause, in the live ranges.
fn next_thresholds(args: &mut Args) -> Result<Thresholds> {
    let lifetime = i64::from(MAX_LIFETIME_S);
    Ok(Thresholds {
        engaged: args.next_float("engaged threshold", 0.0, 1.0)?,
        dormant_after_s: args.next_int("dormant-after", 1, lifetime)? as u32,
        returning_gap_s: args.next_int("returning-gap", 1, lifetime)? as u32,
        interest_weight: args.next_float("interest segment weight", 0.0, 1.0)?,
    })
}

/// The values of a `THRESHOLDS` clause (shortest round-trip floats).
pub fn thresholds_args(rules: &Thresholds) -> [String; 4] {
    [
        rules.engaged.to_string(),
        rules.dormant_after_s.to_string(),
        rules.returning_gap_s.to_string(),
        rules.interest_weight.to_string(),
    ]
}

/// One `SESSION.ACK`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack<'a> {
    pub group: &'a [u8],
    pub targets: Vec<crate::notify::AckTarget<'a>>,
    pub at_ms: Option<i64>,
}

/// `SESSION.ACK key group (UPTO id | IDS n id [id ...]) [AT ms]` (items start at the group).
pub fn parse_ack<'a>(items: &'a [&'a [u8]]) -> Result<Ack<'a>> {
    let mut args = Args::new(items);
    let group = args.next_arg()?;
    let mut targets = Vec::new();
    let mut at_ms = None;
    while !args.is_empty() {
        let token = args.next_arg()?;
        if is(token, "UPTO") {
            if !targets.is_empty() {
                return Err(Error::Syntax);
            }
            targets.push(crate::notify::AckTarget::Upto(args.next_arg()?));
        } else if is(token, "IDS") {
            if !targets.is_empty() {
                return Err(Error::Syntax);
            }
            let n = args.next_count("IDS", 1)?;
            targets.extend(
                args.take(n)?
                    .iter()
                    .map(|id| crate::notify::AckTarget::Id(id)),
            );
        } else if is(token, "AT") {
            if at_ms.is_some() {
                return Err(Error::Syntax);
            }
            at_ms = Some(args.next_int("AT", 0, MAX_AT_MS)?);
        } else {
            return Err(Error::Syntax);
        }
    }
    if targets.is_empty() {
        return Err(Error::Syntax);
    }
    Ok(Ack {
        group,
        targets,
        at_ms,
    })
}

/// The values of a `PARAMS` clause, in order (floats in shortest round-trip form).
pub fn params_args(p: &SketchParams) -> [String; 5] {
    [
        p.seen_capacity.to_string(),
        p.seen_error.to_string(),
        p.hll_precision.to_string(),
        p.top_n.to_string(),
        p.half_life_s.to_string(),
    ]
}

/// `PARAMS seen-capacity seen-error-rate hll-precision top-n half-life`: sketch sizing.
fn parse_params(args: &mut Args) -> Result<SketchParams> {
    Ok(SketchParams {
        seen_capacity: args.next_int(
            "seen capacity",
            1,
            i64::from(SketchParams::SEEN_CAPACITY_MAX),
        )? as u32,
        seen_error: args.next_float(
            "seen error rate",
            SketchParams::SEEN_ERROR_MIN,
            SketchParams::SEEN_ERROR_MAX,
        )?,
        hll_precision: args.next_int(
            "HyperLogLog precision",
            i64::from(MIN_PRECISION),
            i64::from(MAX_PRECISION),
        )? as u8,
        top_n: args.next_int("top-n", 1, i64::from(SketchParams::TOP_N_MAX))? as u16,
        half_life_s: args.next_int("half-life", 1, i64::from(MAX_LIFETIME_S))? as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[&'static str]) -> Result<Touch<'static>> {
        let items: Vec<&'static [u8]> = s.iter().map(|a| a.as_bytes()).collect();
        let items: &'static [&'static [u8]] = Box::leak(items.into_boxed_slice());
        parse_touch(items)
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1e3",
            b"9223372036854775808",
            b"\xff",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn full_touch_parses_case_insensitively() {
        let t = parse(&[
            "idle", "10", "MaxAge", "20", "xx", "USER", "u1", "SET", "2", "a", "1", "b", "2",
            "DEL", "1", "c", "AT", "5",
        ])
        .unwrap();
        assert_eq!(t.idle_s, Some(10));
        assert_eq!(t.maxage_s, Some(20));
        assert!(t.xx);
        assert_eq!(t.user, Some(&b"u1"[..]));
        assert_eq!(t.set, vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]);
        assert_eq!(t.del, &[&b"c"[..]]);
        assert_eq!(t.at_ms, Some(5));
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], Error)] = &[
            (&["BOGUS"], Error::Syntax),
            (&["IDLE"], Error::Syntax),
            (&["IDLE", "x"], Error::NotInteger),
            (
                &["IDLE", "0"],
                Error::OutOfRange {
                    what: "IDLE",
                    min: 1,
                    max: MAX_LIFETIME_S as i64,
                },
            ),
            (&["IDLE", "1", "IDLE", "2"], Error::Syntax),
            (&["XX", "XX"], Error::Syntax),
            (&["SET", "2", "a", "1"], Error::Count("SET")),
            (&["SET", "0"], Error::Count("SET")),
            (&["SET", "1", "a"], Error::Count("SET")),
            (&["DEL", "2", "a"], Error::Count("DEL")),
            (&["DEL", "-1", "a"], Error::Count("DEL")),
            (
                &["AT", "-1"],
                Error::OutOfRange {
                    what: "AT",
                    min: 0,
                    max: MAX_AT_MS,
                },
            ),
            (&["SET", "99999999999999999999"], Error::NotInteger),
            (&["CATEGORIES", "1", "a"], Error::Syntax),
            (&["EVENT"], Error::Syntax),
            (
                &["EVENT", "i", "CATEGORIES", "2", "a"],
                Error::Count("CATEGORIES"),
            ),
            (&["EVENT", "i", "EVENT", "j"], Error::Syntax),
            (&["PARAMS", "128", "nan", "10", "8", "60"], Error::NotFloat),
            (
                &["PARAMS", "128", "0.5", "10", "8", "60"],
                Error::OutOfRangeFloat {
                    what: "seen error rate",
                    min: 1e-9,
                    max: 0.25,
                },
            ),
            (
                &["PARAMS", "128", "0.01", "13", "8", "60"],
                Error::OutOfRange {
                    what: "HyperLogLog precision",
                    min: 4,
                    max: 12,
                },
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args).as_ref().err(), Some(want), "{args:?}");
        }
    }

    fn items(s: &[&'static str]) -> Vec<&'static [u8]> {
        s.iter().map(|a| a.as_bytes()).collect()
    }

    #[test]
    fn catalog_add_and_surface_parse() {
        let i = items(&[
            "news",
            "a1",
            "SCORE",
            "2.5",
            "CATEGORIES",
            "2",
            "x",
            "y",
            "TTL",
            "60",
        ]);
        let add = parse_catalog_add(&i).unwrap();
        assert_eq!(
            (add.score, add.categories.len(), add.ttl_s),
            (2.5, 2, Some(60))
        );
        for bad in [
            &["news"][..],
            &["n", "i", "TTL", "5", "EXPIREAT", "9"],
            &["n", "i", "SCORE", "inf"],
            &["n", "i", "FOO"],
        ] {
            assert!(parse_catalog_add(&items(bad)).is_err(), "{bad:?}");
        }
        let i = items(&[
            "FROM",
            "news",
            "COUNT",
            "5",
            "CATEGORY",
            "x",
            "EXPLORE",
            "0.2",
            "MAXIMPRESSIONS",
            "3",
            "NOMARK",
            "WITHSCORES",
        ]);
        let s = parse_surface(&i).unwrap();
        assert_eq!(
            (
                s.count,
                s.category,
                s.explore,
                s.max_impressions,
                s.nomark,
                s.with_scores
            ),
            (Some(5), Some(&b"x"[..]), 0.2, Some(3), true, true)
        );
        let i = items(&["ITEMS", "2", "a", "b", "COUNT", "1"]);
        let s = parse_surface(&i).unwrap();
        assert_eq!(s.source, SurfaceSource::Items(vec![b"a", b"b"]));
        for bad in [
            &["ITEMS", "1", "a", "EXPLORE", "0.5"][..],
            &["FROM"],
            &["FROM", "c", "COUNT", "0"],
            &["FROM", "c", "EXPLORE", "2"],
            &["BY", "c"],
        ] {
            assert!(parse_surface(&items(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_impress(&items(&["2", "a", "b", "WIDTH", "64"])).unwrap(),
            (vec![&b"a"[..], &b"b"[..]], Some(64))
        );
        assert!(parse_impress(&items(&["2", "a"])).is_err());
    }

    #[test]
    fn enrich_parses_and_its_effect_reparses() {
        let items: Vec<&[u8]> = [
            "ATTRS", "{}", "join", "2", "a", "b", "LEAVE", "1", "c", "AT", "9",
        ]
        .iter()
        .map(|s| s.as_bytes())
        .collect();
        let e = parse_enrich(&items).unwrap();
        assert_eq!(
            (e.attrs, e.join.len(), e.leave.len(), e.at_ms),
            (Some(&b"{}"[..]), 2, 1, Some(9))
        );
        let rules = Thresholds {
            engaged: 0.1 * 0.3,
            ..Thresholds::default()
        };
        let effect = enrich_effect_args(&e, &rules, 9);
        let again_items: Vec<&[u8]> = effect.iter().map(|v| v.as_slice()).collect();
        let again = parse_enrich(&again_items).unwrap();
        assert_eq!(again.thresholds, Some(rules));
        assert_eq!(
            (again.attrs, again.join, again.leave),
            (e.attrs, e.join, e.leave)
        );
        for bad in [
            &["ATTRS"][..],
            &["JOIN", "0"],
            &["THRESHOLDS", "2", "1", "1", "0.5"],
            &["NOPE"],
        ] {
            let items: Vec<&[u8]> = bad.iter().map(|s| s.as_bytes()).collect();
            assert!(parse_enrich(&items).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn params_survive_their_text_form_exactly() {
        let params = SketchParams {
            seen_error: 0.1 * 0.3,
            ..SketchParams::default()
        };
        let text = params_args(&params);
        let mut items: Vec<&[u8]> = vec![b"PARAMS"];
        items.extend(text.iter().map(|v| v.as_bytes()));
        assert_eq!(
            parse_touch(&items).unwrap().params,
            Some(params),
            "floats survive exactly"
        );
    }
}
