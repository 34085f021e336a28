//! A Redis Cluster of a test's own: three masters (no replicas) on free
//! ports, the slots split by `redis-cli --cluster create`, every process
//! killed when it is dropped. The same layout as
//! `scripts/services.sh up --redis cluster`.

use super::{free_port, redis_cli as cli};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ClusterRedis {
    pub ports: Vec<u16>,
    nodes: Vec<Child>,
}

impl ClusterRedis {
    /// Starts three cluster-enabled servers, joins them and waits until
    /// every node reports `cluster_state:ok`.
    pub fn start(dir: &Path) -> ClusterRedis {
        let dir = dir.join("cluster");
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = ports
            .iter()
            .map(|port| {
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                    // The bus on a port of its own: the default (port +
                    // 10000) may be past 65535 for a free port.
                    .args(["--cluster-port", &free_port().to_string()])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--cluster-config-file")
                    .arg(dir.join(format!("nodes-{port}.conf")))
                    .arg("--dir")
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server")
            })
            .collect();
        let cluster = ClusterRedis { ports, nodes };
        cluster.wait_for(|port| cli(port, &["PING"]).trim() == "PONG", "the nodes to start");
        let addresses: Vec<String> =
            cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        cluster.wait_for(
            |port| cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"),
            "cluster_state:ok on every node",
        );
        cluster
    }

    /// `REDIS_URL` for this cluster, in the common form.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// The port of the master that holds `key`'s slot.
    pub fn node_for(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.ports[0], &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
        let nodes = cli(self.ports[0], &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            for range in &fields[8..] {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                if (from.parse::<u16>().unwrap()..=to.parse::<u16>().unwrap()).contains(&slot) {
                    return port;
                }
            }
        }
        panic!("no master holds slot {slot}:\n{nodes}");
    }

    /// redis-cli's reply to `args` on node `port` (no redirections followed).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// How many keys matching `pattern` node `port` holds.
    pub fn count_keys(&self, port: u16, pattern: &str) -> usize {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--scan", "--pattern", pattern])
            .output()
            .expect("redis-cli --scan");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn wait_for(&self, ready: impl Fn(u16) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ports.iter().all(|port| ready(*port)) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ClusterRedis {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}
