//! Configuration: every setting is a flag and an environment variable (WAHA's names where WAHA has one).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::sessions::config::{
    CustomHeader, HmacConfig, RetriesConfig, RetryPolicy, WebhookConfig,
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "wagate",
    version,
    about = "A WAHA-compatible WhatsApp session gateway"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "WAGATE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Where the sessions' stores live (one sled database per session under sessions/<name>/).
    #[arg(long, env = "WAGATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// API key: plain, or `sha512:<hex>`. Alias WHATSAPP_API_KEY. Unset: a random key is printed at start-up.
    #[arg(long, env = "WAHA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Run without an API key.
    #[arg(long, env = "WAHA_NO_API_KEY", default_value_t = false)]
    pub no_api_key: bool,
    /// Put `/metrics` behind the API key (by default it is open, like `/ping`).
    #[arg(long, env = "WAGATE_METRICS_KEY", default_value_t = false)]
    pub metrics_key: bool,
    /// The engine name reported in `engine` fields (the engine is always the built-in LOCAL one).
    #[arg(long, env = "WHATSAPP_DEFAULT_ENGINE", default_value = "LOCAL")]
    pub engine: String,
    /// `worker.id` in server answers and webhooks; default the host name.
    #[arg(long, env = "WAGATE_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Bound on a whole webhook attempt (connect, headers, body), seconds.
    #[arg(long, env = "WAGATE_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    pub webhook_timeout_seconds: u64,
    /// Networks webhooks may not reach: a comma list of CIDRs, or `private` (loopback,
    /// link-local, RFC 1918 and RFC 4193 ranges). Checked when a webhook is configured and on
    /// the addresses its name resolves to at delivery (then dead-lettered as `denied_network`).
    #[arg(long, env = "WAGATE_WEBHOOK_DENY_NETWORKS", default_value = "")]
    pub webhook_deny_networks: String,
    /// Requests in flight per webhook endpoint (never two for one group).
    #[arg(long, env = "WAGATE_WEBHOOK_CONCURRENCY", default_value_t = 8)]
    pub webhook_concurrency: usize,
    /// How long events stay in the log, hours.
    #[arg(long, env = "WAGATE_EVENT_RETENTION_HOURS", default_value_t = 168)]
    pub event_retention_hours: u64,
    /// Global webhook URL, added to every session.
    #[arg(long, env = "WHATSAPP_HOOK_URL")]
    pub hook_url: Option<String>,
    /// Global webhook events, comma-separated (`*` for all).
    #[arg(long, env = "WHATSAPP_HOOK_EVENTS", default_value = "*")]
    pub hook_events: String,
    #[arg(long, env = "WHATSAPP_HOOK_HMAC_KEY", hide_env_values = true)]
    pub hook_hmac_key: Option<String>,
    #[arg(long, env = "WHATSAPP_HOOK_RETRIES_POLICY")]
    pub hook_retries_policy: Option<String>,
    #[arg(long, env = "WHATSAPP_HOOK_RETRIES_DELAY_SECONDS")]
    pub hook_retries_delay_seconds: Option<u64>,
    #[arg(long, env = "WHATSAPP_HOOK_RETRIES_ATTEMPTS")]
    pub hook_retries_attempts: Option<u32>,
    /// `Name:Value;Name2:Value2`.
    #[arg(long, env = "WHATSAPP_HOOK_CUSTOM_HEADERS")]
    pub hook_custom_headers: Option<String>,
    /// How long the answer to a request with an `Idempotency-Key` is kept, hours.
    #[arg(long, env = "WAGATE_IDEMPOTENCY_HOURS", default_value_t = 24)]
    pub idempotency_hours: u64,
    /// Requests under /api/ in progress at most; beyond it an immediate 503 `overloaded`.
    #[arg(long, env = "WAGATE_MAX_INFLIGHT", default_value_t = 1024)]
    pub max_inflight: usize,
    /// MiB the cache of rendered GroupInfo JSON may hold at most (each entry counts its stored
    /// group and both rendered bodies; the least recently read go first); 0 turns it off.
    #[arg(long, env = "WAGATE_RENDER_CACHE_MB", default_value_t = 64)]
    pub render_cache_mb: usize,
    /// Sessions' stores open at once at most: a store opens on first use and closes when idle
    /// (the least recently used first beyond this; any after 5 minutes unused). One open store
    /// costs about 0.25 MiB.
    #[arg(long, env = "WAGATE_MAX_OPEN_STORES", default_value_t = 256)]
    pub max_open_stores: usize,
    /// Events a session's store logs between two reopenings (0: never, the default): sled keeps
    /// pages it has read in memory until its database is closed, so a busy store can be closed
    /// (and opened again by its next request) after this many, to give that memory back. Off by
    /// default: with a backlog of undelivered records, reopening made RSS grow instead.
    #[arg(long, env = "WAGATE_STORE_REOPEN_EVENTS", default_value_t = 0)]
    pub store_reopen_events: u64,
    /// The log's form: `text` (colour only on a terminal) or `json` (one object per line).
    #[arg(long, env = "WAGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Cluster mode: the NATS servers (JetStream enabled), `nats://host:port`, a comma list.
    /// Unset: one process, as without a cluster (no NATS code runs). See docs/cluster.md.
    #[arg(long, env = "WAGATE_NATS_URL")]
    pub nats_url: Option<String>,
    /// Cluster mode: this node's id, unique in the cluster (default: the host name).
    #[arg(long, env = "WAGATE_NODE_ID")]
    pub node_id: Option<String>,
    /// Cluster mode: the base URL other nodes reach this node's API at (default
    /// `http://<WAGATE_LISTEN>`).
    #[arg(long, env = "WAGATE_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Cluster mode: how many NATS servers keep a copy of the group log and the buckets (1–5;
    /// 3 on a three-server NATS cluster, so that losing one loses nothing).
    #[arg(long, env = "WAGATE_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// Instead of serving: back up or restore the data dir (see the README, "Backups").
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print the OpenAPI document and exit.
    #[arg(long, default_value_t = false)]
    pub print_openapi: bool,
    /// Test hook: abort between a change's own commit and its fan-out to other sessions.
    #[arg(
        long,
        env = "WAGATE_TEST_ABORT_BEFORE_FANOUT",
        default_value_t = false,
        hide = true
    )]
    pub test_abort_before_fanout: bool,
    /// Test hook: how often old events are pruned, ms (default every 10 minutes).
    #[arg(long, env = "WAGATE_TEST_PRUNE_EVERY_MS", hide = true)]
    pub test_prune_every_ms: Option<u64>,
    /// Test hook: how long events stay in the log, ms; overrides WAGATE_EVENT_RETENTION_HOURS.
    #[arg(long, env = "WAGATE_TEST_EVENT_RETENTION_MS", hide = true)]
    pub test_event_retention_ms: Option<u64>,
    /// Test hook: every store flush waits this many ms first (a slow disk).
    #[arg(
        long,
        env = "WAGATE_TEST_FSYNC_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub test_fsync_delay_ms: u64,
    /// The store layer's fault seam: tests that embed the gateway inject storage faults here.
    #[arg(skip)]
    pub faults: crate::store::Faults,
    /// The clock idempotency keys expire by: tests move it forward.
    #[arg(skip)]
    pub clock: crate::api::idempotency::Clock,
}

