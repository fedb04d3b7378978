//! The session: classic fields, lifecycle and activity in one value.
//!
//! Everything here is deterministic given its inputs (the time is always passed in), so a replica or
//! an AOF replay that applies the same touch at the same time builds the same session.

pub mod calculated;
pub mod fields;

use crate::activity::impressions::Impressions;
use crate::activity::{Activity, EventPrep, SketchParams};
use crate::error::{Error, Result};
use crate::mem::alloc_size;
use crate::session::calculated::Calculated;
use crate::session::fields::Fields;

/// Largest `IDLE` / `MAXAGE`: ten years, far below any overflow of millisecond arithmetic.
pub const MAX_LIFETIME_S: u32 = crate::limits::LIFETIME_S.1;
/// How far in the future `AT` may lie (clock skew between an application and Redis).
pub const MAX_FUTURE_SKEW_MS: i64 = 60_000;

/// Default `session.max-session-size`: 1 MiB of field names and values.
pub const DEFAULT_MAX_SESSION_SIZE: usize = 1 << 20;

/// Limits and defaults that come from the module's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub default_idle_s: u32,
    pub default_maxage_s: u32,
    pub max_fields: usize,
    pub max_field_size: usize,
    pub max_categories: usize,
    /// Bytes of field names and values one session may hold (`session.max-session-size`).
    pub max_session_size: usize,
    pub sketch: SketchParams,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_idle_s: 1800,
            default_maxage_s: 86_400,
            max_fields: 1024,
            max_field_size: 65_536,
            max_categories: 8,
            max_session_size: DEFAULT_MAX_SESSION_SIZE,
            sketch: SketchParams::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub idle_s: u32,
    pub maxage_s: u32,
    pub user: Option<Box<[u8]>>,
    pub fields: Fields,
    /// Created at the first event; inline, so that an event needs no pointer hop to reach it.
    pub activity: Option<Activity>,
    /// What the last ENRICH computed; allocated at the first ENRICH.
    pub calculated: Option<Box<Calculated>>,
    /// Explicit group memberships (ENRICH ... JOIN / LEAVE), sorted by name, each with the time
    /// (unix ms) its first JOIN was applied at (0: saved before join times were kept).
    pub groups: Vec<(Box<[u8]>, i64)>,
    /// Impression counts of surfaced items; allocated at the first recorded impression.
    pub impressions: Option<Box<Impressions>>,
    /// Notification delivery: per group, the sequence number of the last one received; sorted.
    pub cursors: Vec<(Box<[u8]>, u64)>,
    /// Notification read state (`SESSION.ACK`): per group, sorted, what was marked read among
    /// the delivered ones.
    pub reads: Vec<(Box<[u8]>, ReadMark)>,
}

/// A session's read state in one group: every notification with a sequence up to `upto` is read,
/// and so is each sequence in `ids` (sorted, all above `upto`, only live notifications' ones are
/// kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadMark {
    pub upto: u64,
    pub ids: Vec<u64>,
}

impl ReadMark {
    pub fn is_read(&self, seq: u64) -> bool {
        seq <= self.upto || self.ids.binary_search(&seq).is_ok()
    }
}

/// One `SESSION.TOUCH`, parsed and free of Redis types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Touch<'a> {
    pub idle_s: Option<u32>,
    pub maxage_s: Option<u32>,
    pub xx: bool,
    pub user: Option<&'a [u8]>,
    pub set: Vec<(&'a [u8], &'a [u8])>,
    pub del: &'a [&'a [u8]],
    pub event: Option<&'a [u8]>,
    pub categories: &'a [&'a [u8]],
    /// Sketch sizing for a session whose activity starts with this touch (replication form).
    pub params: Option<SketchParams>,
    pub at_ms: Option<i64>,
    /// `REPLACE count field value ...`: the whole new field set (count 0 clears every field).
    /// Excludes `SET` and `DEL`. Values are bounded by `max_session_size`, names by
    /// `max_field_size`.
    pub replace: Option<Vec<(&'a [u8], &'a [u8])>>,
    /// `WITHFIELDS [count field ...]`: the reply adds the fields, all of them (an empty list) or
    /// the named ones.
    pub with_fields: Option<&'a [&'a [u8]]>,
}

