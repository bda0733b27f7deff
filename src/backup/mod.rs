//! Backups (contract §8). An export is every store of a data dir — the gateway's own and each
//! session's — as JSON lines, each store copied between two commit rounds (so that every
//! change in it is whole, with its events and delivery jobs); an import writes them back into
//! an empty data dir.
//!
//! ```text
//! {"wagate":"export","version":1}
//! {"store":"gateway"}
//! {"tree":"meta","key":"<base64>","value":"<base64>"}
//! {"store":"sessions/alpha"}
//! ...
//! {"end":{"stores":2,"entries":123}}
//! ```
//! The last line lets an import tell a whole file from a cut one.

pub mod cli;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ids::SessionName;
use crate::sessions::Registry;
use crate::store::{restore, SessionStore, Snapshot, StoreError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One line of an export.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Head {
        wagate: String,
        version: u32,
    },
    Store {
        store: String,
    },
    Entry {
        tree: String,
        key: String,
        value: String,
    },
    End {
        end: Totals,
    },
}

#[derive(Serialize, Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub stores: usize,
    pub entries: usize,
}

/// Why a backup could not be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("line {line}: {detail}")]
    Format { line: usize, detail: String },
    #[error("{0}")]
    Refused(String),
}

fn line_bytes(line: &Line) -> Vec<u8> {
    let mut out = serde_json::to_vec(line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The first line of every export.
pub fn head() -> Vec<u8> {
    line_bytes(&Line::Head {
        wagate: "export".into(),
        version: 1,
    })
}

/// One store's lines; adds it to `totals`.
pub fn store_lines(path: &str, snap: &Snapshot, totals: &mut Totals) -> Vec<u8> {
    let mut out = line_bytes(&Line::Store {
        store: path.to_owned(),
    });
    for (tree, entries) in &snap.trees {
        for (k, v) in entries {
            out.extend(line_bytes(&Line::Entry {
                tree: (*tree).to_owned(),
                key: B64.encode(k),
                value: B64.encode(v),
            }));
            totals.entries += 1;
        }
    }
    totals.stores += 1;
    out
}

/// The last line.
pub fn end(totals: Totals) -> Vec<u8> {
    line_bytes(&Line::End { end: totals })
}

/// The stores of a running gateway with their paths in an export: the gateway's own, then each
/// session's by name.
pub fn stores(registry: &Registry) -> Vec<(String, Arc<SessionStore>)> {
    let mut sessions: Vec<_> = registry
        .list()
        .into_iter()
        .map(|s| (format!("sessions/{}", s.name), s.store.clone()))
        .collect();
    sessions.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = vec![("gateway".to_owned(), registry.gateway().clone())];
    out.extend(sessions);
    out
}

/// Exports a running gateway: each store copied between two commit rounds, its lines handed
/// to `send` (which may stream them out) before the next store is copied.
pub async fn export_running<F, Fut>(registry: &Registry, mut send: F) -> Result<Totals, BackupError>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<(), BackupError>>,
{
    send(head()).await?;
    let mut totals = Totals::default();
    for (path, store) in stores(registry) {
        let snap = registry
            .committer()
            .between_rounds(move || store.snapshot())
            .await??;
        send(store_lines(&path, &snap, &mut totals)).await?;
    }
    send(end(totals)).await?;
    Ok(totals)
}

/// The stores of a data dir no gateway runs on, as paths in an export and on disk.
fn stores_on_disk(data: &Path) -> Result<Vec<(String, PathBuf)>, BackupError> {
    let mut out = Vec::new();
    if data.join("gateway").is_dir() {
        out.push(("gateway".to_owned(), data.join("gateway")));
    }
    let sessions = data.join("sessions");
    if sessions.is_dir() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&sessions)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if SessionName::parse(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        out.extend(
            names
                .into_iter()
                .map(|n| (format!("sessions/{n}"), sessions.join(&n))),
        );
    }
    Ok(out)
}

/// Exports a data dir no gateway runs on (its stores are opened here, one at a time).
pub fn export_dir(data: &Path, out: &mut impl Write) -> Result<Totals, BackupError> {
    out.write_all(&head())?;
    let mut totals = Totals::default();
    for (path, dir) in stores_on_disk(data)? {
        let store = SessionStore::open(&dir, Default::default())?;
        let snap = store.snapshot()?;
        out.write_all(&store_lines(&path, &snap, &mut totals))?;
    }
    out.write_all(&end(totals))?;
    out.flush()?;
    Ok(totals)
}

/// Where an export's store path goes under `data`: `gateway` or `sessions/<valid name>`,
/// nothing else (an export is input: no `..`, no absolute path).
fn store_dir(data: &Path, path: &str) -> Option<PathBuf> {
    if path == "gateway" {
        return Some(data.join("gateway"));
    }
    let name = path.strip_prefix("sessions/")?;
    SessionName::parse(name).ok()?;
    Some(data.join("sessions").join(name))
}

/// Imports an export into `data`, which must hold no store yet. A file that is cut short or
/// malformed is refused, and the stores it had begun are removed.
pub fn import(data: &Path, input: impl BufRead) -> Result<Totals, BackupError> {
    if !stores_on_disk(data)?.is_empty() {
        return Err(BackupError::Refused(format!(
            "{} already holds stores: import only into an empty data dir",
            data.display()
        )));
    }
    let result = import_lines(data, input);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(data.join("gateway"));
        let _ = std::fs::remove_dir_all(data.join("sessions"));
    }
    result
}

