//! The forms of `REDIS_URL` operators write, turned into the one fred parses.
//!
//! Operators (and most clients' docs: redis-py, go-redis, ioredis) write a
//! Sentinel or Cluster deployment with its nodes in the authority and, for
//! Sentinel, the service name as the path:
//!
//! - `redis-sentinel://[user:pass@]h1:26379[,h2:26379...]/service_name[/db]`
//! - `redis-cluster://[user:pass@]h1:7000[,h2:7001...]`
//!
//! fred reads one host in the authority and the others as `node=` query
//! parameters, the service name as `sentinelServiceName=`. [`to_fred_form`]
//! rewrites the first into the second. URLs already in fred's form (a
//! Sentinel URL with `sentinelServiceName=`) keep their meaning, and every
//! other scheme passes unchanged. The TLS schemes (`rediss-sentinel`,
//! `rediss-cluster`, `valkeys-*`) are the same forms; their TLS set-up is
//! [`crate::queue::redis_config`]'s.
//!
//! Credentials in the authority are the Redis servers'; Sentinel nodes with
//! a password of their own take `?sentinelPassword=` (and
//! `sentinelUsername=`), fred's names.

use crate::BadInput;

/// What kind of deployment a `REDIS_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://`, `rediss://`, `unix://`...).
    Single,
    /// A master found through Sentinel nodes.
    Sentinel,
    /// Redis Cluster.
    Cluster,
}

/// The topology of `url`, from its scheme.
pub fn topology(url: &str) -> Topology {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if scheme.ends_with("-sentinel") {
        Topology::Sentinel
    } else if scheme.ends_with("-cluster") {
        Topology::Cluster
    } else {
        Topology::Single
    }
}

/// `url` in the form fred's `Config::from_url` parses (module doc), or a
/// one-line reason it names no usable deployment. `shown` is the URL as
/// errors may print it (password redacted).
pub fn to_fred_form(url: &str, shown: &str) -> Result<String, BadInput> {
    let topology = topology(url);
    if topology == Topology::Single {
        return Ok(url.to_string());
    }
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, hosts_and_path) = match main.rfind('@') {
        Some(at) => main.split_at(at + 1),
        None => ("", main),
    };
    let (hosts, path) = hosts_and_path.split_once('/').unwrap_or((hosts_and_path, ""));
    let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err(BadInput::new(format!("REDIS_URL {shown} has an empty host in its node list")));
    }
    let mut params: Vec<String> = hosts[1..].iter().map(|h| format!("node={h}")).collect();
    let mut db = String::new();
    match topology {
        Topology::Sentinel => {
            let fred_form = query.split('&').any(|p| p.starts_with("sentinelServiceName="));
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let (service, db_segment) = match (fred_form, segments.as_slice()) {
                (true, []) => (None, None),
                (true, [db]) => (None, Some(*db)),
                (false, [service]) => (Some(*service), None),
                (false, [service, db]) => (Some(*service), Some(*db)),
                _ => return Err(BadInput::new(format!(
                    "REDIS_URL {shown}: a Sentinel URL is redis-sentinel://host:port[,host:port]/service_name[/db]"
                ))),
            };
            if let Some(service) = service {
                params.insert(0, format!("sentinelServiceName={service}"));
            }
            if let Some(db_segment) = db_segment {
                db_segment.parse::<u8>().map_err(|_| {
                    BadInput::new(format!(
                        "REDIS_URL {shown}: database {db_segment:?} is not a number"
                    ))
                })?;
                db = format!("/{db_segment}");
            }
        }
        Topology::Cluster => {
            if !path.is_empty() && path != "0" {
                return Err(BadInput::new(format!(
                    "REDIS_URL {shown}: Redis Cluster has only database 0"
                )));
            }
        }
        Topology::Single => unreachable!("returned above"),
    }
    params.extend(query.split('&').filter(|p| !p.is_empty()).map(str::to_string));
    let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
    Ok(format!("{scheme}://{userinfo}{}{db}{query}", hosts[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fred(url: &str) -> String {
        to_fred_form(url, url).unwrap()
    }

    #[test]
    fn the_common_sentinel_form_becomes_freds() {
        assert_eq!(
            fred("redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster"),
            "redis-sentinel://10.0.0.1:26379?sentinelServiceName=mymaster&node=10.0.0.2:26379&node=10.0.0.3:26379"
        );
        assert_eq!(
            fred("rediss-sentinel://:pw@s1:26379/vc/2?sentinelPassword=x"),
            "rediss-sentinel://:pw@s1:26379/2?sentinelServiceName=vc&sentinelPassword=x"
        );
    }

    #[test]
    fn freds_own_sentinel_form_keeps_its_meaning() {
        let url = "redis-sentinel://s1:26379/1?sentinelServiceName=vc&node=s2:26379";
        assert_eq!(fred(url), url);
        assert_eq!(
            fred("redis-sentinel://s1:26379,s2:26379/1?sentinelServiceName=vc"),
            "redis-sentinel://s1:26379/1?node=s2:26379&sentinelServiceName=vc"
        );
    }

    #[test]
    fn the_cluster_node_list_becomes_node_parameters() {
        assert_eq!(
            fred("redis-cluster://u:p@n1:7000,n2:7001,n3:7002"),
            "redis-cluster://u:p@n1:7000?node=n2:7001&node=n3:7002"
        );
        assert_eq!(fred("redis://127.0.0.1:6379/3"), "redis://127.0.0.1:6379/3");
    }

    #[test]
    fn unusable_forms_are_refused_in_one_line() {
        for (url, says) in [
            ("redis-sentinel://s1:26379", "service_name"),
            ("redis-sentinel://s1:26379/vc/x", "not a number"),
            ("redis-sentinel://s1:26379,,s2:1/vc", "empty host"),
            ("redis-cluster://n1:7000/3", "only database 0"),
        ] {
            let err = to_fred_form(url, url).unwrap_err();
            assert!(err.0.contains(says), "{url}: {err}");
        }
        assert_eq!(topology("rediss-cluster://n:1"), Topology::Cluster);
        assert_eq!(topology("valkey-sentinel://n:1/vc"), Topology::Sentinel);
        assert_eq!(topology("rediss://n:1"), Topology::Single);
    }
}
