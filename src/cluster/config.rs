//! Cluster mode's settings (`WAGATE_NATS_URL`, `WAGATE_NODE_ID`, `WAGATE_ADVERTISE_URL`), parsed
//! once at start-up into values that are valid from then on: a bad one stops the start with a
//! message naming its variable.

use std::net::SocketAddr;
use std::str::FromStr;

use async_nats::ServerAddr;

/// A node's id: 1 to 64 of `[A-Za-z0-9_.-]`, not starting or ending with a dot. It is a key of
/// the `wagate_nodes` bucket, whose keys allow no other characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !s.starts_with('.')
            && !s.ends_with('.');
        match ok {
            true => Ok(Self(s.to_owned())),
            false => Err(format!(
                "WAGATE_NODE_ID: {s:?} is not 1 to 64 of A-Z a-z 0-9 _ - . (not starting or ending with a dot)"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything cluster mode needs to join.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS servers (JetStream enabled).
    pub servers: Vec<ServerAddr>,
    pub node: NodeId,
    /// The base URL other nodes reach this node's API at, without a trailing slash.
    pub advertise: String,
    /// Copies of the stream and buckets the NATS system keeps (`WAGATE_NATS_REPLICAS`).
    pub replicas: usize,
}

impl ClusterConfig {
    /// `None` when `nats` is unset or empty: single-node mode, no NATS code runs.
    pub fn parse(
        nats: Option<&str>,
        node: Option<&str>,
        advertise: Option<&str>,
        listen: SocketAddr,
        hostname: impl FnOnce() -> String,
    ) -> Result<Option<Self>, String> {
        let Some(nats) = nats.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        let servers = nats
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(server)
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err("WAGATE_NATS_URL: no server in the list".to_owned());
        }
        let node = match node.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => NodeId::parse(n)?,
            None => NodeId::parse(&hostname())
                .map_err(|e| format!("{e} (the host name; set WAGATE_NODE_ID)"))?,
        };
        let advertise = match advertise.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => base_url(a)?,
            None if listen.ip().is_unspecified() => {
                return Err(format!(
                    "WAGATE_ADVERTISE_URL: must be set when WAGATE_LISTEN is {listen} (other nodes cannot reach an unspecified address)"
                ))
            }
            None => format!("http://{listen}"),
        };
        Ok(Some(Self {
            servers,
            node,
            advertise,
            replicas: 1,
        }))
    }

    /// With `n` copies of the log and buckets: 1 to 5, as JetStream allows.
    pub fn with_replicas(mut self, n: usize) -> Result<Self, String> {
        if !(1..=5).contains(&n) {
            return Err(format!(
                "WAGATE_NATS_REPLICAS: {n} copies asked; JetStream keeps 1 to 5 (3 on a three-server NATS cluster)"
            ));
        }
        self.replicas = n;
        Ok(self)
    }
}

fn server(s: &str) -> Result<ServerAddr, String> {
    let bad = |why: String| format!("WAGATE_NATS_URL: {s:?} is not a NATS server address ({why})");
    if s.contains("://") && !s.starts_with("nats://") && !s.starts_with("tls://") {
        return Err(bad("the scheme must be nats:// or tls://".to_owned()));
    }
    ServerAddr::from_str(s).map_err(|e| bad(e.to_string()))
}

fn base_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s)
        .map_err(|e| format!("WAGATE_ADVERTISE_URL: {s:?} is not a URL ({e})"))?;
    let plain = url.query().is_none() && url.fragment().is_none() && url.path() == "/";
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !plain {
        return Err(format!(
            "WAGATE_ADVERTISE_URL: {s:?} must be http(s)://host[:port] with no path or query"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTEN: &str = "127.0.0.1:3000";

    fn parse(
        nats: Option<&str>,
        node: Option<&str>,
        adv: Option<&str>,
    ) -> Result<Option<ClusterConfig>, String> {
        let listen = LISTEN.parse().unwrap_or_else(|_| unreachable!());
        ClusterConfig::parse(nats, node, adv, listen, || "host-1".to_owned())
    }

    #[test]
    fn unset_or_empty_nats_url_is_single_node_mode() {
        assert!(matches!(parse(None, Some("!bad"), Some("x")), Ok(None)));
        assert!(matches!(parse(Some("  "), None, None), Ok(None)));
    }

    #[test]
    fn defaults_are_the_host_name_and_the_listen_address() {
        let c = parse(Some("nats://127.0.0.1:4222, 127.0.0.1:4223"), None, None);
        let c = c
            .ok()
            .flatten()
            .map(|c| (c.servers.len(), c.node, c.advertise));
        let want = (2, NodeId("host-1".into()), "http://127.0.0.1:3000".into());
        assert_eq!(c, Some(want));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let n = Some("nats://127.0.0.1:4222");
        for (nats, node, adv, var) in [
            (Some("http://x:1"), None, None, "WAGATE_NATS_URL"),
            (Some(","), None, None, "WAGATE_NATS_URL"),
            (n, Some("a b"), None, "WAGATE_NODE_ID"),
            (n, Some(".a"), None, "WAGATE_NODE_ID"),
            (n, None, Some("ftp://x"), "WAGATE_ADVERTISE_URL"),
            (n, None, Some("http://x/path"), "WAGATE_ADVERTISE_URL"),
            (n, None, Some("nonsense"), "WAGATE_ADVERTISE_URL"),
        ] {
            let e = parse(nats, node, adv).err().unwrap_or_default();
            assert!(e.starts_with(var), "{nats:?} {node:?} {adv:?}: {e}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_needs_an_advertise_url() {
        let listen = "0.0.0.0:3000".parse().unwrap_or_else(|_| unreachable!());
        let e = ClusterConfig::parse(Some("127.0.0.1:4222"), None, None, listen, || "h".into());
        assert!(e
            .err()
            .unwrap_or_default()
            .starts_with("WAGATE_ADVERTISE_URL"));
        let ok = ClusterConfig::parse(
            Some("127.0.0.1:4222"),
            None,
            Some("http://h:3000/"),
            listen,
            || "h".into(),
        );
        assert_eq!(
            ok.ok().flatten().map(|c| c.advertise),
            Some("http://h:3000".into())
        );
    }
}
