//! A Redis Sentinel deployment of a test's own: a master, one replica and
//! three sentinels (quorum 2) on free ports, data and configs in the test's
//! directory, every process killed when it is dropped. The same layout as
//! `scripts/services.sh up --redis sentinel`.

use super::{free_port, redis_cli as cli};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Sentinel service name the sentinels monitor.
pub const SERVICE: &str = "videoclip";

pub struct SentinelRedis {
    pub master_port: u16,
    pub replica_port: u16,
    pub sentinel_ports: Vec<u16>,
    master: Option<Child>,
    replica: Child,
    sentinels: Vec<Child>,
}

impl SentinelRedis {
    /// Starts the five processes and waits until the replica is in sync and
    /// every sentinel knows the replica and the two other sentinels (so a
    /// failover can be agreed on).
    pub fn start(dir: &Path) -> SentinelRedis {
        let dir = dir.join("sentinel");
        std::fs::create_dir_all(&dir).unwrap();
        let master_port = free_port();
        let replica_port = free_port();
        let master = start_server(master_port, &dir, &[]);
        let replica = start_server(
            replica_port,
            &dir,
            &["--replicaof", "127.0.0.1", &master_port.to_string()],
        );
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let sentinels = sentinel_ports
            .iter()
            .map(|port| {
                let conf = dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {SERVICE} 1000\n\
                         sentinel failover-timeout {SERVICE} 10000\n\
                         sentinel parallel-syncs {SERVICE} 1\n",
                        dir.display()
                    ),
                )
                .unwrap();
                Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server --sentinel")
            })
            .collect();
        let deployment = SentinelRedis {
            master_port,
            replica_port,
            sentinel_ports,
            master: Some(master),
            replica,
            sentinels,
        };
        deployment.wait_ready();
        deployment
    }

    /// `REDIS_URL` for this deployment, in the common form (database 0).
    pub fn url(&self) -> String {
        let nodes: Vec<String> =
            self.sentinel_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis-sentinel://{}/{SERVICE}/0", nodes.join(","))
    }

    /// Kills the master with SIGKILL, as a crash would.
    pub fn kill_master(&mut self) {
        if let Some(mut master) = self.master.take() {
            let _ = master.kill();
            let _ = master.wait();
        }
    }

    /// The port of the master the first sentinel names now.
    pub fn current_master_port(&self) -> Option<u16> {
        let reply = cli(self.sentinel_ports[0], &["SENTINEL", "get-master-addr-by-name", SERVICE]);
        reply.lines().nth(1)?.trim().parse().ok()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced =
                cli(self.replica_port, &["INFO", "replication"]).contains("master_link_status:up");
            let known = self.sentinel_ports.iter().all(|port| {
                let master = cli(*port, &["SENTINEL", "master", SERVICE]);
                field(&master, "num-other-sentinels") == Some("2")
                    && field(&master, "num-slaves") == Some("1")
            });
            if synced && known {
                return;
            }
            assert!(Instant::now() < deadline, "the Sentinel deployment did not form in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SentinelRedis {
    fn drop(&mut self) {
        let children =
            self.master.iter_mut().chain(Some(&mut self.replica)).chain(self.sentinels.iter_mut());
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A redis-server without persistence on `port` (`extra`: more options).
fn start_server(port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly"])
        .arg("no")
        .arg("--dir")
        .arg(dir)
        .arg("--dbfilename")
        .arg(format!("dump-{port}.rdb"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server")
}

/// The value after `name` in a flat name/value reply, one item a line.
fn field<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = reply.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next();
        }
    }
    None
}
