//! One Kubernetes client per context, built once and shared by every command.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{Config, KubeConfigOptions};
use tokio::sync::OnceCell;

use super::failure::ContextFailure;
use super::kubeconfig::LoadedKubeconfig;
use crate::plan::ClusterIdentity;

/// A client bound to a kubeconfig context.
#[derive(Clone)]
pub struct ContextClient {
    pub context: String,
    pub server: String,
    pub namespace: String,
    pub client: kube::Client,
    pub request_timeout: Option<Duration>,
    /// The UID of the `kube-system` namespace, read once (see [`ContextClient::identity`]).
    cluster_uid: Arc<OnceCell<Option<String>>>,
}

/// Two identities name one cluster: by UID when both sides have one, else by the normalised
/// server URL.
pub fn same_cluster(a: &ClusterIdentity, b: &ClusterIdentity) -> bool {
    match (&a.uid, &b.uid) {
        (Some(x), Some(y)) => x == y,
        _ => {
            super::kubeconfig::server_identity(&a.server)
                == super::kubeconfig::server_identity(&b.server)
        }
    }
}

/// Builds clients lazily, at most once per context, and hands out shared copies.
pub struct ClientPool {
    kubeconfig: Arc<LoadedKubeconfig>,
    request_timeout: Option<Duration>,
    cells: HashMap<String, Arc<OnceCell<Result<ContextClient, ContextFailure>>>>,
}

impl ClientPool {
    pub fn new(kubeconfig: Arc<LoadedKubeconfig>, request_timeout: Option<Duration>) -> Self {
        let cells = kubeconfig
            .context_names()
            .into_iter()
            .map(|name| (name, Arc::new(OnceCell::new())))
            .collect();
        Self {
            kubeconfig,
            request_timeout,
            cells,
        }
    }

    pub fn kubeconfig(&self) -> &LoadedKubeconfig {
        &self.kubeconfig
    }

    /// The client of a context (selected and checked beforehand).
    pub async fn client(&self, context: &str) -> Result<ContextClient, ContextFailure> {
        let server = self.kubeconfig.server_of(context).unwrap_or_default();
        let Some(cell) = self.cells.get(context) else {
            return Err(ContextFailure::invalid_config(
                context,
                &server,
                "the context is not in the kubeconfig",
            ));
        };
        cell.get_or_init(|| self.build(context, server.clone()))
            .await
            .clone()
    }

    async fn build(&self, context: &str, server: String) -> Result<ContextClient, ContextFailure> {
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..KubeConfigOptions::default()
        };
        let mut config = Config::from_custom_kubeconfig(self.kubeconfig.config.clone(), &options)
            .await
            .map_err(|err| ContextFailure::invalid_config(context, &server, &err.to_string()))?;
        if let Some(timeout) = self.request_timeout {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
        }
        let client = kube::Client::try_from(config)
            .map_err(|err| ContextFailure::from_kube(context, &server, &err))?;
        Ok(ContextClient {
            context: context.to_string(),
            namespace: self.kubeconfig.namespace_of(context),
            server,
            client,
            request_timeout: self.request_timeout,
            cluster_uid: Arc::default(),
        })
    }
}

impl ContextClient {
    /// The cluster's identity; the UID is read once per client and a failed read (no access,
    /// unreachable) leaves only the server URL.
    pub async fn identity(&self) -> ClusterIdentity {
        let uid = self
            .cluster_uid
            .get_or_init(|| async {
                let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                    kube::Api::all(self.client.clone());
                match self.call(namespaces.get("kube-system")).await {
                    Ok(namespace) => namespace.metadata.uid,
                    Err(failure) => {
                        tracing::debug!(
                            target: "remote_cluster",
                            "context {}: no cluster UID ({}); comparing by server URL",
                            self.context,
                            failure.message
                        );
                        None
                    }
                }
            })
            .await
            .clone();
        ClusterIdentity {
            uid,
            server: self.server.clone(),
        }
    }

    /// Runs one API call under the request timeout, turning failures into a diagnosis.
    pub async fn call<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ContextFailure> {
        let outcome = match self.request_timeout {
            Some(limit) => match tokio::time::timeout(limit, request).await {
                Ok(result) => result,
                Err(_) => return Err(ContextFailure::timeout(&self.context, &self.server, limit)),
            },
            None => request.await,
        };
        outcome.map_err(|err| ContextFailure::from_kube(&self.context, &self.server, &err))
    }
}
