//! Waiting on one object with the Kubernetes watch API: a list by name gives the current state
//! and the resourceVersion to watch from, then every change arrives as it happens.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;

use super::clients::ContextClient;
use super::failure::ContextFailure;

/// The longest watch the API server is asked for; it ends watches after its own limit anyway.
const LONGEST_WATCH: Duration = Duration::from_secs(290);

/// After a watch broke for another reason than a stale resourceVersion (a dropped connection,
/// a user not allowed to watch), the next list is this much later.
const AFTER_BROKEN_WATCH: Duration = Duration::from_millis(500);

/// How a wait on an object ended short of its condition.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("timed out")]
    TimedOut,
    #[error("{}", .0.message)]
    Failed(ContextFailure),
}

/// Waits until `done` holds for the object `name` (`None`: it does not exist), calling it with
/// the current state and again with each change, until `deadline`.
pub async fn until<K, F>(
    client: &ContextClient,
    api: &Api<K>,
    name: &str,
    deadline: Instant,
    mut done: F,
) -> Result<(), WatchError>
where
    K: Clone + DeserializeOwned + Debug + kube::Resource,
    F: FnMut(Option<&K>) -> bool,
{
    let by_name = format!("metadata.name={name}");
    let wait = async {
        loop {
            let list = client
                .call(api.list(&ListParams::default().fields(&by_name)))
                .await
                .map_err(WatchError::Failed)?;
            if done(list.items.first()) {
                return Ok(());
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let seconds = remaining.min(LONGEST_WATCH).as_secs().max(1) as u32;
            let params = WatchParams::default().fields(&by_name).timeout(seconds);
            match follow(api, &params, &version, &mut done).await {
                Followed::Done => return Ok(()),
                Followed::Expired | Followed::Ended => {}
                Followed::Broken(reason) => {
                    tracing::debug!("watch of {name} broke ({reason}); listing again");
                    tokio::time::sleep(AFTER_BROKEN_WATCH).await;
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline.into(), wait).await {
        Ok(result) => result,
        Err(_) => Err(WatchError::TimedOut),
    }
}

enum Followed {
    Done,
    /// The resourceVersion is older than the server keeps (410 Gone): list again.
    Expired,
    /// The server ended the watch (its timeout): list again.
    Ended,
    Broken(String),
}

async fn follow<K, F>(api: &Api<K>, params: &WatchParams, version: &str, done: &mut F) -> Followed
where
    K: Clone + DeserializeOwned + Debug + kube::Resource,
    F: FnMut(Option<&K>) -> bool,
{
    let stream = match api.watch(params, version).await {
        Ok(stream) => stream,
        Err(err) => return Followed::Broken(err.to_string()),
    };
    let mut stream = stream.boxed();
    loop {
        match stream.try_next().await {
            Ok(Some(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                if done(Some(&object)) {
                    return Followed::Done;
                }
            }
            Ok(Some(WatchEvent::Deleted(_))) => {
                if done(None) {
                    return Followed::Done;
                }
            }
            Ok(Some(WatchEvent::Bookmark(_))) => {}
            Ok(Some(WatchEvent::Error(status))) if status.code == 410 => return Followed::Expired,
            Ok(Some(WatchEvent::Error(status))) => return Followed::Broken(status.message),
            Ok(None) => return Followed::Ended,
            Err(err) => return Followed::Broken(err.to_string()),
        }
    }
}
