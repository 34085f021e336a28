//! TLS against real servers: a `redis-server` with only a TLS port and a
//! MariaDB with a certificate, both signed by a throwaway CA this test
//! makes with the `openssl` CLI. TLS works with the CA given
//! (`REDIS_CA_CERT`, `DATABASE_CA_CERT`) or through the system store
//! (`SSL_CERT_FILE`); an untrusted server, a plaintext URL to a TLS port and
//! `require_ssl=true` to a server without TLS are refused with exit 2 and
//! one line, never connected in plaintext.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, PrivateMariaDb, TestEnv};

/// How long one `enqueue` run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A CA and a server certificate for 127.0.0.1, plus a second CA that
/// signed nothing (a system store that does not trust the server).
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Runs `openssl` in `dir` with `args` (split on whitespace).
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .expect("the openssl CLI (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

fn make_pki(dir: &Path) -> Pki {
    let dir = dir.join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for name in ["ca", "other-ca"] {
        openssl(
            &dir,
            &format!(
                "req -x509 -days 2 {ec} -subj /CN=videoclip-test-{name} -keyout {name}.key -out {name}.pem \
                 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }
    openssl(&dir, &format!("req {ec} -subj /CN=127.0.0.1 -keyout server.key -out server.csr"));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.pem",
    );
    Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// Runs `cmd` to completion within [`RUN_LIMIT`] (killed and failed if
/// not). Its output is small, so the pipes are read at the end.
fn output_within(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning");
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `enqueue ARGS` with the test's settings and `vars` on top.
fn enqueue(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.command("enqueue");
    cmd.args(args);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    output_within(cmd)
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Exit 2 with one line on stderr containing one of `needles`.
fn assert_refused(out: &Output, needles: &[&str], what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: one line expected: {stderr:?}");
    assert!(
        needles.iter().any(|n| stderr.contains(n)),
        "{what}: none of {needles:?} in {stderr:?}"
    );
}

/// A `redis-server` listening on a TLS port only.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(pki: &Pki, dir: &Path) -> TlsRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&pki.cert)
            .arg("--tls-key-file")
            .arg(&pki.key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let redis = TlsRedis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(pki, &["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server with TLS did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// redis-cli over TLS, trusting the test CA.
    fn cli(&self, pki: &Pki, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["--tls", "-h", "127.0.0.1", "-p", &self.port.to_string(), "--cacert"])
            .arg(&pki.ca)
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rediss_verifies_the_server_and_never_falls_back_to_plaintext() {
    let env = TestEnv::new();
    let pki = make_pki(&env.dir);
    let redis = TlsRedis::start(&pki, &env.dir);
    redis.cli(&pki, &["RPUSH", "queue:high_priority", "a", "b"]);
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let ca = pki.ca.to_str().unwrap();
    let other_ca = pki.other_ca.to_str().unwrap();
    let queues = ["queues", "--json"];

    // The CA given: TLS, and it is this server's data.
    let out = enqueue(&env, &queues, &[("REDIS_URL", &url), ("REDIS_CA_CERT", ca)]);
    assert_ok(&out, "rediss:// with REDIS_CA_CERT");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["queues"]["queue:high_priority"], 2, "{json}");

    // No CA file: the system store, SSL_CERT_FILE honoured.
    let out = enqueue(&env, &queues, &[("REDIS_URL", &url), ("SSL_CERT_FILE", ca)]);
    assert_ok(&out, "rediss:// trusting the CA through SSL_CERT_FILE");

    // A system store that does not trust the server's CA: refused.
    let untrusted = ["certificate", "UnknownIssuer"];
    let out = enqueue(&env, &queues, &[("REDIS_URL", &url), ("SSL_CERT_FILE", other_ca)]);
    assert_refused(&out, &untrusted, "rediss:// to an untrusted server");
    let out = enqueue(&env, &queues, &[("REDIS_URL", &url), ("REDIS_CA_CERT", other_ca)]);
    assert_refused(&out, &untrusted, "rediss:// with the wrong REDIS_CA_CERT");

    // TLS that cannot be set up is refused before any connection.
    let missing = env.dir.join("missing.pem");
    let missing = missing.to_str().unwrap();
    let out = enqueue(&env, &queues, &[("REDIS_URL", &url), ("REDIS_CA_CERT", missing)]);
    assert_refused(&out, &["cannot read REDIS_CA_CERT file"], "missing REDIS_CA_CERT");

    // Plaintext to the TLS port fails; a CA file with redis:// is refused.
    let plain = format!("redis://127.0.0.1:{}/0", redis.port);
    let out = enqueue(&env, &queues, &[("REDIS_URL", &plain)]);
    assert_refused(&out, &["cannot connect to Redis"], "redis:// to the TLS port");
    let out = enqueue(&env, &queues, &[("REDIS_CA_CERT", ca)]);
    assert_refused(&out, &["is not rediss://"], "REDIS_CA_CERT with redis://");
}

/// `Connections` (every attempt, TCP or socket) and `Ssl_finished_accepts`
/// (completed TLS handshakes) of the server, read over a plaintext client
/// connection (itself one more connection, no TLS).
fn connection_counts(db: &PrivateMariaDb) -> (i64, i64) {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--skip-ssl", "-N", "-B", "-uroot", "-h127.0.0.1"])
        .arg(format!("-P{}", db.port))
        .arg("-e")
        .arg("SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Ssl_finished_accepts')")
        .output()
        .expect("mariadb client");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| -> i64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line.split('\t').nth(1).unwrap().trim().parse().unwrap()
    };
    (value("Connections"), value("Ssl_finished_accepts"))
}

#[test]
fn require_ssl_encrypts_every_connection_and_refuses_a_server_without_tls() {
    let env = TestEnv::new();
    let pki = make_pki(&env.dir);
    let tls_args = [("--ssl-cert", &pki.cert), ("--ssl-key", &pki.key), ("--ssl-ca", &pki.ca)]
        .map(|(flag, path)| format!("{flag}={}", path.display()));
    let db = PrivateMariaDb::start_with(&env.dir, &tls_args);
    let create = Command::new("mariadb")
        .args(["--no-defaults", "--skip-ssl", "-uroot", "-h127.0.0.1"])
        .arg(format!("-P{}", db.port))
        .args(["-e", "CREATE DATABASE videoclip_tls"])
        .status()
        .unwrap();
    assert!(create.success());
    let url = format!("{}/videoclip_tls?require_ssl=true", db.server_url());
    let ca = pki.ca.to_str().unwrap();
    let other_ca = pki.other_ca.to_str().unwrap();

    // With the CA: migrations run, and every connection enqueue made was
    // TLS (none plaintext, no attempt on the unix socket: mysql_async's
    // prefer_socket would try one after each TCP connection).
    let (connections, accepts) = connection_counts(&db);
    let out = enqueue(&env, &["migrate"], &[("DATABASE_URL", &url), ("DATABASE_CA_CERT", ca)]);
    assert_ok(&out, "migrate with require_ssl=true and DATABASE_CA_CERT");
    let (connections_after, accepts_after) = connection_counts(&db);
    let made = connections_after - connections - 1;
    assert!(made >= 1, "enqueue made no connection?");
    assert_eq!(accepts_after - accepts, made, "every connection of enqueue is TLS");

    // No CA file: the system store, SSL_CERT_FILE honoured.
    let out = enqueue(&env, &["tasks", "--json"], &[("DATABASE_URL", &url), ("SSL_CERT_FILE", ca)]);
    assert_ok(&out, "require_ssl=true trusting the CA through SSL_CERT_FILE");

    // An untrusted server certificate is refused.
    let untrusted = ["certificate", "UnknownIssuer"];
    let out = enqueue(&env, &["migrate"], &[("DATABASE_URL", &url), ("SSL_CERT_FILE", other_ca)]);
    assert_refused(&out, &untrusted, "require_ssl=true to an untrusted server");

    // A server without TLS (the shared test MariaDB) is refused, not used.
    let plain_server = format!("{}?require_ssl=true", env.database_url);
    let out =
        enqueue(&env, &["migrate"], &[("DATABASE_URL", &plain_server), ("DATABASE_CA_CERT", ca)]);
    assert_refused(
        &out,
        &["does not have this capability"],
        "require_ssl=true to a server without TLS",
    );

    // A CA file without require_ssl=true is refused before connecting.
    let out = enqueue(&env, &["migrate"], &[("DATABASE_CA_CERT", ca)]);
    assert_refused(&out, &["has no require_ssl=true"], "DATABASE_CA_CERT without require_ssl");
}
