//! Test environment: a fresh database on the throwaway MariaDB and a
//! private Redis server per test, plus helpers to run the real binaries.
//!
//! The MariaDB server comes from `scripts/services.sh up` (its URL is read
//! from `TEST_DATABASE_URL`, else `DATABASE_URL` in the project's `.env`).
//! Each test gets its own database (dropped at the end) and its own
//! `redis-server` on a free port (killed at the end), so tests run in
//! parallel without seeing each other's keys or rows.
//!
//! (Long on purpose: the whole harness every integration test shares.)

#![allow(dead_code)]

pub mod api;
pub mod browser;
pub mod cluster;
pub mod moto;
pub mod replica;
pub mod sentinel;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The whisper model the binaries get (`WHISPER_MODEL`, else the base model
/// scripts/test.sh fetched into `.cache/models`).
pub fn whisper_model() -> PathBuf {
    std::env::var("WHISPER_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| project_root().join(".cache/models/ggml-base.bin"))
}

/// Root of the repository.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Directory holding the built `enqueue`, `scheduler`, `worker` and `api`.
pub fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_enqueue")).parent().unwrap().to_path_buf();
    for bin in ["scheduler", "worker", "api"] {
        assert!(
            dir.join(bin).exists(),
            "{} missing: build every binary first (cargo build --workspace --bins)",
            dir.join(bin).display()
        );
    }
    dir
}

/// The MariaDB server URL (without database) the tests use.
fn server_url() -> String {
    let url = std::env::var("TEST_DATABASE_URL").ok().or_else(|| {
        let env = std::fs::read_to_string(project_root().join(".env")).ok()?;
        env.lines().find_map(|l| l.strip_prefix("DATABASE_URL=").map(str::to_string))
    });
    let url = url.expect("no database: run scripts/services.sh up (or set TEST_DATABASE_URL)");
    // Strip the database name.
    let (base, _) = url.rsplit_once('/').expect("DATABASE_URL has a database name");
    base.to_string()
}

/// Host and port of a mysql:// URL.
fn host_port(url: &str) -> (String, String) {
    let rest = url.split("://").nth(1).unwrap();
    let hostport = rest.rsplit('@').next().unwrap();
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    (host.to_string(), port.to_string())
}

/// redis-cli's reply to `args` on the server at `port` (empty if it is down).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where a test's Redis comes from.
enum RedisSetup {
    /// A `redis-server` of the test's own on this port.
    Own(u16),
    /// A deployment the test runs itself: its `REDIS_URL` and a server port.
    External(String, u16),
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's database, Redis and storage directory.
pub struct TestEnv {
    pub database: String,
    pub database_url: String,
    pub redis_url: String,
    pub redis_port: u16,
    pub storage: PathBuf,
    pub dir: PathBuf,
    redis: Option<Child>,
    host: String,
    port: String,
    /// More variables for every binary (`set_env`).
    extra_env: Vec<(String, String)>,
}

impl TestEnv {
    /// Creates the database (migrated), starts Redis, makes a storage dir.
    pub fn new() -> TestEnv {
        TestEnv::on_server(&server_url())
    }

    /// Like [`TestEnv::new`], on the MariaDB server at `server`
    /// (`mysql://user@host:port`).
    pub fn on_server(server: &str) -> TestEnv {
        let redis_port = free_port();
        TestEnv::build(server, RedisSetup::Own(redis_port))
    }

    /// Like [`TestEnv::new`], with Redis at `redis_url`, run by the test
    /// (a Sentinel or Cluster deployment); `cli_port` is the server
    /// [`TestEnv::redis`] talks to.
    pub fn with_redis(redis_url: &str, cli_port: u16) -> TestEnv {
        TestEnv::build(&server_url(), RedisSetup::External(redis_url.to_string(), cli_port))
    }

    /// On the MariaDB server at `server`, with Redis at `redis_url` run by
    /// the test (see [`TestEnv::with_redis`]).
    pub fn on_server_with_redis(server: &str, redis_url: &str, cli_port: u16) -> TestEnv {
        TestEnv::build(server, RedisSetup::External(redis_url.to_string(), cli_port))
    }

    fn build(server: &str, redis_setup: RedisSetup) -> TestEnv {
        let server = server.to_string();
        let (host, port) = host_port(&server);
        let database = format!(
            "test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 100_000
        );
        let dir = project_root().join(".local/tests").join(&database);
        std::fs::create_dir_all(&dir).unwrap();
        let (redis_url, redis_port, redis) = match redis_setup {
            RedisSetup::Own(port) => {
                (format!("redis://127.0.0.1:{port}/0"), port, Some(start_redis(port, &dir)))
            }
            RedisSetup::External(url, port) => (url, port, None),
        };
        let mut env = TestEnv {
            database_url: format!("{server}/{database}"),
            database,
            redis_url,
            redis_port,
            storage: dir.join("storage"),
            dir,
            redis,
            host,
            port,
            extra_env: Vec::new(),
        };
        env.sql_exec(
            &format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                env.database
            ),
            false,
        );
        env.wait_for_redis();
        let out = env.enqueue(&["migrate"]);
        assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        env
    }

    /// Kills this test's Redis (as a crash would: no save) and starts a new,
    /// empty one on the same port.
    pub fn restart_redis(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        self.redis = Some(start_redis(self.redis_port, &self.dir));
        self.wait_for_redis();
    }

    fn wait_for_redis(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.redis(&["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    /// Environment variables for the binaries (the project's `.env` is not
    /// read: the working directory is the test's own).
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(bin_dir().join(bin));
        cmd.current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("STORAGE_URL", format!("file://{}", self.storage.display()))
            .env("RUST_LOG", std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .env("WHISPER_MODEL", whisper_model());
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Sets `name=value` for every binary started from now on.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != name);
        self.extra_env.push((name.to_string(), value.to_string()));
    }

    /// Creates `count` noop tasks (`extra`: more `enqueue noop` flags) and
    /// returns their ids in creation order.
    pub fn noop(&self, count: u32, extra: &[&str]) -> Vec<String> {
        let count = count.to_string();
        let mut args = vec!["noop", "--count", count.as_str(), "--json"];
        args.extend_from_slice(extra);
        let out = self.enqueue(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["task_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Runs `enqueue ARGS...` to completion.
    pub fn enqueue(&self, args: &[&str]) -> Output {
        self.command("enqueue").args(args).output().expect("running enqueue")
    }

    /// Starts `bin ARGS...` in the background (stderr to a log file in the
    /// test directory, named after `log_name`).
    pub fn spawn(&self, bin: &str, args: &[&str], log_name: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{log_name}.log"))).unwrap();
        self.command(bin).args(args).stdout(Stdio::null()).stderr(log).spawn().expect("spawning")
    }

    /// Every file in this test's `file://` storage, as storage keys (paths
    /// relative to the root), sorted.
    pub fn stored_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![self.storage.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else {
                    found.push(
                        entry
                            .path()
                            .strip_prefix(&self.storage)
                            .unwrap()
                            .to_string_lossy()
                            .to_string(),
                    );
                }
            }
        }
        found.sort();
        found
    }

    /// A `mariadb` client on this test's database, for tests that hold a
    /// session open (feed it statements on stdin).
    pub fn sql_client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "--no-defaults",
            "-N",
            "-B",
            "--unbuffered",
            "-uroot",
            "-h",
            &self.host,
            "-P",
            &self.port,
            &self.database,
        ]);
        cmd
    }

    /// Runs SQL and returns rows of tab-separated columns.
    pub fn sql(&self, query: &str) -> Vec<Vec<String>> {
        let out = self.sql_exec(query, true);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| line.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// The single number a query returns.
    pub fn count(&self, query: &str) -> i64 {
        let rows = self.sql(query);
        rows[0][0].parse().unwrap_or_else(|_| panic!("not a number: {rows:?}"))
    }

    fn sql_exec(&self, query: &str, in_database: bool) -> Output {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-N", "-B", "-uroot", "-h", &self.host, "-P", &self.port]);
        if in_database {
            cmd.arg(&self.database);
        }
        let out = cmd.arg("-e").arg(query).output().expect("mariadb client");
        assert!(
            out.status.success(),
            "SQL failed: {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a redis-cli command against this test's Redis.
    pub fn redis(&self, args: &[&str]) -> String {
        redis_cli(self.redis_port, args)
    }

    /// Waits for `child` to exit within `limit`; kills it and panics if not.
    pub fn wait_exit(
        &self,
        child: &mut Child,
        limit: Duration,
        what: &str,
    ) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{what} did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `cond` every 50 ms until true or `limit` passes.
    pub fn wait_until(&self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        if !std::thread::panicking() {
            let _ = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-h", &self.host, "-P", &self.port, "-e"])
                .arg(format!("DROP DATABASE IF EXISTS {}", self.database))
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts a redis-server without persistence on `port`.
fn start_redis(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (run scripts/services.sh up to install it)")
}

/// A private MariaDB server for tests that stop and restart the database
/// (the shared one serves the other tests running at the same time).
pub struct PrivateMariaDb {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl PrivateMariaDb {
    /// Initialises a data directory under `parent` and starts the server.
    pub fn start(parent: &Path) -> PrivateMariaDb {
        PrivateMariaDb::start_with(parent, &[])
    }

    /// Like [`PrivateMariaDb::start`], with more `mariadbd` options (e.g.
    /// `--ssl-cert=...`), kept for every restart.
    pub fn start_with(parent: &Path, extra_args: &[String]) -> PrivateMariaDb {
        let dir = parent.join("mariadb");
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db");
        assert!(status.success(), "mariadb-install-db failed");
        let mut db =
            PrivateMariaDb { port: free_port(), dir, child: None, extra_args: extra_args.to_vec() };
        db.restart();
        db
    }

    /// Starts the server (again) and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let mariadbd = if Path::new("/usr/sbin/mariadbd").exists() {
            "/usr/sbin/mariadbd".into()
        } else {
            "mariadbd".to_string()
        };
        let child = Command::new(mariadbd)
            .args([
                "--no-defaults",
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
            ])
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!("--log-error={}", self.dir.join("err.log").display()))
            .arg(format!("--port={}", self.port))
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new("mariadb-admin")
                .args([
                    "--no-defaults",
                    "-uroot",
                    "-h127.0.0.1",
                    &format!("-P{}", self.port),
                    "ping",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("private MariaDB did not start");
    }

    /// Stops the server (SIGKILL: as abrupt as a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `mysql://root@127.0.0.1:PORT` (no database).
    pub fn server_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// ffprobe's value of one entry (e.g. `stream=duration`) for the first
/// stream of a kind (`v:0`, `a:0`).
pub fn probe(path: &Path, stream: &str, entry: &str) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            entry,
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes a small test video with ffmpeg (test pattern + tone).
pub fn make_video(path: &Path, seconds: u32, with_audio: bool) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=320x240:rate=25:duration={seconds}"),
    ]);
    if with_audio {
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:duration={seconds}"),
            "-c:a",
            "aac",
        ]);
    }
    let status = cmd
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg failed to make {}", path.display());
}