fn import_lines(data: &Path, input: impl BufRead) -> Result<Totals, BackupError> {
    let mut totals = Totals::default();
    let mut current: Option<Restoring> = None;
    let mut ended = None;
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let bad = |detail: String| BackupError::Format { line: n, detail };
        let line: Line = serde_json::from_str(&line?).map_err(|e| bad(e.to_string()))?;
        match (n, line) {
            (1, Line::Head { wagate, version }) if wagate == "export" && version == 1 => {}
            (1, _) => return Err(bad("not a wagate export (version 1)".into())),
            (_, _) if ended.is_some() => return Err(bad("a line after the end".into())),
            (_, Line::Store { store }) => {
                flush_store(current.take(), &mut totals)?;
                let dir = store_dir(data, &store).ok_or_else(|| bad(format!("store {store:?}")))?;
                current = Some((dir, Vec::new()));
            }
            (_, Line::Entry { tree, key, value }) => {
                let (_, entries) = current
                    .as_mut()
                    .ok_or_else(|| bad("an entry before any store".into()))?;
                let key = B64.decode(key).map_err(|e| bad(format!("key: {e}")))?;
                let value = B64.decode(value).map_err(|e| bad(format!("value: {e}")))?;
                entries.push((tree, key, value));
            }
            (_, Line::End { end }) => {
                flush_store(current.take(), &mut totals)?;
                ended = Some(end);
            }
            (_, Line::Head { .. }) => return Err(bad("a second head line".into())),
        }
    }
    match ended {
        Some(end) if end == totals => Ok(totals),
        Some(end) => Err(BackupError::Refused(format!(
            "the export says {end:?} but holds {totals:?}"
        ))),
        None => Err(BackupError::Refused(
            "the export is cut short: no end line".into(),
        )),
    }
}

/// A store being read from an export: where it goes, and its entries (tree, key, value).
type Restoring = (PathBuf, Vec<(String, Vec<u8>, Vec<u8>)>);

fn flush_store(store: Option<Restoring>, totals: &mut Totals) -> Result<(), BackupError> {
    if let Some((dir, entries)) = store {
        let n = restore(
            &dir,
            entries
                .iter()
                .map(|(t, k, v)| (t.as_str(), k.clone(), v.clone())),
        )?;
        totals.entries += n;
        totals.stores += 1;
    }
    Ok(())
}
