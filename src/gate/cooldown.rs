//! The release cooldown: a version is held until its checksum-database record is `min_age` old, dated by the trusted-head history, never by the `.info` Time its author chose.
//!
//! # How a version's age is measured
//!
//! A version's record in the checksum database has an id, its position in
//! the append-only, signed log. modgate remembers when it first trusted
//! each tree size ([`HeadHistory`], kept current by the head watcher), so a
//! record with id `r` entered the log no later than the first-seen time of
//! the smallest watched head whose size is above `r`. That time is the
//! version's entry date; `now - entry` its age. Nobody can backdate it: the
//! author controls the `.info` Time (the commit time), not when the log
//! grew, nor when modgate saw it grow.
//!
//! # Records older than the watch (decided here)
//!
//! A record whose id is below the first head modgate ever saw was in the log
//! before modgate watched; its entry date is unknown. Holding all of those
//! for the length of the cooldown would make a fresh mirror refuse every
//! existing version for days. So such a record is **old enough**, except
//! that its `.info` Time, when given, can still hold it: a version whose
//! commit time is within `min_age` is held until that time plus `min_age`
//! (but no longer than `min_age` after the watch began: the log proves the
//! record was there by then, so a future-dated `.info` cannot hold it for
//! ever). There, and only there, the author's clock is used, and only to
//! *add* a hold — a backdated `.info` buys nothing that "older than the
//! watch" had not already granted. For records modgate watched enter the log, the
//! `.info` Time is ignored: it can never shorten a cooldown. (The other
//! option, the index.golang.org feed, needs a feed per upstream and dates
//! only what proxy.golang.org saw; the watch boundary is one point in time,
//! so the pre-watch rule stops mattering one `min_age` after a mirror's
//! first start.)
//!
//! A record beyond every watched head (possible only if the history lost
//! its newest entries) is dated now: held.
//!
//! # Exemptions
//!
//! `exempt` answers whether a module path matches the policy's exempt
//! patterns. It is a plain predicate so this module does not depend on the
//! pattern matcher (GOPRIVATE rules, `module::pattern` in the policy code):
//! the verdict passes `&|m| patterns.matches(m)`.

use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use crate::sumdb::heads::{HeadHistory, RecordDate};

/// The policy's `[cooldown]`: how old a version must be, and who is exempt.
pub struct Cooldown<'a> {
    /// Zero turns the cooldown off.
    pub min_age: Duration,
    /// True for module paths the cooldown does not apply to.
    pub exempt: &'a dyn Fn(&str) -> bool,
}

/// The version being judged.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub module: &'a str,
    pub version: &'a str,
    /// Its record id in the checksum database (`Entry.verification.record_id`,
    /// or the id of a lookup just verified).
    pub record_id: i64,
    /// The `.info` Time in Unix seconds (see [`info_time`]), if known.
    pub info_time: Option<u64>,
}

/// What dated the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeSource {
    /// The checksum log: the record was in the tree of `head_size` records,
    /// first seen at `first_seen` (Unix seconds).
    ChecksumLog { head_size: i64, first_seen: u64 },
    /// The record is beyond every head watched: dated `now`.
    NotYetWatched { newest_size: Option<i64> },
    /// The record predates the watch (its id is below `first_head_size`, or
    /// nothing was watched yet): the `.info` Time, used only there.
    InfoTime {
        first_head_size: Option<i64>,
        time: u64,
    },
    /// A private version (no checksum-database record): dated by its pin,
    /// made when modgate first fetched it.
    Pinned { at: u64 },
}

/// A version held by the cooldown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Unix seconds from which the version is served.
    pub until: u64,
    pub age_source: AgeSource,
    /// One line for people: why, since when, until when.
    pub reason: String,
}

/// Judges `subject` at `now` (Unix seconds): `None` to serve it, or the hold.
pub fn check(
    cooldown: &Cooldown<'_>,
    subject: &Subject<'_>,
    history: &HeadHistory,
    now: u64,
) -> Option<Hold> {
    let min_age = cooldown.min_age.as_secs();
    if min_age == 0 || (cooldown.exempt)(subject.module) {
        return None;
    }
    let (entered, age_source) = match history.date(subject.record_id) {
        RecordDate::FirstSeen { head } => (
            head.seen,
            AgeSource::ChecksumLog {
                head_size: head.size,
                first_seen: head.seen,
            },
        ),
        RecordDate::Beyond { newest } => (
            now,
            AgeSource::NotYetWatched {
                newest_size: Some(newest.size),
            },
        ),
        // In the log by the time the watch began, whatever .info claims.
        RecordDate::BeforeWatch { first } => (
            subject.info_time?.min(first.seen),
            AgeSource::InfoTime {
                first_head_size: Some(first.size),
                time: subject.info_time?,
            },
        ),
        RecordDate::Unwatched => (
            subject.info_time?,
            AgeSource::InfoTime {
                first_head_size: None,
                time: subject.info_time?,
            },
        ),
    };
    let until = entered.saturating_add(min_age);
    if now >= until {
        return None;
    }
    let reason = reason(subject, &age_source, now, min_age, until);
    Some(Hold {
        until,
        age_source,
        reason,
    })
}