/// What a touch did, for the reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TouchOutcome {
    /// Time since the previous activity (0 for a new session, never negative).
    pub idle_ms: i64,
    /// Absolute expiry of the key after the touch.
    pub deadline_ms: i64,
    /// Whether the touch's EVENT item was (probably) seen before; false without EVENT.
    pub seen_before: bool,
    /// The sketch sizing used when this touch created the session's activity.
    pub created_activity: Option<SketchParams>,
}

/// The distinct fields of a `REPLACE` (or `SET`) list in name order, the last value of a repeated
/// name winning: O(N log N) (a stable sort, then one pass).
pub fn replaced_fields<'a>(pairs: &[(&'a [u8], &'a [u8])]) -> Vec<(&'a [u8], &'a [u8])> {
    let mut sorted: Vec<(&[u8], &[u8])> = pairs.to_vec();
    // stable: equal names keep their command order, so the last of a run is the last given
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(&[u8], &[u8])> = Vec::with_capacity(sorted.len());
    for (name, value) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == name => last.1 = value,
            _ => out.push((name, value)),
        }
    }
    out
}

/// The time a command acts at: `AT` when given, else the server clock. `AT` more than a minute
/// ahead is refused unless `trusted` (replication stream, AOF replay), where the primary's clock
/// is the truth whatever this server's clock says.
pub fn effective_time(at_ms: Option<i64>, wall_ms: i64, trusted: bool) -> Result<i64> {
    match at_ms {
        None => Ok(wall_ms),
        Some(at) if !trusted && at > wall_ms.saturating_add(MAX_FUTURE_SKEW_MS) => {
            Err(Error::FutureTime)
        }
        Some(at) => Ok(at),
    }
}

