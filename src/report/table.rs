//! Table rendering with one consistent look across commands.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

pub fn new<I, S>(headers: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = kv();
    t.set_header(headers);
    t
}

/// Wrap to the terminal's width on a terminal; never wrap into a pipe or file,
/// where the width is unknown (and guessing it made comfy-table crawl).
fn arrangement() -> ContentArrangement {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    }
}

/// A two-column key/value table without a header row.
pub fn kv() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement());
    t
}

/// Human-readable byte counts (binary units, as `du -h`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Seconds as "3d 4h", "12m 5s", "0.42s".
pub fn duration_secs(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.2}s");
    }
    let s = secs as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// An oplog timestamp as a person reads it: `2026-11-22 04:10:00 UTC (#3)`, the
/// ordinal only when it is not the first of its second.
pub fn timestamp(t: u32, i: u32) -> String {
    let time = chrono::DateTime::from_timestamp(i64::from(t), 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{t}s"));
    if i > 1 {
        format!("{time} (#{i})")
    } else {
        time
    }
}

/// "1 member", "2 members": a count with its noun in the right number.
pub fn count(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_timestamps() {
        assert_eq!(count(1u64, "member", "members"), "1 member");
        assert_eq!(count(3u64, "member", "members"), "3 members");
        assert_eq!(timestamp(0, 1), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(86_400, 7), "1970-01-02 00:00:00 UTC (#7)");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration_secs(0.5), "0.50s");
        assert_eq!(duration_secs(3725.0), "1h 2m");
        assert_eq!(duration_secs(90000.0), "1d 1h");
    }
}
