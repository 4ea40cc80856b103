//! Shared helpers for the integration tests: the real servers' addresses and
//! a runner for the mongoshift binary.
//!
//! The servers are started by `scripts/servers start` (the README's test
//! command does it). When they are missing the tests fail with a message
//! saying so; they never skip silently.
#![allow(dead_code)]

pub mod fidelity;
pub mod follow;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub struct Servers {
    pub rs_uri: String,
    pub standalone_uri: String,
    /// The Atlas-like replica set: auth (root, password generated per run) and requireTLS.
    pub atlas_uri: String,
    /// The CA that signed the atlas server's certificate, and one that did not.
    pub tls_ca: String,
    pub tls_other_ca: String,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
}

fn env_file() -> PathBuf {
    if let Ok(p) = std::env::var("MONGOSHIFT_ENV_FILE") {
        return PathBuf::from(p);
    }
    let tmp = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    Path::new(&tmp).join("mongoshift-servers").join("env")
}

/// The folder the test servers run in (each server's data and `mongod.log` in a subfolder).
pub fn run_dir() -> PathBuf {
    env_file()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The variables of the env file `scripts/servers start` writes.
fn env_vars() -> &'static HashMap<String, String> {
    static V: OnceLock<HashMap<String, String>> = OnceLock::new();
    V.get_or_init(|| {
        let path = env_file();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the test servers are not running ({}: {e}). Start them with `scripts/servers start`, \
                 or run the whole suite with `scripts/test`",
                path.display()
            )
        });
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                // Values the scripts must `source` safely are single-quoted.
                let v = v.trim();
                let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
                (k.trim().to_string(), v.to_string())
            })
            .collect()
    })
}

/// One variable of the env file; a missing one says to restart the servers.
pub fn env_value(k: &str) -> String {
    env_vars().get(k).cloned().unwrap_or_else(|| {
        panic!(
            "{} lacks {k}; re-run `scripts/servers start`",
            env_file().display()
        )
    })
}

/// The scripts' private Python (pinned pymongo and python-dotenv, scripts/install-pymongo);
/// `python3` with an env file from before it existed.
pub fn python() -> String {
    env_vars()
        .get("MONGOSHIFT_TEST_PYTHON")
        .cloned()
        .unwrap_or_else(|| "python3".into())
}

pub fn servers() -> &'static Servers {
    static S: OnceLock<Servers> = OnceLock::new();
    S.get_or_init(|| {
        let get = env_value;
        Servers {
            rs_uri: get("MONGOSHIFT_TEST_RS_URI"),
            standalone_uri: get("MONGOSHIFT_TEST_STANDALONE_URI"),
            atlas_uri: get("MONGOSHIFT_TEST_ATLAS_URI"),
            tls_ca: get("MONGOSHIFT_TEST_TLS_CA"),
            tls_other_ca: get("MONGOSHIFT_TEST_TLS_OTHER_CA"),
            s3_endpoint: get("MONGOSHIFT_TEST_S3_ENDPOINT"),
            s3_bucket: get("MONGOSHIFT_TEST_S3_BUCKET"),
            s3_region: get("MONGOSHIFT_TEST_S3_REGION"),
            s3_access_key: get("MONGOSHIFT_TEST_S3_ACCESS_KEY"),
            s3_secret_key: get("MONGOSHIFT_TEST_S3_SECRET_KEY"),
        }
    })
}

/// The auth-enabled legacy replica set (keyFile auth, no TLS): the tool's admin (root) and
/// the application's user (readWrite on `app_db` only), both URIs as the scripts write them.
pub struct LegacyAuth {
    pub admin_uri: String,
    pub app_uri: String,
    pub app_db: String,
}

pub fn legacy_auth() -> LegacyAuth {
    LegacyAuth {
        admin_uri: env_value("MONGOSHIFT_TEST_LEGACY_AUTH_URI"),
        app_uri: env_value("MONGOSHIFT_TEST_LEGACY_AUTH_APP_URI"),
        app_db: env_value("MONGOSHIFT_TEST_LEGACY_AUTH_APP_DB"),
    }
}

/// The password in a URI's user part, percent-encoded as it stands and decoded.
pub fn uri_password(uri: &str) -> (String, String) {
    let userinfo = uri.split_once("://").unwrap().1.rsplit_once('@').unwrap().0;
    let encoded = userinfo.split_once(':').unwrap().1.to_string();
    let decoded = encoded.replace("%2F", "/");
    (encoded, decoded)
}

/// The result of one run of the binary, with both streams as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A builder for one invocation: working directory, environment, arguments.
pub struct Cli {
    cmd: Command,
}

