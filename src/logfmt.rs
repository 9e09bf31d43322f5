//! The two log line formats, written straight into the line buffer:
//!
//! - [`Line`] (text): `<RFC 3339 UTC time> <LEVEL> <target>: <message> k=v ...`
//! - [`Json`]: one JSON object per line, `{"timestamp", "level", "fields": {"message", …}, "target"}`
//!
//! They are the lines tracing-subscriber's own default and JSON formats
//! write for modgate's events (modgate opens no spans), minus their
//! per-field machinery: on a cached hit, that machinery and re-formatting
//! the date for every line cost more instructions than routing and answering
//! the request did (callgrind: 78k instructions per hit before, 57k with
//! these in text and 75k → ~60k in JSON).

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
        let mut v = Fields::new(&mut w, false);
        event.record(&mut v);
        v.result?;
        w.write_char('\n')
    }
}

/// The event formatter for `--log-format json`.
pub struct Json;

impl<S, N> FormatEvent<S, N> for Json
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
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        write_now(&mut w)?;
        write!(
            w,
            "\",\"level\":\"{}\",\"fields\":{{",
            meta.level().as_str()
        )?;
        let mut v = Fields::new(&mut w, true);
        event.record(&mut v);
        v.result?;
        w.write_str("},\"target\":")?;
        json_plain(&mut w, meta.target())?;
        w.write_str("}\n")
    }
}

