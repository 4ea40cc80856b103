//! Sample data shaped like the predixi application (users, markets, bets,
//! transactions, comments), for the demo, the tests and the benchmarks.
//!
//! Deterministic for a given seed, and built as raw BSON so that loading
//! gigabytes for a benchmark is limited by the server, not by us.

use std::str::FromStr;

use anyhow::{Context, Result};
use mongodb::bson::{oid::ObjectId, rawdoc, DateTime, Decimal128, RawArrayBuf, RawDocumentBuf};
use mongodb::Database;

/// Documents per collection at scale 1.0.
pub const BASE_COUNTS: [(&str, u64); 5] = [
    ("users", 2000),
    ("markets", 500),
    ("bets", 5000),
    ("transactions", 3000),
    ("comments", 1500),
];

const WORDS: [&str; 16] = [
    "yes",
    "no",
    "odds",
    "market",
    "win",
    "chess",
    "board",
    "task",
    "café",
    "日本",
    "señal",
    "élection",
    "trend",
    "bet",
    "price",
    "🚀",
];
const BATCH: usize = 2000;

/// splitmix64: tiny, fast, and good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len() as u64) as usize]
    }
    pub fn words(&mut self, max_words: u64) -> String {
        let n = 1 + self.below(max_words);
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn oid(rng: &mut Rng, base: u32, i: u64) -> ObjectId {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&base.to_be_bytes());
    b[4..8].copy_from_slice(&(rng.next_u64() as u32).to_be_bytes());
    b[8..].copy_from_slice(&(i as u32).to_be_bytes());
    ObjectId::from_bytes(b)
}

fn date(rng: &mut Rng) -> DateTime {
    // Spread over 2026.
    DateTime::from_millis(1_767_225_600_000 + rng.below(365 * 86_400) as i64 * 1000)
}

fn money(rng: &mut Rng, max_cents: u64) -> Decimal128 {
    let cents = rng.below(max_cents);
    Decimal128::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).expect("valid decimal")
}

/// One document of `collection`, number `i`.
pub fn document(collection: &str, i: u64, rng: &mut Rng, refs: &Refs) -> RawDocumentBuf {
    let id = oid(rng, 0x6b02_0000, i);
    match collection {
        "users" => {
            let mut tags = RawArrayBuf::new();
            for _ in 0..=rng.below(4) {
                tags.push(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
            rawdoc! {
                "_id": id,
                "google_id": format!("g-{i:07}"),
                "email": format!("user{i}@example.com"),
                "name": rng.words(3),
                "created_at": date(rng),
                "balance": money(rng, 10_000_000),
                "tags": tags,
                "profile": { "country": rng.pick(&["US", "BR", "JP", "DE", "FR"]), "age": (18 + rng.below(60)) as i32,
                             "prefs": { "lang": "en", "dark": rng.below(2) == 0 } },
                "score": rng.next_u64() as i64 >> 24,
            }
        }
        "markets" => rawdoc! {
            "_id": id,
            "title": rng.words(6),
            "status": rng.pick(&["open", "closed", "resolved"]),
            "category": rng.pick(&["sports", "politics", "crypto", "culture"]),
            "created_at": date(rng),
            "end_time": date(rng),
            "creator_id": refs.user(rng),
            "volume": rng.unit() * 1_000_000.0,
            "location": { "type": "Point", "coordinates": [rng.unit() * 360.0 - 180.0, rng.unit() * 170.0 - 85.0] },
            "outcomes": [ { "name": "yes", "price": rng.unit() }, { "name": "no", "price": rng.unit() } ],
        },
        "bets" => rawdoc! {
            "_id": id,
            "user_id": refs.user(rng),
            "market_id": refs.market(rng),
            "created_at": date(rng),
            "status": rng.pick(&["pending", "won", "lost"]),
            "outcome": rng.pick(&["yes", "no"]),
            "amount": money(rng, 1_000_000),
            "odds": rng.unit(),
        },
        "transactions" => rawdoc! {
            "_id": id,
            "user_id": refs.user(rng),
            "order_id": format!("ord-{i:07}"),
            "status": rng.pick(&["pending", "settled", "failed"]),
            "created_at": date(rng),
            "amount_lamports": (rng.next_u64() >> 24) as i64,
        },
        _ => {
            // Comments carry most of the bytes: mixed-length text, as real ones do.
            let len = [20, 80, 300, 1500][rng.below(4) as usize];
            let mut text = rng.words(8);
            while text.len() < len {
                text.push(' ');
                text.push_str(&rng.words(8));
            }
            rawdoc! {
                "_id": id,
                "market_id": refs.market(rng),
                "user_id": refs.user(rng),
                "created_at": date(rng),
                "text": text,
            }
        }
    }
}

/// Foreign keys point at plausible ids (they need not exist for a backup test).
pub struct Refs {
    users: u64,
    markets: u64,
}

impl Refs {
    fn user(&self, rng: &mut Rng) -> ObjectId {
        let i = rng.below(self.users);
        oid(&mut Rng::new(i), 0x6b02_0000, i)
    }
    fn market(&self, rng: &mut Rng) -> ObjectId {
        let i = rng.below(self.markets);
        oid(&mut Rng::new(i + 1_000_000), 0x6b02_0000, i)
    }
}

/// The per-collection counts at `scale`.
pub fn counts(scale: f64) -> Vec<(&'static str, u64)> {
    BASE_COUNTS
        .iter()
        .map(|(c, n)| (*c, ((*n as f64) * scale).round().max(1.0) as u64))
        .collect()
}

/// Insert the sample into `db`, calling `progress(collection, inserted)` after each batch.
pub async fn load(
    db: &Database,
    scale: f64,
    seed: u64,
    mut progress: impl FnMut(&str, u64),
) -> Result<Vec<(&'static str, u64)>> {
    let counts = counts(scale);
    let refs = Refs {
        users: counts[0].1,
        markets: counts[1].1,
    };
    for (coll_name, n) in &counts {
        let coll = db.collection::<RawDocumentBuf>(coll_name);
        let mut rng = Rng::new(seed ^ fxhash(coll_name));
        let mut i = 0;
        while i < *n {
            let end = (i + BATCH as u64).min(*n);
            let docs: Vec<RawDocumentBuf> = (i..end)
                .map(|k| document(coll_name, k, &mut rng, &refs))
                .collect();
            coll.insert_many(docs)
                .ordered(false)
                .await
                .with_context(|| {
                    format!("inserting sample documents into {}.{coll_name}", db.name())
                })?;
            i = end;
            progress(coll_name, i);
        }
    }
    Ok(counts)
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let refs = Refs {
            users: 10,
            markets: 5,
        };
        for c in ["users", "markets", "bets", "transactions", "comments"] {
            let a = document(c, 3, &mut Rng::new(7), &refs);
            let b = document(c, 3, &mut Rng::new(7), &refs);
            assert_eq!(a.as_bytes(), b.as_bytes());
            assert!(a.get("_id").unwrap().is_some());
        }
    }

    #[test]
    fn counts_scale() {
        assert_eq!(counts(0.001)[0], ("users", 2));
        assert_eq!(counts(2.0)[2], ("bets", 10_000));
    }
}