impl Session {
    pub fn new(now_ms: i64, idle_s: u32, maxage_s: u32) -> Self {
        Session {
            created_ms: now_ms,
            last_seen_ms: now_ms,
            idle_s,
            maxage_s,
            user: None,
            fields: Fields::default(),
            activity: None,
            calculated: None,
            groups: Vec::new(),
            impressions: None,
            cursors: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// A new session for `touch`, with the configured defaults where the touch names none.
    pub fn for_touch(touch: &Touch, now_ms: i64, settings: &Settings) -> Self {
        Session::new(
            now_ms,
            touch.idle_s.unwrap_or(settings.default_idle_s),
            touch.maxage_s.unwrap_or(settings.default_maxage_s),
        )
    }

    /// Whether the session has outlived `created + maxage` at `now_ms`: it is then gone for every
    /// command, whatever happened to its key's TTL (`PERSIST`, `EXPIRE` with a later time).
    pub fn past_maxage(&self, now_ms: i64) -> bool {
        now_ms
            >= self
                .created_ms
                .saturating_add(i64::from(self.maxage_s) * 1000)
    }

    /// The key's expiry: the sliding idle deadline, capped by the absolute maximum age.
    pub fn deadline_ms(&self) -> i64 {
        let idle = self.last_seen_ms + i64::from(self.idle_s) * 1000;
        let cap = self.created_ms + i64::from(self.maxage_s) * 1000;
        idle.min(cap)
    }

    /// Refuses a touch that would break a limit, before anything changes.
    /// Asks for all of the struct's cache lines at once (see `crate::mem::prefetch`), before anything
    /// reads it: a touch reads fields spread over most of them (limits, lifetime, activity).
    pub fn prefetch(&self) {
        crate::mem::prefetch::slice(std::slice::from_ref(self), 16);
    }

    /// Where an event's reads land: the struct, and the sketches' hot parts (see `crate::mem::hints`).
    pub fn hot_spans(&self) -> crate::mem::hints::Spans {
        let me = crate::mem::hints::span_of(std::slice::from_ref(self), 16);
        match &self.activity {
            Some(a) => [
                me,
                a.seen.hot_span(),
                a.distinct.hot_span(),
                a.interests.hot_span(),
            ],
            None => [me, (0, 0), (0, 0), (0, 0)],
        }
    }

    /// Prepares `touch`'s event in the activity sketches, their cache lines requested (see
    /// `Activity::prepare_event`), for `apply_touch_prepared`. None without an event or without
    /// sketches yet. Reads the struct: call it after `prefetch`.
    pub fn prepare_event(&self, touch: &Touch) -> Option<EventPrep> {
        match (touch.event, self.activity.as_ref()) {
            (Some(item), Some(activity)) => {
                Some(activity.prepare_event(item, !touch.categories.is_empty()))
            }
            _ => None,
        }
    }

    /// The expiry `touch` at `now_ms` will give this session (what `apply_touch` returns as
    /// `deadline_ms`), known before it is applied.
    pub fn deadline_after(&self, touch: &Touch, now_ms: i64) -> i64 {
        let last_seen = self.last_seen_ms.max(now_ms);
        let idle = last_seen + i64::from(touch.idle_s.unwrap_or(self.idle_s)) * 1000;
        let cap = self.created_ms + i64::from(touch.maxage_s.unwrap_or(self.maxage_s)) * 1000;
        idle.min(cap)
    }

    pub fn check_touch(&self, touch: &Touch, settings: &Settings) -> Result<()> {
        let too_big = |b: &[u8]| b.len() > settings.max_field_size;
        let names = touch.set.iter().flat_map(|(n, v)| [*n, *v]);
        let singles = touch.event.into_iter().chain(touch.user);
        let mut all = names
            .chain(touch.del.iter().copied())
            .chain(singles)
            .chain(touch.categories.iter().copied());
        if all.any(too_big) {
            return Err(Error::FieldTooLarge {
                limit: settings.max_field_size,
            });
        }
        if touch.categories.len() > settings.max_categories {
            return Err(Error::TooManyCategories {
                limit: settings.max_categories,
            });
        }
        // Only growth is refused: a session left above a lowered limit can still be refreshed,
        // overwritten and trimmed. More REPLACE pairs than that is refused before the names are
        // deduplicated (as a JOIN count is), so the refusal costs nothing.
        let most = settings.max_fields.max(self.fields.len());
        if touch.replace.as_ref().is_some_and(|p| p.len() > most) {
            return Err(Error::TooManyFields {
                limit: settings.max_fields,
            });
        }
        let after = self.fields_after(touch);
        if after > settings.max_fields && after > self.fields.len() {
            return Err(Error::TooManyFields {
                limit: settings.max_fields,
            });
        }
        self.check_replace_and_size(touch, settings)
    }

    /// The limits of `REPLACE` (names by `max_field_size`, count by `max_fields`) and the total
    /// size limit (`max_session_size`, growth only) of `SET` and `REPLACE`.
    fn check_replace_and_size(&self, touch: &Touch, settings: &Settings) -> Result<()> {
        if let Some(pairs) = &touch.replace {
            if pairs.iter().any(|(n, _)| n.len() > settings.max_field_size) {
                return Err(Error::FieldTooLarge {
                    limit: settings.max_field_size,
                });
            }
            let count = replaced_fields(pairs).len();
            if count > settings.max_fields && count > self.fields.len() {
                return Err(Error::TooManyFields {
                    limit: settings.max_fields,
                });
            }
        }
        if touch.replace.is_none() && touch.set.is_empty() {
            return Ok(());
        }
        let before = self.fields_bytes();
        let after = self.fields_bytes_after(touch);
        if after > settings.max_session_size && after > before {
            return Err(Error::SessionTooLarge {
                limit: settings.max_session_size,
            });
        }
        Ok(())
    }

    /// Bytes of field names and values the session holds.
    pub fn fields_bytes(&self) -> usize {
        self.fields.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// Bytes of field names and values once `touch`'s REPLACE, or SET then DEL, are applied.
    fn fields_bytes_after(&self, touch: &Touch) -> usize {
        if let Some(pairs) = &touch.replace {
            return replaced_fields(pairs)
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum();
        }
        // the last SET of each name wins; DEL removes after SET
        let set = replaced_fields(&touch.set);
        let set_names: Vec<&[u8]> = set.iter().map(|(n, _)| *n).collect();
        let mut total = self.fields_bytes();
        for ((name, value), old) in set.iter().zip(self.fields.get_many(&set_names)) {
            let old = old.map(|v| name.len() + v.len());
            total = total.saturating_sub(old.unwrap_or(0)) + name.len() + value.len();
        }
        let mut del: Vec<&[u8]> = touch.del.to_vec();
        del.sort_unstable();
        del.dedup();
        for (name, old) in del.iter().zip(self.fields.get_many(&del)) {
            if let Ok(i) = set.binary_search_by(|(n, _)| (*n).cmp(name)) {
                if let Some((n, v)) = set.get(i) {
                    total = total.saturating_sub(n.len() + v.len());
                }
            } else if let Some(v) = old {
                total = total.saturating_sub(name.len() + v.len());
            }
        }
        total
    }

    /// How many fields the session holds once `touch`'s SET then DEL are applied.
    fn fields_after(&self, touch: &Touch) -> usize {
        if let Some(pairs) = &touch.replace {
            return replaced_fields(pairs).len();
        }
        let set_names: Vec<&[u8]> = touch.set.iter().map(|(n, _)| *n).collect();
        let mut added: Vec<&[u8]> = set_names
            .iter()
            .zip(self.fields.contains_many(&set_names))
            .filter(|(_, exists)| !exists)
            .map(|(n, _)| *n)
            .collect();
        added.sort_unstable();
        added.dedup();
        let mut removed: Vec<&[u8]> = touch
            .del
            .iter()
            .zip(self.fields.contains_many(touch.del))
            .filter(|(n, exists)| *exists || added.binary_search(n).is_ok())
            .map(|(n, _)| *n)
            .collect();
        removed.sort_unstable();
        removed.dedup();
        self.fields.len() + added.len() - removed.len()
    }

    /// Applies a checked touch at `now_ms`. `is_new` tells whether this session was just created;
    /// `sketch` sizes the activity sketches if this touch's event is the session's first.
    pub fn apply_touch(
        &mut self,
        touch: &Touch,
        now_ms: i64,
        is_new: bool,
        sketch: &SketchParams,
    ) -> TouchOutcome {
        self.apply_touch_prepared(touch, now_ms, is_new, sketch, None)
    }

    /// `apply_touch` with the event prepared by `prepare_event` on this session, unchanged since.
    pub fn apply_touch_prepared(
        &mut self,
        touch: &Touch,
        now_ms: i64,
        is_new: bool,
        sketch: &SketchParams,
        prep: Option<EventPrep>,
    ) -> TouchOutcome {
        let idle_ms = if is_new {
            0
        } else {
            (now_ms - self.last_seen_ms).max(0)
        };
        if let Some(idle) = touch.idle_s {
            self.idle_s = idle;
        }
        if let Some(maxage) = touch.maxage_s {
            self.maxage_s = maxage;
        }
        if let Some(user) = touch.user {
            if self.user.as_deref() != Some(user) {
                self.user = Some(user.into());
            }
        }
        if let Some(pairs) = &touch.replace {
            // sorted, distinct: one pass builds the new buffer
            self.fields =
                Fields::from_sorted(replaced_fields(pairs).into_iter()).unwrap_or_default();
        }
        self.fields.apply(&touch.set, touch.del);
        if !touch.set.is_empty() || !touch.del.is_empty() || touch.replace.is_some() {
            self.fields.shrink();
        }
        let mut seen_before = false;
        let mut created_activity = None;
        if let Some(item) = touch.event {
            let activity = self.activity.get_or_insert_with(|| {
                let params = touch.params.unwrap_or(*sketch);
                created_activity = Some(params);
                Activity::new(&params)
            });
            seen_before = match &prep {
                Some(prep) => activity.record_prepared(prep, touch.categories, now_ms),
                None => activity.record(item, touch.categories, now_ms),
            };
        }
        self.last_seen_ms = self.last_seen_ms.max(now_ms);
        TouchOutcome {
            idle_ms,
            deadline_ms: self.deadline_ms(),
            seen_before,
            created_activity,
        }
    }

    /// Total events recorded.
    pub fn events(&self) -> u64 {
        self.activity.as_ref().map_or(0, |a| a.events)
    }

    /// Distinct items, estimated.
    pub fn unique(&self) -> u64 {
        self.activity.as_ref().map_or(0, |a| a.unique())
    }

    /// Bytes this value owns on the heap, as the allocator rounds them (for `MEMORY USAGE`).
    pub fn heap_size(&self) -> usize {
        alloc_size(std::mem::size_of::<Session>())
            + self.user.as_ref().map_or(0, |u| alloc_size(u.len()))
            + self.fields.heap_size()
            + self.activity.as_ref().map_or(0, |a| a.heap_size())
            + self.calculated.as_ref().map_or(0, |c| c.heap_size())
            + alloc_size(self.groups.capacity() * std::mem::size_of::<(Box<[u8]>, i64)>())
            + self
                .groups
                .iter()
                .map(|(g, _)| alloc_size(g.len()))
                .sum::<usize>()
            + self.impressions.as_ref().map_or(0, |i| i.heap_size())
            + alloc_size(self.cursors.capacity() * std::mem::size_of::<(Box<[u8]>, u64)>())
            + self
                .cursors
                .iter()
                .map(|(g, _)| alloc_size(g.len()))
                .sum::<usize>()
            + alloc_size(self.reads.capacity() * std::mem::size_of::<(Box<[u8]>, ReadMark)>())
            + self
                .reads
                .iter()
                .map(|(g, m)| alloc_size(g.len()) + alloc_size(m.ids.capacity() * 8))
                .sum::<usize>()
    }

    /// Records one impression of each item; `width` sizes the sketch if this is the first.
    /// Returns the width when this call created the sketch.
    pub fn record_impressions(&mut self, items: &[&[u8]], width: u32) -> Option<u32> {
        let mut created = None;
        let sketch = self.impressions.get_or_insert_with(|| {
            let sketch = Impressions::new(width);
            created = Some(sketch.width());
            Box::new(sketch)
        });
        for item in items {
            sketch.record(item);
        }
        created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch<'a>() -> Touch<'a> {
        Touch::default()
    }

    #[test]
    fn hot_spans_point_at_the_session_and_its_sketches() {
        let mut s = Session::new(0, 60, 3600);
        let spans = s.hot_spans();
        assert_eq!(spans[0].0, std::ptr::from_ref(&s) as usize / 64 * 64);
        assert!(spans[0].1 >= 1);
        assert_eq!(&spans[1..], &[(0, 0); 3], "no sketches yet");
        let t = Touch {
            event: Some(b"item"),
            categories: &[b"news"],
            ..Touch::default()
        };
        s.apply_touch(&t, 1_000, false, &SketchParams::default());
        let spans = s.hot_spans();
        let a = s.activity.as_ref().expect("activity");
        assert_eq!(spans[1], a.seen.hot_span());
        assert!(spans[1].1 >= 1, "the filter's newest layer");
        assert!(spans[2].1 >= 1, "the sparse HyperLogLog");
        assert_eq!(spans[3].0, a.interests.entries.as_ptr() as usize / 64 * 64);
    }

    #[test]
    fn a_prepared_touch_equals_a_plain_one() {
        // TOUCH's order: prepare, then apply with fields, user and lifetimes changing in between
        // the preparation and the record; small filter so that layers grow during the run.
        let params = SketchParams {
            seen_capacity: 4,
            ..SketchParams::default()
        };
        let (mut plain, mut prepared) = (Session::new(0, 60, 86_400), Session::new(0, 60, 86_400));
        let names: [&[u8]; 3] = [b"a", b"b", b"c"];
        let cats: [&[u8]; 2] = [b"news", b"golf"];
        for i in 0..300usize {
            let item = format!("item:{}", (i * 31) % 53);
            let value = format!("v{i}");
            let user = format!("u{}", i % 3);
            let t = Touch {
                idle_s: (i % 5 == 0).then_some(30 + i as u32),
                maxage_s: (i % 7 == 0).then_some(90_000),
                user: (i % 4 == 0).then_some(user.as_bytes()),
                set: if i % 2 == 0 {
                    vec![(names[i % 3], value.as_bytes())]
                } else {
                    vec![]
                },
                del: if i % 3 == 0 { &names[1..2] } else { &[] },
                event: (i % 6 != 5).then_some(item.as_bytes()),
                categories: &cats[..i % 3],
                ..Touch::default()
            };
            let now = 1_000 + i as i64 * 7_000;
            let a = plain.apply_touch(&t, now, false, &params);
            let prep = prepared.prepare_event(&t);
            let deadline = prepared.deadline_after(&t, now);
            let b = prepared.apply_touch_prepared(&t, now, false, &params, prep);
            assert_eq!(a, b, "outcome at {i}");
            assert_eq!(deadline, b.deadline_ms, "predicted deadline at {i}");
            assert_eq!(plain, prepared, "session at {i}");
        }
        let layers = plain.activity.as_ref().map_or(0, |a| a.seen.layers().len());
        assert!(layers > 1, "the run crossed a layer boundary");
    }

    #[test]
    fn deadline_after_predicts_the_applied_deadline() {
        // (created, last_seen, idle, maxage) x (touch idle, touch maxage) x now
        for (created, last, idle, maxage) in [(1_000, 1_000, 10, 25), (0, 50_000, 3600, 60)] {
            for (t_idle, t_maxage) in [
                (None, None),
                (Some(5), None),
                (None, Some(7)),
                (Some(1), Some(99_999)),
            ] {
                for now in [0, 999, 1_000, 20_000, 50_000, 70_000, 10_000_000] {
                    let mut s = Session::new(created, idle, maxage);
                    s.last_seen_ms = last;
                    let t = Touch {
                        idle_s: t_idle,
                        maxage_s: t_maxage,
                        event: Some(b"item"),
                        ..Touch::default()
                    };
                    let predicted = s.deadline_after(&t, now);
                    let out = s.apply_touch(&t, now, false, &SketchParams::default());
                    assert_eq!(
                        predicted, out.deadline_ms,
                        "{created} {last} {idle} {maxage} {t_idle:?} {t_maxage:?} {now}"
                    );
                    assert_eq!(out.deadline_ms, s.deadline_ms());
                }
            }
        }
    }

    #[test]
    fn deadline_slides_and_is_capped_by_maxage() {
        let mut s = Session::new(1_000, 10, 25);
        assert_eq!(s.deadline_ms(), 11_000);
        let out = s.apply_touch(&touch(), 9_000, false, &SketchParams::default());
        assert_eq!(out.idle_ms, 8_000);
        assert_eq!(out.deadline_ms, 19_000);
        let out = s.apply_touch(&touch(), 20_000, false, &SketchParams::default());
        assert_eq!(out.deadline_ms, 26_000, "capped at created + maxage");
    }

    #[test]
    fn out_of_order_time_never_moves_last_seen_back() {
        let mut s = Session::new(10_000, 10, 100);
        let out = s.apply_touch(&touch(), 5_000, false, &SketchParams::default());
        assert_eq!(out.idle_ms, 0);
        assert_eq!(s.last_seen_ms, 10_000);
    }

    #[test]
    fn idle_and_maxage_are_stored_when_given() {
        let mut s = Session::new(0, 10, 100);
        let t = Touch {
            idle_s: Some(5),
            maxage_s: Some(50),
            ..touch()
        };
        s.apply_touch(&t, 1_000, false, &SketchParams::default());
        assert_eq!((s.idle_s, s.maxage_s), (5, 50));
        s.apply_touch(&touch(), 2_000, false, &SketchParams::default());
        assert_eq!((s.idle_s, s.maxage_s), (5, 50));
    }

    #[test]
    fn field_limits_are_checked_against_the_result() {
        let settings = Settings {
            max_fields: 2,
            max_field_size: 4,
            ..Settings::default()
        };
        let mut s = Session::new(0, 10, 100);
        let t = Touch {
            set: vec![(b"a", b"1"), (b"b", b"2")],
            ..touch()
        };
        s.check_touch(&t, &settings).unwrap();
        s.apply_touch(&t, 0, true, &SketchParams::default());
        let more = Touch {
            set: vec![(b"c", b"3")],
            ..touch()
        };
        assert_eq!(
            s.check_touch(&more, &settings),
            Err(Error::TooManyFields { limit: 2 })
        );
        let swap = Touch {
            set: vec![(b"c", b"3"), (b"c", b"4")],
            del: &[b"a", b"a"],
            ..touch()
        };
        s.check_touch(&swap, &settings).unwrap();
        let set_then_del = Touch {
            set: vec![(b"c", b"3"), (b"d", b"4")],
            del: &[b"c", b"d"],
            ..touch()
        };
        s.check_touch(&set_then_del, &settings).unwrap();
        // above a lowered limit: refresh, overwrite and delete still work, growth does not
        let lower = Settings {
            max_fields: 1,
            ..settings
        };
        s.check_touch(&Touch::default(), &lower).unwrap();
        s.check_touch(
            &Touch {
                set: vec![(b"a", b"9")],
                ..touch()
            },
            &lower,
        )
        .unwrap();
        s.check_touch(
            &Touch {
                del: &[b"a"],
                ..touch()
            },
            &lower,
        )
        .unwrap();
        assert!(s
            .check_touch(
                &Touch {
                    set: vec![(b"z", b"9")],
                    ..touch()
                },
                &lower
            )
            .is_err());
        let long_user = Touch {
            user: Some(b"12345"),
            ..touch()
        };
        assert_eq!(
            s.check_touch(&long_user, &settings),
            Err(Error::FieldTooLarge { limit: 4 })
        );
        let big = Touch {
            set: vec![(b"a", b"12345")],
            ..touch()
        };
        assert_eq!(
            s.check_touch(&big, &settings),
            Err(Error::FieldTooLarge { limit: 4 })
        );
    }

    #[test]
    fn set_then_del_in_one_touch_deletes() {
        let mut s = Session::new(0, 10, 100);
        let t = Touch {
            set: vec![(b"a", b"1")],
            del: &[b"a"],
            ..touch()
        };
        s.apply_touch(&t, 0, true, &SketchParams::default());
        assert!(s.fields.is_empty());
    }

    #[test]
    fn at_in_the_future_is_refused_unless_trusted() {
        assert_eq!(effective_time(None, 5, false), Ok(5));
        assert_eq!(effective_time(Some(60_000), 0, false), Ok(60_000));
        assert_eq!(
            effective_time(Some(60_001), 0, false),
            Err(Error::FutureTime)
        );
        assert_eq!(effective_time(Some(60_001), 0, true), Ok(60_001));
    }

    #[test]
    fn a_repeated_del_name_counts_once_against_the_size_limit() {
        let settings = Settings {
            max_session_size: 1000,
            ..Settings::default()
        };
        let mut s = Session::new(0, 10, 100);
        let a = vec![b'a'; 800];
        let x = vec![b'x'; 99];
        let init = Touch {
            set: vec![(b"a", &a), (b"x", &x)],
            ..touch()
        };
        s.check_touch(&init, &settings).unwrap();
        s.apply_touch(&init, 0, true, &SketchParams::default());
        assert_eq!(s.fields_bytes(), 901);
        // SET y (+400) DEL x x x x: the result holds a + y = 1201 bytes, over the limit
        let y = vec![b'y'; 399];
        let grow = Touch {
            set: vec![(b"y", &y)],
            del: &[b"x", b"x", b"x", b"x"],
            ..touch()
        };
        assert_eq!(
            s.check_touch(&grow, &settings),
            Err(Error::SessionTooLarge { limit: 1000 })
        );
        // a repeated SET name counts its last value, once
        let y_small = vec![b'y'; 10];
        let twice = Touch {
            set: vec![(b"y", &y), (b"y", &y_small)],
            ..touch()
        };
        s.check_touch(&twice, &settings).unwrap();
        s.apply_touch(&twice, 1, false, &SketchParams::default());
        assert_eq!(s.fields.get(b"y"), Some(&y_small[..]));
    }

    #[test]
    fn replace_keeps_the_last_value_of_each_name_in_name_order() {
        let pairs: Vec<(&[u8], &[u8])> =
            vec![(b"b", b"1"), (b"a", b"2"), (b"b", b"3"), (b"c", b"4")];
        assert_eq!(
            replaced_fields(&pairs),
            vec![(&b"a"[..], &b"2"[..]), (b"b", b"3"), (b"c", b"4")]
        );
        let mut s = Session::new(0, 10, 100);
        let t = Touch {
            replace: Some(pairs),
            ..touch()
        };
        s.apply_touch(&t, 0, true, &SketchParams::default());
        let got: Vec<(&[u8], &[u8])> = s.fields.iter().collect();
        assert_eq!(
            got,
            vec![(&b"a"[..], &b"2"[..]), (b"b", b"3"), (b"c", b"4")]
        );
    }

    #[test]
    fn a_replace_count_above_the_limit_is_refused_even_with_repeated_names() {
        let settings = Settings {
            max_fields: 2,
            ..Settings::default()
        };
        let s = Session::new(0, 10, 100);
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"a", b"2"), (b"a", b"3")];
        let t = Touch {
            replace: Some(pairs),
            ..touch()
        };
        assert_eq!(
            s.check_touch(&t, &settings),
            Err(Error::TooManyFields { limit: 2 })
        );
        let ok = Touch {
            replace: Some(vec![(b"a", b"1"), (b"a", b"2")]),
            ..touch()
        };
        s.check_touch(&ok, &settings).unwrap();
    }
}