impl Cli {
    pub fn new(cwd: &Path) -> Cli {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongoshift"));
        cmd.current_dir(cwd).stdin(Stdio::null());
        // The tests give S3 credentials explicitly where they need them.
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            cmd.env_remove(k);
        }
        Cli { cmd }
    }

    pub fn env(mut self, k: &str, v: &str) -> Cli {
        self.cmd.env(k, v);
        self
    }

    pub fn s3_env(self) -> Cli {
        let s = servers();
        self.env("AWS_ACCESS_KEY_ID", &s.s3_access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s.s3_secret_key)
            .env("AWS_REGION", &s.s3_region)
    }

    pub fn run<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out: Output = self.cmd.args(args).output().expect("running mongoshift");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Run mongoshift in `cwd` with `args`.
pub fn mongoshift<I, S>(cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Cli::new(cwd).run(args)
}

/// A mongoshift process running in the background (a `migrate --follow`), killed if the
/// test fails before it ends.
pub struct Running(pub Option<std::process::Child>);

impl Running {
    /// SIGKILL, as a crash would end it, and reap it.
    pub fn kill_9(&mut self) {
        let mut c = self.0.take().expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mongoshift-test-")
        .tempdir()
        .expect("creating a temp dir")
}

/// Run a future to completion (tests are plain #[test] fns so that they can block on the
/// CLI processes they start). One runtime for every test of the binary, never shut down:
/// a runtime dropped under live driver clients made the driver's cleanup tasks panic
/// (SendError in its connection_requester) and print backtraces into passing tests' logs.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
    .block_on(f)
}

pub async fn client(uri: &str) -> mongodb::Client {
    mongodb::Client::with_uri_str(uri)
        .await
        .expect("connecting to the test server")
}

/// A database name unique to this test run and purpose, so parallel tests never collide.
pub fn unique_db(purpose: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t_{purpose}_{}_{nanos:x}", std::process::id())
}

/// A unique prefix in the test bucket.
pub fn s3_location(purpose: &str) -> String {
    format!("s3://{}/{}", servers().s3_bucket, unique_db(purpose))
}

/// The S3 flags every S3 command in the tests needs.
pub fn s3_flags() -> Vec<String> {
    vec![
        "--s3-endpoint".into(),
        servers().s3_endpoint.clone(),
        "--s3-path-style".into(),
        "--s3-region".into(),
        servers().s3_region.clone(),
    ]
}

/// A Store for inspecting what the CLI wrote.
pub async fn store(location: &str) -> mongoshift::storage::Store {
    let s = servers();
    std::env::set_var("AWS_ACCESS_KEY_ID", &s.s3_access_key);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &s.s3_secret_key);
    let settings = mongoshift::storage::S3Settings {
        endpoint: Some(s.s3_endpoint.clone()),
        region: Some(s.s3_region.clone()),
        path_style: true,
    };
    mongoshift::storage::Store::open(
        &mongoshift::storage::Location::parse(location).unwrap(),
        &settings,
    )
    .await
    .expect("opening the store")
}

/// Every file below `dir`, recursively, as (path, bytes).
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(read_tree(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// Insert documents into `db.coll` on the server at `uri`.
pub fn insert(uri: &str, db: &str, coll: &str, docs: Vec<mongodb::bson::Document>) {
    block_on(async {
        client(uri)
            .await
            .database(db)
            .collection::<mongodb::bson::Document>(coll)
            .insert_many(docs)
            .await
            .expect("inserting test documents");
    });
}

/// A stock mongo-tools binary (`mongodump`, `mongorestore` 100.8.0): `$MONGODUMP` /
/// `$MONGORESTORE`, else the project's shared copy at `../shared/tools/mongo-tools-100.8.0/`,
/// else `PATH`. Interoperability is part of what the suite proves, so a missing tool is a
/// failure that says where to get it, never a skip.
pub fn stock_tool(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(name.to_ascii_uppercase()) {
        return PathBuf::from(p);
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tools/mongo-tools-100.8.0")
        .join(name);
    if shared.is_file() {
        return shared;
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }) {
        return p;
    }
    panic!(
        "stock {name} 100.8.0 not found: it is expected at {} (the shared folder beside the \
         repository), on PATH, or named by ${}. Install mongodb-database-tools 100.x or point \
         ${} at the binary",
        shared.display(),
        name.to_ascii_uppercase(),
        name.to_ascii_uppercase()
    )
}

/// Run a stock tool, echoing its output into the test log (so CI shows that it ran),
/// and fail the test with that output when it fails.
pub fn run_stock(name: &str, args: &[&str]) -> String {
    let bin = stock_tool(name);
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- stock {name} ({}):\n{text}", bin.display());
    assert!(out.status.success(), "stock {name} failed:\n{text}");
    text
}

/// The atlas server's password as it stands in its URI (percent-encoded) and decoded.
pub fn atlas_password() -> (String, String) {
    let uri = &servers().atlas_uri;
    let after = uri
        .split_once("://root:")
        .expect("the atlas URI has root's password")
        .1;
    let encoded = after.split_once('@').unwrap().0.to_string();
    let decoded = encoded.replace("%2F", "/");
    (encoded, decoded)
}

/// Fail when any server secret (the atlas and legacy-auth passwords in either form,
/// Garage's secret key) appears in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str, what: &str) {
    let (encoded, decoded) = atlas_password();
    let mut secrets = vec![encoded, decoded, servers().s3_secret_key.clone()];
    // The legacy-auth passwords, when the servers have that replica set.
    for k in [
        "MONGOSHIFT_TEST_LEGACY_AUTH_URI",
        "MONGOSHIFT_TEST_LEGACY_AUTH_APP_URI",
    ] {
        if let Some(u) = env_vars().get(k) {
            let (e, d) = uri_password(u);
            secrets.extend([e, d]);
        }
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret),
            "a server secret appears in {what} (not printed here)"
        );
    }
}

