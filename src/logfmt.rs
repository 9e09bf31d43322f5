//! The human log format: `<RFC 3339 UTC time> <LEVEL> <target>: <message> k=v ...`.
//!
//! The same lines tracing-subscriber's default format writes for modgate's
//! events (modgate opens no spans), without its per-field styling layer: on
//! a cached hit that layer, and re-formatting the date for every line, cost
//! more instructions than routing and answering the request did.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter for `--log-format text` (the default).
pub struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_now(&mut w)?;
        let meta = event.metadata();
        write!(w, " {:>5} {}: ", meta.level().as_str(), meta.target())?;
        let mut v = Fields {
            w: &mut w,
            first: true,
            result: Ok(()),
        };
        event.record(&mut v);
        v.result?;
        w.write_char('\n')
    }
}

/// Writes `message` bare and every other field as ` name=value`: strings
/// quoted (Debug), `%`-fields as their Display, `?`-fields as their Debug.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn sep(&mut self) -> fmt::Result {
        if std::mem::replace(&mut self.first, false) {
            Ok(())
        } else {
            self.w.write_char(' ')
        }
    }

    fn put(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        self.result = self.sep().and_then(|()| {
            if field.name() == "message" {
                self.w.write_fmt(value)
            } else {
                write!(self.w, "{}={}", field.name(), value)
            }
        });
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.put(field, format_args!("{value}"));
        } else {
            self.put(field, format_args!("{value:?}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format_args!("{value:?}"));
    }
}

thread_local! {
    /// The last whole second formatted on this thread, and its text
    /// (`2026-11-25T00:56:28`): lines within one second reuse it.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Writes the current time as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
fn write_now(w: &mut Writer<'_>) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let _ = write_second(&mut cached.1, secs);
            cached.0 = secs;
        }
        write!(w, "{}.{micros:06}Z", cached.1)
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, in UTC.
fn write_second(out: &mut String, secs: u64) -> fmt::Result {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(secs: u64) -> String {
        let mut s = String::new();
        write_second(&mut s, secs).unwrap();
        s
    }

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(second(0), "1970-01-01T00:00:00");
        assert_eq!(second(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(second(1_709_164_799), "2024-02-28T23:59:59");
        assert_eq!(second(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(second(1_795_998_988), "2026-11-30T00:36:28");
        assert_eq!(second(4_102_444_800), "2100-01-01T00:00:00");
    }

    #[test]
    fn lines_look_like_the_default_format() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .event_format(Line)
            .finish();
        tracing::subscriber::with_default(sub, || {
            let path = "/example.com/a/@v/v1.0.0.zip";
            let none: Option<&str> = None;
            tracing::info!(target: "modgate::access", %path, status = 200u16, kind = "zip",
                user = none, ms = 0.5, "request");
            tracing::warn!(error = %"it \"broke\"", "upstream {} down", "x");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // 2026-11-25T00:56:28.427782Z  INFO target: ...
        let (ts, rest) = lines[0].split_once(' ').unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
        assert_eq!(
            rest,
            " INFO modgate::access: request path=/example.com/a/@v/v1.0.0.zip status=200 kind=\"zip\" ms=0.5"
        );
        assert!(
            lines[1].ends_with(" WARN modgate::logfmt::tests: upstream x down error=it \"broke\""),
            "{}",
            lines[1]
        );
    }
}
