//! Table rendering with one consistent look across commands.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width};

/// Our tables: comfy-table's, rendered so that ids stay copyable (see `Display`).
pub struct Tbl(Table);

impl std::ops::Deref for Tbl {
    type Target = Table;
    fn deref(&self) -> &Table {
        &self.0
    }
}

impl std::ops::DerefMut for Tbl {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.0
    }
}

/// Below this many columns a terminal's report is not believed (a pty that reports 0
/// collapsed a table into 1-character columns); FALLBACK_WIDTH is used instead.
const MIN_WIDTH: u16 = 40;
const FALLBACK_WIDTH: u16 = 100;
/// No word is kept whole beyond this width (a long URI may still wrap).
const MAX_WORD: usize = 60;

impl std::fmt::Display for Tbl {
    /// On a narrow terminal comfy-table breaks cells anywhere, ids and timestamps included;
    /// a column is never made narrower than its longest word, so that wrapping happens at
    /// spaces and every id stays whole (and copyable).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut t = self.0.clone();
        if !matches!(t.content_arrangement(), ContentArrangement::Disabled) {
            let widest: Vec<usize> = (0..t.column_count())
                .map(|i| {
                    let header = t
                        .header()
                        .and_then(|h| h.cell_iter().nth(i))
                        .map(|c| c.content())
                        .unwrap_or_default();
                    std::iter::once(header)
                        .chain(t.column_cells_iter(i).flatten().map(|c| c.content()))
                        .flat_map(|text| {
                            text.split_whitespace()
                                .map(|w| w.chars().count())
                                .collect::<Vec<_>>()
                        })
                        .max()
                        .unwrap_or(0)
                        .min(MAX_WORD)
                })
                .collect();
            for (col, w) in t.column_iter_mut().zip(widest) {
                if w > 0 {
                    // The boundary counts the cell's padding too.
                    let with_padding = w as u16 + col.padding_width();
                    col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(with_padding)));
                }
            }
        }
        write!(f, "{t}")
    }
}

pub fn new<I, S>(headers: I) -> Tbl
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
pub fn kv() -> Tbl {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement());
    if matches!(t.content_arrangement(), ContentArrangement::Dynamic) {
        let reported = t.width();
        set_sane_width(&mut t, reported);
    }
    Tbl(t)
}

/// A terminal reporting no (or an absurdly small) width gets FALLBACK_WIDTH.
fn set_sane_width(t: &mut Table, reported: Option<u16>) {
    match reported {
        Some(w) if w >= MIN_WIDTH => {}
        _ => {
            t.set_width(FALLBACK_WIDTH);
        }
    }
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

/// A rate as people read it: a whole number from 100 up, one decimal below ("137046",
/// "12.5"); never indicatif's four decimals.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return "0".into();
    }
    if per_sec >= 100.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.1}")
    }
}

/// A rate kept for machines (JSON, records) with one decimal: more is noise.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
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

    /// A table wrapped to 80 columns keeps every id whole (issue #27: `backups list` broke
    /// ids mid-string), and a terminal that reports 0 columns gets a sane width.
    #[test]
    fn narrow_tables_wrap_at_spaces_and_keep_ids_whole() {
        let mut t = new(["id", "time (UTC)", "databases", "state"]);
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(80);
        let id = "20261129T130220Z-nightly-predixi-before-cutover";
        t.add_row(vec![
            id,
            "2026-11-29 13:02:20",
            "predixi, predixi_social, analytics, reporting, archive",
            "complete (+oplog) and checked by a restore drill last night",
        ]);
        let text = t.to_string();
        assert!(text.contains(id), "{text}");
        assert!(text.contains("2026-11-29"), "{text}");
        let mut zero = Table::new();
        set_sane_width(&mut zero, Some(0));
        assert_eq!(zero.width(), Some(FALLBACK_WIDTH));
        let mut none = Table::new();
        set_sane_width(&mut none, None);
        assert_eq!(none.width(), Some(FALLBACK_WIDTH));
        let mut wide = Table::new();
        set_sane_width(&mut wide, Some(120));
        assert_eq!(wide.width(), None);
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration_secs(0.5), "0.50s");
        assert_eq!(duration_secs(3725.0), "1h 2m");
        assert_eq!(duration_secs(90000.0), "1d 1h");
        assert_eq!(rate(137_046.284_4), "137046");
        assert_eq!(rate(12.345), "12.3");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(round1(2.345_67), 2.3);
    }
}
