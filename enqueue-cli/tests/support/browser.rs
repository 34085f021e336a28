//! A real browser for the dashboard tests: Debian's `chromium`, headless,
//! driven through `chromedriver` with the W3C WebDriver protocol. The
//! protocol is plain JSON over HTTP, so the few commands the tests use
//! (open a page, find and click, type, run a script, accept a dialog, take
//! a screenshot) are a thin layer over the blocking reqwest client the API
//! tests already use: no async runtime in a plain `#[test]`.

use super::free_port;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

/// The key WebDriver names elements by in its answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium.
    pub fn start(log_dir: &std::path::Path) -> Browser {
        let port = free_port();
        let log = std::fs::File::create(log_dir.join("chromedriver.log")).unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("chromedriver (package chromium-driver)");
        let http =
            reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http
            .get(format!("{base}/status"))
            .send()
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut browser = Browser { driver, base, session: String::new(), http };
        let profile = log_dir.join("chromium-profile");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", format!("--user-data-dir={}", profile.display())],
            },
        } } });
        let answer = browser.call("POST", "/session", caps);
        browser.session = answer["sessionId"].as_str().expect("a session").to_string();
        browser
    }

    /// One WebDriver command; panics with the driver's message on error.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = request.send().unwrap().json().unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("webdriver {method} {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url` and waits for the page to load.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", Value::Null).as_str().unwrap_or("").to_string()
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": selector }),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_string()
    }

    /// Clicks the element matching `selector`.
    pub fn click(&self, selector: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Types `text` into the element matching `selector`.
    pub fn type_into(&self, selector: &str, text: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/value"), json!({ "text": text }));
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn script(&self, script: &str) -> Value {
        self.session_call("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Runs `script`, which calls `arguments[0]` with its result, and
    /// returns that result.
    pub fn script_async(&self, script: &str) -> Value {
        self.session_call("POST", "/execute/async", json!({ "script": script, "args": [] }))
    }

    /// Accepts the open `confirm()` dialog, waiting for it to appear.
    pub fn accept_dialog(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/alert/accept", self.base, self.session);
            let answer: Value =
                self.http.post(url).json(&json!({})).send().unwrap().json().unwrap();
            if answer["value"]["error"].is_null() {
                return;
            }
            assert!(Instant::now() < deadline, "no dialog: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `script` until it returns something truthy (not null, false,
    /// 0 or ""), within `limit`; returns that value.
    pub fn wait_for(&self, limit: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.script(script);
            let truthy = !(value.is_null()
                || value == json!(false)
                || value == json!(0)
                || value == json!(""));
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG screenshot of the window, written to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let data = self.session_call("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