/// Per-collection `dbHash` of a database (time-series buckets included), without the
/// views' bookkeeping collection, whose `_id`s embed the database name.
pub fn hashes(uri: &str, db: &str) -> std::collections::BTreeMap<String, String> {
    use mongodb::bson::doc;
    block_on(async {
        let h = client(uri)
            .await
            .database(db)
            .run_command(doc! { "dbHash": 1 })
            .await
            .unwrap();
        h.get_document("collections")
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() != "system.views")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    })
}

/// Every collection's options and index list (no `ns`, canonical Extended JSON with
/// sorted keys), keyed by collection name.
pub fn schema_of(
    uri: &str,
    db: &str,
) -> std::collections::BTreeMap<String, (serde_json::Value, Vec<serde_json::Value>)> {
    use mongodb::bson::{doc, Bson, Document};
    fn canonical(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: std::collections::BTreeMap<String, serde_json::Value> =
                    m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.iter().map(canonical).collect())
            }
            other => other.clone(),
        }
    }
    let ext = |d: &Document| canonical(&Bson::Document(d.clone()).into_canonical_extjson());
    block_on(async {
        let c = client(uri).await;
        let d = c.database(db);
        let mut cur = d
            .run_cursor_command(doc! { "listCollections": 1 })
            .await
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        while cur.advance().await.unwrap() {
            let spec: Document = cur.deserialize_current().unwrap();
            let name = spec.get_str("name").unwrap().to_string();
            if name.starts_with("system.") {
                continue;
            }
            let mut idx = Vec::new();
            if spec.get_str("type").unwrap_or("collection") != "view" {
                let mut ic = d
                    .run_cursor_command(doc! { "listIndexes": &name })
                    .await
                    .unwrap();
                while ic.advance().await.unwrap() {
                    let mut i: Document = ic.deserialize_current().unwrap();
                    i.remove("ns");
                    idx.push(ext(&i));
                }
                idx.sort_by_key(|v| v.to_string());
            }
            out.insert(name, (ext(spec.get_document("options").unwrap()), idx));
        }
        out
    })
}

/// Load the predixi sample into `d` (scale, seed) with a unique index on `users.email`.
pub async fn load_sample(d: &mongodb::Database, scale: f64, seed: u64) {
    use mongodb::bson::{doc, Document};
    mongoshift::sample::load(d, scale, seed, |_, _| {})
        .await
        .unwrap();
    d.collection::<Document>("users")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
}

/// Fill `db.coll` on the server at `uri` with `outer × inner` documents
/// `{_id: i * inner + j, v: j, pad}`, generated server-side ($range, $unwind, $merge):
/// a million documents in seconds, without sending them.
pub fn numbered(uri: &str, db: &str, coll: &str, outer: i64, inner: i64, pad: &str) {
    use mongodb::bson::{doc, Document};
    block_on(async {
        let c = client(uri).await;
        let seed = c
            .database(db)
            .collection::<Document>(&format!("{coll}_seed"));
        seed.insert_many((0..outer).map(|i| doc! { "i": i }))
            .await
            .unwrap();
        let _: Vec<Document> = futures::TryStreamExt::try_collect(
            seed.aggregate(vec![
                doc! { "$set": { "j": { "$range": [0, inner] } } },
                doc! { "$unwind": "$j" },
                doc! { "$project": { "_id": { "$add": [ { "$multiply": ["$i", inner] }, "$j" ] }, "v": "$j", "pad": pad } },
                doc! { "$merge": { "into": coll } },
            ])
            .await
            .unwrap(),
        )
        .await
        .unwrap();
        seed.drop().await.unwrap();
    });
}

