//! The kubeconfig file (client-go's `clientcmd/api/v1` format): certificates inline as base64 PEM.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::pki::CertKey;

#[derive(Debug, Default, Clone)]
pub(crate) struct Kubeconfig {
    clusters: Vec<Value>,
    users: Vec<Value>,
    contexts: Vec<Value>,
    pub current_context: String,
}

impl Kubeconfig {
    pub fn add_cluster(&mut self, name: &str, server: &str, ca_pem: &str) {
        self.clusters.push(json!({
            "name": name,
            "cluster": {
                "server": server,
                "certificate-authority-data": B64.encode(ca_pem),
            },
        }));
    }

    pub fn add_user(&mut self, name: &str, id: &CertKey) {
        self.users.push(json!({
            "name": name,
            "user": {
                "client-certificate-data": B64.encode(&id.cert_pem),
                "client-key-data": B64.encode(&id.key_pem),
            },
        }));
    }

    pub fn add_context(&mut self, name: &str, cluster: &str, user: &str, namespace: Option<&str>) {
        let mut ctx = json!({"cluster": cluster, "user": user});
        if let Some(ns) = namespace {
            ctx["namespace"] = ns.into();
        }
        self.contexts.push(json!({"name": name, "context": ctx}));
    }

    pub fn to_value(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": self.clusters,
            "users": self.users,
            "contexts": self.contexts,
            "current-context": self.current_context,
        })
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.to_value()).expect("a JSON value always serializes")
    }
}