/// One field's value, as the two formats tell them apart.
enum Value<'a> {
    /// A string field: quoted (Debug) in text, a JSON string in JSON.
    Str(&'a str),
    /// An integer: bare in both.
    Int(bool, u64),
    /// A finite number: bare in both.
    F64(f64),
    /// A boolean: bare in both.
    Bare(fmt::Arguments<'a>),
    /// A `%`/`?` field or an error, already turned into text: bare in text,
    /// a JSON string in JSON.
    Text(fmt::Arguments<'a>),
}

/// Writes an event's fields. Text: `message` bare, the others as
/// ` name=value`. JSON: `"name":value` separated by commas.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    json: bool,
    first: bool,
    result: fmt::Result,
}

impl<'a, 'w> Fields<'a, 'w> {
    fn new(w: &'a mut Writer<'w>, json: bool) -> Self {
        Fields {
            w,
            json,
            first: true,
            result: Ok(()),
        }
    }

    fn put(&mut self, field: &Field, value: Value<'_>) {
        if self.result.is_err() {
            return;
        }
        let first = std::mem::replace(&mut self.first, false);
        self.result = if self.json {
            self.put_json(first, field, value)
        } else {
            self.put_text(first, field, value)
        };
    }

    fn put_text(&mut self, first: bool, field: &Field, value: Value<'_>) -> fmt::Result {
        if !first {
            self.w.write_char(' ')?;
        }
        let name = field.name();
        if name != "message" {
            self.w.write_str(name)?;
            self.w.write_char('=')?;
        }
        match value {
            Value::Str(v) if name == "message" => self.w.write_str(v),
            Value::Str(v) => debug_str(self.w, v),
            Value::Int(neg, v) => int(self.w, neg, v),
            Value::F64(v) => float(self.w, v),
            Value::Bare(v) | Value::Text(v) => self.w.write_fmt(v),
        }
    }

    fn put_json(&mut self, first: bool, field: &Field, value: Value<'_>) -> fmt::Result {
        if !first {
            self.w.write_char(',')?;
        }
        json_plain(self.w, field.name())?;
        self.w.write_char(':')?;
        match value {
            Value::Str(v) => json_plain(self.w, v),
            Value::Int(neg, v) => int(self.w, neg, v),
            Value::F64(v) => float(self.w, v),
            Value::Bare(v) => self.w.write_fmt(v),
            Value::Text(v) => json_str(self.w, v),
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Str(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::Int(false, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::Int(value < 0, value.unsigned_abs()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bare(format_args!("{value}")));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those become strings there.
        if value.is_finite() {
            self.put(field, Value::F64(value));
        } else {
            self.put(field, Value::Text(format_args!("{value}")));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Text(format_args!("{value}")));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::Text(format_args!("{value:?}")));
    }
}

/// Plain printable ASCII, nothing to escape in a Rust-quoted or JSON string
/// (the common case: paths, module names, field names).
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `"{s:?}"`, without the formatting machinery when there is nothing to escape.
fn debug_str(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if !plain(s) {
        return write!(w, "{s:?}");
    }
    w.write_char('"')?;
    w.write_str(s)?;
    w.write_char('"')
}

/// An integer as `Display` writes it.
fn int(w: &mut Writer<'_>, neg: bool, mut v: u64) -> fmt::Result {
    let mut buf = [0u8; 21];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    w.write_str(std::str::from_utf8(&buf[i..]).map_err(|_| fmt::Error)?)
}

/// A finite `f64` as `Display` writes it. A value that is a whole number of
/// thousandths (`duration_ms`: milliseconds to the microsecond) is written
/// from that integer: `Display` writes the shortest decimal that reads back
/// as the same `f64`, and for a nearest `f64` of a decimal with at most 15
/// significant digits that is the decimal itself (trailing zeros dropped).
fn float(w: &mut Writer<'_>, v: f64) -> fmt::Result {
    let u = (v * 1000.0).round();
    if !(v.is_sign_positive() && u < 1e15 && u / 1000.0 == v) {
        return write!(w, "{v}");
    }
    let u = u as u64;
    int(w, false, u / 1000)?;
    let frac = u % 1000;
    if frac == 0 {
        return Ok(());
    }
    let digits = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    let mut end = digits.len();
    while digits[end - 1] == b'0' {
        end -= 1;
    }
    w.write_str(std::str::from_utf8(&digits[..end]).map_err(|_| fmt::Error)?)
}

/// A JSON string of `s`, copied as is when there is nothing to escape.
fn json_plain(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if !plain(s) {
        return json_str(w, format_args!("{s}"));
    }
    w.write_char('"')?;
    w.write_str(s)?;
    w.write_char('"')
}

/// Writes `value` as a JSON string, escaping as it goes (no buffer).
fn json_str(w: &mut Writer<'_>, value: fmt::Arguments<'_>) -> fmt::Result {
    struct Escape<'a, 'w>(&'a mut Writer<'w>);
    impl fmt::Write for Escape<'_, '_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut start = 0;
            for (i, b) in s.bytes().enumerate() {
                let esc = match b {
                    b'"' => "\\\"",
                    b'\\' => "\\\\",
                    b'\n' => "\\n",
                    b'\r' => "\\r",
                    b'\t' => "\\t",
                    0..=0x1f => "",
                    _ => continue,
                };
                self.0.write_str(&s[start..i])?;
                if esc.is_empty() {
                    write!(self.0, "\\u{b:04x}")?;
                } else {
                    self.0.write_str(esc)?;
                }
                start = i + 1;
            }
            self.0.write_str(&s[start..])
        }
    }
    w.write_char('"')?;
    Escape(w).write_fmt(value)?;
    w.write_char('"')
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

    fn with_writer(f: impl FnOnce(&mut Writer<'_>) -> fmt::Result) -> String {
        let mut s = String::new();
        f(&mut Writer::new(&mut s)).unwrap();
        s
    }

    /// The fast paths write what `Display`/`Debug` would.
    #[test]
    fn numbers_and_strings_as_the_standard_library_writes_them() {
        let mut floats = vec![
            0.0, -0.0, 0.5, 1.0, 57.0, 0.001, 0.057, 0.1, 0.3, 12.345, 1e-7, 1e14,
        ];
        floats.extend([
            1e15,
            1e300,
            -2.5,
            123456.789,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            f64::MAX,
        ]);
        // Durations as access_log rounds them: every microsecond up to 2 s, then sparser.
        let micros =
            (0..2_000_000u64).chain((2_000_000..10_000_000_000_000).step_by(7_777_777_777));
        floats.extend(micros.map(|us| (us as f64).round() / 1e3));
        for v in floats {
            assert_eq!(with_writer(|w| float(w, v)), format!("{v}"), "{v:e}");
        }
        for v in [0u64, 1, 9, 10, 99, 100, 65535, u64::MAX] {
            assert_eq!(with_writer(|w| int(w, false, v)), v.to_string());
        }
        for v in [0i64, -1, -10, 42, i64::MIN, i64::MAX] {
            assert_eq!(
                with_writer(|w| int(w, v < 0, v.unsigned_abs())),
                v.to_string()
            );
        }
        for s in [
            "", "zip", "a b", "it's", "q\"q", "b\\s", "t\tn\n", "\u{1}", "é", "\u{7f}", "~",
        ] {
            assert_eq!(with_writer(|w| debug_str(w, s)), format!("{s:?}"));
            let json = with_writer(|w| json_plain(w, s));
            assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s, "{json}");
        }
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The same events through our formatter and tracing-subscriber's own.
    fn emit_samples() {
        let path = "/example.com/a/@v/v1.0.0.zip";
        let none: Option<&str> = None;
        let client: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        tracing::info!(target: "modgate::access", %path, status = 200u16, kind = "zip",
            user = none, client = %client, ms = 0.5, neg = -3i64, ok = true, "request");
        tracing::warn!(error = %"it \"broke\"\n\ttab \\ \u{1}", list = ?["a", "b"],
            nan = f64::NAN, "upstream {} down", "x");
    }

    #[test]
    fn json_lines_match_tracing_subscribers_own() {
        let ours = Buf::default();
        let theirs = Buf::default();
        let (o, t) = (ours.clone(), theirs.clone());
        let sub = tracing_subscriber::fmt()
            .with_writer(move || o.clone())
            .event_format(Json)
            .finish();
        tracing::subscriber::with_default(sub, emit_samples);
        let sub = tracing_subscriber::fmt()
            .json()
            .with_writer(move || t.clone())
            .finish();
        tracing::subscriber::with_default(sub, emit_samples);
        let parse = |b: &Buf| -> Vec<serde_json::Value> {
            String::from_utf8(b.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let (mut ours, mut theirs) = (parse(&ours), parse(&theirs));
        assert_eq!((ours.len(), theirs.len()), (2, 2));
        for (o, t) in ours.iter_mut().zip(theirs.iter_mut()) {
            assert!(o["timestamp"].as_str().unwrap().ends_with('Z'));
            o["timestamp"] = serde_json::Value::Null;
            t["timestamp"] = serde_json::Value::Null;
            // tracing-subscriber writes a NaN as null; a string says more.
            if t["fields"]["nan"].is_null() && o["fields"]["nan"] == "NaN" {
                t["fields"]["nan"] = "NaN".into();
            }
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn lines_look_like_the_default_format() {
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