/// Documents a server stores but a decoder would change or refuse, as raw BSON, with
/// `_id`s from `first`: a top-level `Timestamp(0, 0)`, duplicate field names, regex flags
/// out of order, a string of invalid UTF-8, a binary subtype 2 whose inner length is off,
/// -0.0 and a NaN with a payload, and a top-level `$` field name.
#[allow(dead_code)]
pub fn odd_docs(first: i32) -> Vec<mongodb::bson::RawDocumentBuf> {
    use mongoshift::rawbson::Builder;
    let doc = |i: i32, f: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new();
        b.i32("_id", first + i);
        f(&mut b);
        b.finish()
    };
    vec![
        doc(0, &|b| {
            b.raw(b"ts", 0x11, &[0; 8]);
            b.raw(b"later", 0x11, &[0; 8]);
        }),
        doc(1, &|b| {
            b.i32("x", 1).i32("x", 2);
        }),
        doc(2, &|b| {
            b.raw(b"re", 0x0B, b"a.c\0xsmi\0");
        }),
        doc(3, &|b| {
            b.raw(b"bad", 0x02, &[3, 0, 0, 0, 0xff, 0xfe, 0]);
        }),
        doc(4, &|b| {
            // Subtype 2 declares 9 inner bytes but holds 2.
            b.raw(b"bin", 0x05, &[6, 0, 0, 0, 2, 9, 0, 0, 0, 1, 2]);
        }),
        doc(5, &|b| {
            b.raw(b"negzero", 0x01, &(-0.0f64).to_le_bytes());
            b.raw(b"nan", 0x01, &0x7ff8_dead_beef_0001u64.to_le_bytes());
        }),
        doc(6, &|b| {
            b.i32("$dollar", 1).i32("a.b", 2).i32("", 3);
        }),
    ]
}

/// Insert raw documents unchanged (empty timestamps kept), as mongoshift does.
#[allow(dead_code)]
pub fn insert_raw(uri: &str, db: &str, coll: &str, docs: &[mongodb::bson::RawDocumentBuf]) {
    block_on(async {
        let c = client(uri).await;
        let out = mongoshift::mongo::raw_write::insert_raw(
            &c.database(db),
            coll,
            &docs.iter().map(|d| d.as_bytes()).collect::<Vec<_>>(),
        )
        .await
        .expect("inserting raw documents");
        assert!(out.errors.is_empty(), "{}", out.summary());
    })
}

/// Every document of `db.coll` as its raw bytes, in `_id` order or in `$natural` order.
#[allow(dead_code)]
pub fn raw_docs(uri: &str, db: &str, coll: &str, natural: bool) -> Vec<Vec<u8>> {
    use futures::TryStreamExt;
    block_on(async {
        let c = client(uri).await;
        let order = if natural {
            mongodb::bson::doc! { "$natural": 1 }
        } else {
            mongodb::bson::doc! { "_id": 1 }
        };
        let coll = c
            .database(db)
            .collection::<mongodb::bson::RawDocumentBuf>(coll);
        let mut find = coll.find(mongodb::bson::doc! {});
        find = if natural {
            find.hint(mongodb::options::Hint::Keys(order))
        } else {
            find.sort(order)
        };
        find.await
            .expect("reading raw documents")
            .try_collect::<Vec<_>>()
            .await
            .expect("reading raw documents")
            .into_iter()
            .map(|d| d.into_bytes())
            .collect()
    })
}

/// A replica set's newest majority-committed optime `(t, i)`: once a tail has applied past
/// it, every write acknowledged before this call is on the target. Exact where a "caught
/// up" flag is only as fresh as the tail's last batch.
pub fn majority_optime(uri: &str) -> (u32, u32) {
    block_on(async {
        let c = client(uri).await;
        let hello = c
            .database("admin")
            .run_command(mongodb::bson::doc! { "hello": 1 })
            .await
            .expect("hello on the source");
        let ts = hello
            .get_document("lastWrite")
            .and_then(|w| w.get_document("majorityOpTime"))
            .and_then(|o| o.get_timestamp("ts"))
            .expect("hello's lastWrite.majorityOpTime.ts (a replica set)");
        (ts.time, ts.increment)
    })
}

/// Whether a run (one entry of `migrate status --output json`'s `runs`) is following, says
/// it is caught up, and has applied everything up to `at` (its `applied_optime`).
pub fn tail_applied(run: &serde_json::Value, at: (u32, u32)) -> bool {
    let o = &run["applied_optime"];
    let applied = match (o["t"].as_u64(), o["i"].as_u64()) {
        (Some(t), Some(i)) => (t, i) >= (u64::from(at.0), u64::from(at.1)),
        _ => false,
    };
    applied && run["phase"] == "following" && run["tail"]["caught_up"] == true
}
