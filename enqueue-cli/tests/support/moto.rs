//! A moto S3 server per test (installed by `scripts/s3-server.sh install`
//! into `.cache/moto-venv` on first use, about 2 minutes), for the tests of
//! `s3://` storage.

use super::{free_port, project_root, TestEnv};
use shared::storage::Storage;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key-do-not-log";

/// A moto S3 server on a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
}

impl Moto {
    pub fn start() -> Moto {
        // Bucket creation in us-east-1 on a non-AWS server (read by rust-s3).
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| std::env::set_var("RUST_S3_SKIP_LOCATION_CONSTRAINT", "true"));

        let started = Instant::now();
        let out = Command::new(project_root().join("scripts/s3-server.sh"))
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/s3-server.sh");
        assert!(out.status.success(), "scripts/s3-server.sh install failed");
        let moto_server = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let port = free_port();
        let log_dir = project_root().join(".local/s3");
        std::fs::create_dir_all(&log_dir).unwrap();
        let log = log_dir.join(format!("test-{port}.log"));
        let child = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("moto_server");
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                moto.child.try_wait().unwrap().is_none(),
                "moto_server exited; see .local/s3/test-{port}.log"
            );
            assert!(Instant::now() < deadline, "moto_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("moto ready at {} in {:.1?}", moto.endpoint, started.elapsed());
        moto
    }

    /// The S3 settings the binaries and `Storage` need, besides STORAGE_URL.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }

    /// `Storage` for `url` on this server.
    pub fn storage(&self, url: &str) -> Storage {
        let settings = self.settings();
        Storage::from_url_with_env(url, &|name| {
            settings.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    /// A fresh bucket (its name unique to this test) and `s3://bucket/prefix`.
    pub fn new_bucket(&self, prefix: &str) -> (String, Storage) {
        static N: AtomicU32 = AtomicU32::new(0);
        let bucket =
            format!("videoclip-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let url = format!("s3://{bucket}/{prefix}");
        let storage = self.storage(&url);
        block_on(storage.create_bucket_if_missing()).expect("creating the bucket");
        (url, storage)
    }

    /// `env.command(bin)` with STORAGE_URL and the S3 settings.
    pub fn command(&self, env: &TestEnv, bin: &str, url: &str) -> Command {
        let mut cmd = env.command(bin);
        cmd.env("STORAGE_URL", url).envs(self.settings());
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Runs a future to completion on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}