/// Judges a private version pinned at `pinned_at` (Unix seconds) at `now`:
/// the pin is the first sight of it, as the log's head is for public ones.
pub fn check_pinned(
    cooldown: &Cooldown<'_>,
    subject: &Subject<'_>,
    pinned_at: u64,
    now: u64,
) -> Option<Hold> {
    let min_age = cooldown.min_age.as_secs();
    if min_age == 0 || (cooldown.exempt)(subject.module) {
        return None;
    }
    let until = pinned_at.saturating_add(min_age);
    if now >= until {
        return None;
    }
    let age_source = AgeSource::Pinned { at: pinned_at };
    let reason = reason(subject, &age_source, now, min_age, until);
    Some(Hold {
        until,
        age_source,
        reason,
    })
}

fn reason(s: &Subject<'_>, src: &AgeSource, now: u64, min_age: u64, until: u64) -> String {
    let dated = match *src {
        AgeSource::ChecksumLog {
            head_size,
            first_seen,
        } => format!(
            "its checksum-database record {} entered the log by {} (first seen in the tree of {head_size} records), {} ago",
            s.record_id,
            rfc3339(first_seen),
            span(now.saturating_sub(first_seen)),
        ),
        AgeSource::NotYetWatched { newest_size } => format!(
            "its checksum-database record {} is beyond every tree head watched ({}): it counts as new now",
            s.record_id,
            newest_size.map_or("none".into(), |n| format!("newest {n}")),
        ),
        AgeSource::Pinned { at } => format!(
            "this private version was first seen and pinned {}, {} ago",
            rfc3339(at),
            span(now.saturating_sub(at))
        ),
        AgeSource::InfoTime {
            first_head_size,
            time,
        } => format!(
            "its record {} predates the watch of the checksum database ({}), and its .info Time {} is {}",
            s.record_id,
            first_head_size.map_or("nothing watched yet".into(), |n| format!(
                "first tree head {n}"
            )),
            rfc3339(time),
            if time > now {
                "in the future".to_string()
            } else {
                format!("{} ago", span(now - time))
            },
        ),
    };
    format!(
        "{}@{} is in its release cooldown: {dated}; versions are served once {} old, this one from {}",
        s.module,
        s.version,
        span(min_age),
        rfc3339(until),
    )
}

