//! `wagate export --out FILE` and `wagate import FILE`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::{export_dir, import, BackupError, Totals};
use crate::config::{Command, Config};
use crate::store::SessionStore;

/// Runs a backup command; answers what was done, for the operator.
pub async fn run(config: &Config, command: &Command) -> Result<String, BackupError> {
    match command {
        Command::Export { out } => {
            let from_running = running(&config.data_dir);
            let done = if from_running {
                fetch(config, out).await
            } else {
                File::create(out)
                    .map_err(BackupError::from)
                    .and_then(|f| export_dir(&config.data_dir, &mut BufWriter::new(f)))
            };
            let totals = done.inspect_err(|_| {
                let _ = std::fs::remove_file(out);
            })?;
            let source = if from_running {
                "from the running gateway"
            } else {
                "from the data dir"
            };
            Ok(format!(
                "exported {} stores, {} entries {source} to {}",
                totals.stores,
                totals.entries,
                out.display()
            ))
        }
        Command::Import { file } => {
            let totals = import(&config.data_dir, BufReader::new(File::open(file)?))?;
            Ok(format!(
                "imported {} stores, {} entries into {}",
                totals.stores,
                totals.entries,
                config.data_dir.display()
            ))
        }
    }
}

/// Whether a gateway runs on `data`: sled locks a store's files while it is open.
fn running(data: &Path) -> bool {
    let gateway = data.join("gateway");
    gateway.is_dir()
        && match SessionStore::open(&gateway, Default::default()) {
            Ok(_) => false,
            Err(e) => e.to_string().contains("could not acquire lock"),
        }
}

/// Fetches the export from the gateway running on the data dir, into `out`.
async fn fetch(config: &Config, out: &Path) -> Result<Totals, BackupError> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut req = reqwest::Client::new().get(format!("http://{addr}/api/server/export"));
    match config.api_key.as_deref() {
        Some(key) if key.starts_with("sha512:") => {
            return Err(BackupError::Refused(
                "WAHA_API_KEY is a digest: start `wagate export` with the plain key".into(),
            ))
        }
        Some(key) if !config.no_api_key => req = req.header("X-Api-Key", key),
        _ => {}
    }
    let unreachable = |e: reqwest::Error| {
        BackupError::Refused(format!(
            "a gateway holds {} but does not answer at {addr}: {e}",
            config.data_dir.display()
        ))
    };
    let mut resp = req.send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(BackupError::Refused(format!(
            "the gateway answered {status}: {body}"
        )));
    }
    let mut file = BufWriter::new(File::create(out)?);
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        file.write_all(&chunk)?;
    }
    file.flush()?;
    drop(file);
    totals_of(out)
}

/// The totals an export's last line states; an export without one was cut short.
fn totals_of(path: &Path) -> Result<Totals, BackupError> {
    #[derive(serde::Deserialize)]
    struct End {
        end: Totals,
    }
    let last = BufReader::new(File::open(path)?)
        .lines()
        .last()
        .transpose()?
        .unwrap_or_default();
    serde_json::from_str::<End>(&last)
        .map(|e| e.end)
        .map_err(|_| BackupError::Refused("the export was cut short: no end line".into()))
}
