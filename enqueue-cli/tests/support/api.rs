//! The `api` server in tests: started on a free port against the test's
//! database and Redis, with tokens made by the real `enqueue token create`,
//! and a blocking HTTP client (reqwest) to call it.

use super::{free_port, TestEnv};
use std::process::Child;
use std::time::{Duration, Instant};

/// A running `api` server.
pub struct Api {
    pub base: String,
    pub port: u16,
    pub child: Child,
    pub http: reqwest::blocking::Client,
}

impl Api {
    /// Starts `api` with `extra` environment variables and waits until
    /// `/healthz` answers.
    pub fn start(env: &TestEnv, extra: &[(&str, &str)]) -> Api {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(env.dir.join(format!("api-{port}.log"))).unwrap();
        let mut cmd = env.command("api");
        cmd.env("API_LISTEN", &listen).env("API_UPLOAD_DIR", env.dir.join("uploads"));
        links(&mut cmd, port);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child =
            cmd.stdout(std::process::Stdio::null()).stderr(log).spawn().expect("spawning api");
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        let api = Api { base: format!("http://{listen}"), port, child, http };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = api.http.get(api.url("/healthz")).send() {
                if r.status().is_success() {
                    return api;
                }
            }
            assert!(Instant::now() < deadline, "api did not start: see {}", env.dir.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with a bearer token; returns (status, JSON body or Null).
    pub fn get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// POST of a JSON body with a bearer token.
    pub fn post(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self.http.post(self.url(path)).bearer_auth(token).json(body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Uploads `file` as the multipart field `file`.
    pub fn upload(&self, token: &str, file: &std::path::Path) -> (u16, serde_json::Value) {
        let form = reqwest::blocking::multipart::Form::new().file("file", file).unwrap();
        let r = self
            .http
            .post(self.url("/api/v1/videos"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// The server's resident memory: (current, peak) in KiB, from /proc.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The signing key and public base URL every program that makes or checks
/// download links for the server on `port` needs.
pub fn links(cmd: &mut std::process::Command, port: u16) {
    cmd.env("DOWNLOAD_SIGNING_KEY", "test-signing-key-0123456789abcdef0123456789")
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"));
}

/// A background program killed when dropped, so a failing test leaves no
/// worker or scheduler behind.
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` (the worker, the scheduler) for the server on `port`.
pub fn spawn_beside(env: &TestEnv, bin: &str, port: u16) -> Running {
    let log = std::fs::File::create(env.dir.join(format!("{bin}.log"))).unwrap();
    let mut cmd = env.command(bin);
    links(&mut cmd, port);
    Running(cmd.stdout(std::process::Stdio::null()).stderr(log).spawn().expect("spawning"))
}

/// Creates user `name` and an API token for it (`operator`: an operator
/// token) with the real CLI; returns (user id, token).
pub fn user_with_token(env: &TestEnv, name: &str, operator: bool) -> (i64, String) {
    let email = format!("{name}@example.com");
    let out = env.enqueue(&["user", "add", name, "--email", &email]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut args = vec!["token", "create", name, "--json"];
    if operator {
        args.push("--operator");
    }
    let out = env.enqueue(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (value["user_id"].as_i64().unwrap(), value["token"].as_str().unwrap().to_string())
}