/// Unix seconds as RFC 3339 (UTC, whole seconds).
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A duration for people: `3days 4h 5m` (seconds dropped past an hour).
fn span(secs: u64) -> String {
    let secs = if secs >= 3600 { secs - secs % 60 } else { secs };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The `Time` of a `.info` document in Unix seconds; `None` if the document
/// or its time does not parse (or is before 1970).
pub fn info_time(info: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Info<'a> {
        #[serde(rename = "Time", borrow)]
        time: Option<std::borrow::Cow<'a, str>>,
    }
    let info: Info<'_> = serde_json::from_slice(info).ok()?;
    let t = humantime::parse_rfc3339_weak(info.time?.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86400;
    const NOW: u64 = 1_800_000_000;
    const YEARS: u64 = 5 * 365 * DAY;

    fn never(_: &str) -> bool {
        false
    }

    fn cooldown(exempt: &dyn Fn(&str) -> bool) -> Cooldown<'_> {
        Cooldown {
            min_age: Duration::from_secs(3 * DAY),
            exempt,
        }
    }

    fn subject(record_id: i64, info_time: Option<u64>) -> Subject<'static> {
        Subject {
            module: "example.com/m",
            version: "v1.2.3",
            record_id,
            info_time,
        }
    }

    /// Watching since 30 days ago (first head 1000 records), a head a minute.
    fn watched() -> HeadHistory {
        let mut h = HeadHistory::new();
        let start = NOW - 30 * DAY;
        for i in 0..(30 * DAY / 60) {
            h.record(1000 + 10 * i as i64, start + 60 * i);
        }
        h.record(999_999, NOW);
        h
    }

    #[test]
    fn a_backdated_info_time_does_not_shorten_the_cooldown() {
        // The record entered the log just now (the newest head holds it);
        // the author claims a commit time years ago.
        let h = watched();
        let s = subject(999_000, Some(NOW - YEARS));
        let hold = check(&cooldown(&never), &s, &h, NOW + 10).expect("held");
        assert_eq!(hold.until, NOW + 3 * DAY);
        assert_eq!(
            hold.age_source,
            AgeSource::ChecksumLog {
                head_size: 999_999,
                first_seen: NOW
            }
        );
        assert!(
            hold.reason.contains("example.com/m@v1.2.3"),
            "{}",
            hold.reason
        );
        assert!(hold.reason.contains("record 999000"), "{}", hold.reason);
        assert!(hold.reason.contains("3days"), "{}", hold.reason);
        // Served once the log says it is old enough, whatever .info says.
        assert!(check(&cooldown(&never), &s, &h, NOW + 3 * DAY).is_none());
        let future = subject(999_000, Some(NOW + YEARS));
        assert!(check(&cooldown(&never), &future, &h, NOW + 3 * DAY).is_none());
    }

    #[test]
    fn an_honest_new_version_is_held_then_served() {
        let h = watched();
        // Entered the log about two days ago (a head a minute: dated within one).
        let two_days_ago = NOW - 2 * DAY;
        let id = 1000 + 10 * ((two_days_ago - (NOW - 30 * DAY)) / 60) as i64 - 5;
        let s = subject(id, Some(two_days_ago - 3600));
        let hold = check(&cooldown(&never), &s, &h, NOW).expect("held");
        let AgeSource::ChecksumLog { first_seen, .. } = hold.age_source else {
            panic!("{:?}", hold.age_source);
        };
        assert!(first_seen >= two_days_ago - 60 && first_seen <= two_days_ago + 60);
        assert_eq!(hold.until, first_seen + 3 * DAY);
        assert!(check(&cooldown(&never), &s, &h, hold.until).is_none());
        assert!(check(&cooldown(&never), &s, &h, hold.until - 1).is_some());
    }

    #[test]
    fn exempt_modules_and_a_zero_cooldown_are_served() {
        let h = watched();
        let s = subject(999_000, None);
        let internal = |m: &str| m.starts_with("example.com/");
        assert!(check(&cooldown(&internal), &s, &h, NOW).is_none());
        let off = Cooldown {
            min_age: Duration::ZERO,
            exempt: &never,
        };
        assert!(check(&off, &s, &h, NOW).is_none());
        let other = Subject {
            module: "other.example/m",
            ..s
        };
        assert!(check(&cooldown(&internal), &other, &h, NOW).is_some());
    }

    #[test]
    fn records_older_than_the_watch_are_old_enough() {
        // A fresh mirror: its first head was seen a minute ago.
        let mut fresh = HeadHistory::new();
        fresh.record(740_257, NOW - 60);
        let c = cooldown(&never);
        // An old version (honest .info years back, or none): served.
        assert!(check(&c, &subject(12_345, Some(NOW - YEARS)), &fresh, NOW).is_none());
        assert!(check(&c, &subject(12_345, None), &fresh, NOW).is_none());
        // Nothing watched at all: the same rule.
        let none = HeadHistory::new();
        assert!(check(&c, &subject(12_345, None), &none, NOW).is_none());
        // A pre-watch record whose own .info says it is a day old: held by
        // that time (the only place .info Time counts, and only to hold).
        let hold = check(&c, &subject(740_000, Some(NOW - DAY)), &fresh, NOW).expect("held");
        assert_eq!(hold.until, NOW + 2 * DAY);
        assert_eq!(
            hold.age_source,
            AgeSource::InfoTime {
                first_head_size: Some(740_257),
                time: NOW - DAY
            }
        );
        assert!(
            hold.reason.contains("predates the watch"),
            "{}",
            hold.reason
        );
        let hold = check(&c, &subject(1, Some(NOW - DAY)), &none, NOW).expect("held");
        assert!(
            hold.reason.contains("nothing watched yet"),
            "{}",
            hold.reason
        );
        // A future .info Time holds no longer than min_age after the watch
        // began: the log shows the record was there by then.
        let hold = check(&c, &subject(740_000, Some(NOW + YEARS)), &fresh, NOW).expect("held");
        assert_eq!(hold.until, NOW - 60 + 3 * DAY);
        assert!(hold.reason.contains("in the future"), "{}", hold.reason);
        // Once the cooldown has passed since the mirror's first head, every
        // pre-watch record is old by the log too (the rule stops mattering).
        assert!(
            check(
                &c,
                &subject(740_000, Some(NOW - DAY)),
                &fresh,
                NOW + 2 * DAY
            )
            .is_none()
        );
        let future = subject(740_000, Some(NOW + YEARS));
        assert!(check(&c, &future, &fresh, NOW - 60 + 3 * DAY).is_none());
    }

    #[test]
    fn a_record_beyond_every_watched_head_counts_as_new() {
        let mut h = HeadHistory::new();
        h.record(100, NOW - 10 * DAY);
        let hold =
            check(&cooldown(&never), &subject(500, Some(NOW - YEARS)), &h, NOW).expect("held");
        assert_eq!(hold.until, NOW + 3 * DAY);
        assert_eq!(
            hold.age_source,
            AgeSource::NotYetWatched {
                newest_size: Some(100)
            }
        );
    }

    #[test]
    fn info_times_parse() {
        assert_eq!(
            info_time(br#"{"Version":"v1.0.0","Time":"2019-10-10T14:26:51Z"}"#),
            Some(1_570_717_611)
        );
        assert_eq!(
            info_time(br#"{"Version":"v1.0.0","Time":"2019-10-10T14:26:51.5+00:00"}"#),
            Some(1_570_717_611)
        );
        assert_eq!(
            info_time(br#"{"Version":"v1.0.0","Time":"1901-01-01T00:00:00Z"}"#),
            None
        );
        assert_eq!(info_time(br#"{"Version":"v1.0.0"}"#), None);
        assert_eq!(
            info_time(br#"{"Version":"v1.0.0","Time":"yesterday"}"#),
            None
        );
        assert_eq!(info_time(b"not json"), None);
    }
}