impl Config {
    /// Defaults for tests and embedding: no key, data in `dir`.
    pub fn for_dir(dir: impl Into<PathBuf>) -> Self {
        let mut c = Self::parse_from(["wagate"]);
        c.data_dir = dir.into();
        c.no_api_key = true;
        c.api_key = None;
        c.hook_url = None;
        c
    }

    /// How long events stay in the log, ms (0 keeps all): the test hook's value when set.
    pub fn event_retention_ms(&self) -> u64 {
        self.test_event_retention_ms
            .unwrap_or_else(|| self.event_retention_hours.saturating_mul(3_600_000))
    }

    /// How often old events are pruned: every 10 minutes unless the test hook says otherwise.
    pub fn prune_every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.test_prune_every_ms.unwrap_or(600_000).max(1))
    }

    /// New changes that may wait for the committer before more are refused as overloaded.
    pub fn max_queued_commits(&self) -> usize {
        self.max_inflight.saturating_mul(4).max(1024)
    }

    /// The render cache's bound in bytes.
    pub fn render_cache_bytes(&self) -> usize {
        self.render_cache_mb.saturating_mul(1024 * 1024)
    }

    /// Cluster mode's settings, validated; `None` without `WAGATE_NATS_URL`.
    pub fn cluster(&self) -> Result<Option<crate::cluster::ClusterConfig>, String> {
        crate::cluster::ClusterConfig::parse(
            self.nats_url.as_deref(),
            self.node_id.as_deref(),
            self.advertise_url.as_deref(),
            self.listen,
            hostname,
        )
        .and_then(|c| c.map(|c| c.with_replicas(self.nats_replicas)).transpose())
    }

    /// The API key from WAHA_API_KEY or its alias WHATSAPP_API_KEY.
    pub fn resolve_api_key(&mut self) {
        if self.api_key.is_none() {
            self.api_key = std::env::var("WHATSAPP_API_KEY")
                .ok()
                .filter(|k| !k.is_empty());
        }
    }

    /// The global webhook, validated.
    pub fn global_hook(&self) -> Result<Option<WebhookConfig>, String> {
        let Some(url) = self.hook_url.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let policy = match self.hook_retries_policy.as_deref() {
            None | Some("") => None,
            Some("constant") => Some(RetryPolicy::Constant),
            Some("linear") => Some(RetryPolicy::Linear),
            Some("exponential") => Some(RetryPolicy::Exponential),
            Some(o) => {
                return Err(format!(
                "WHATSAPP_HOOK_RETRIES_POLICY: expected constant, linear or exponential, got {o:?}"
            ))
            }
        };
        let custom_headers = match &self.hook_custom_headers {
            None => None,
            Some(s) => Some(
                s.split(';')
                    .filter(|p| !p.trim().is_empty())
                    .map(|pair| {
                        pair.split_once(':')
                            .map(|(n, v)| CustomHeader {
                                name: n.trim().to_owned(),
                                value: v.trim().to_owned(),
                            })
                            .ok_or_else(|| {
                                format!("WHATSAPP_HOOK_CUSTOM_HEADERS: {pair:?} is not Name:Value")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let hook = WebhookConfig {
            url,
            events: self
                .hook_events
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
            hmac: self
                .hook_hmac_key
                .clone()
                .map(|k| HmacConfig { key: Some(k) }),
            retries: Some(RetriesConfig {
                policy,
                delay_seconds: self.hook_retries_delay_seconds,
                attempts: self.hook_retries_attempts,
            }),
            custom_headers,
        };
        hook.validate("WHATSAPP_HOOK").map_err(|e| e.to_string())?;
        Ok(Some(hook))
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "wagate".to_owned())
}

/// What to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Write every store of the data dir to FILE as JSON lines. When a gateway runs on the data
    /// dir, the export is fetched from it (`GET /api/server/export` at WAGATE_LISTEN, with
    /// WAHA_API_KEY when it is a plain key), each store copied between two commit rounds.
    Export {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an export into the data dir, which must hold no store yet.
    Import {
        /// The export to read.
        file: PathBuf,
    },
}

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; colours only when the log goes to a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields.message`, the fields
    /// and the spans (with the request's `request_id`).
    Json,
}
