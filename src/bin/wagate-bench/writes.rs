//! The write load the write, webhook, backlog and idempotency scenarios make: `PUT subject`
//! renames spread over the bench's groups, in a closed loop or as a fixed number of changes.

use std::sync::Arc;

use serde_json::json;

/// Makes the changes numbered `range`, `conns` at a time; answers how many succeeded.
pub async fn make_changes<F>(op: &Arc<F>, range: std::ops::Range<u64>, conns: usize) -> u64
where
    F: Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync
        + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(conns));
    let mut tasks = Vec::new();
    for i in range {
        let (op, sem) = (op.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.ok()?;
            op((i % 64) as usize, i).await.then_some(())
        }));
    }
    let mut made = 0;
    for t in tasks {
        if matches!(t.await, Ok(Some(()))) {
            made += 1;
        }
    }
    made
}

pub fn subject_op(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    rename_op(c, base, ids, None)
}

/// A `PUT subject` on one of `ids`; with `keys: Some(tag)`, each with a fresh `Idempotency-Key`.
pub fn rename_op(
    c: &reqwest::Client,
    base: &str,
    ids: &[String],
    keys: Option<u64>,
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let c = c.clone();
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("{base}/api/bench/groups/{id}/subject"))
            .collect(),
    );
    move |w, i| {
        let mut req = c
            .put(urls[(w + i as usize) % urls.len()].clone())
            .json(&json!({"subject": format!("subject {i}")}));
        if let Some(tag) = keys {
            req = req.header("idempotency-key", format!("bench-{tag}-{w}-{i}"));
        }
        Box::pin(async move { req.send().await.is_ok_and(|r| r.status().is_success()) })
    }
}
