//! Links to a cluster outside every kubeconfig context (Elastic Cloud Hosted, ECE,
//! self-managed): the local half of the API-key model with a key handed over or created through
//! the remote's URL, or the certificate model with the remote's transport CA.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;

use crate::error::UserError;
use crate::es::EsClient;
use crate::k8s::eck;
use crate::observe::{self, files};
use crate::output::{self, API_VERSION};
use crate::plan::{self, RemoteCa};
use crate::workflow::request::{LinkRequest, MutationOptions, Outcome, RemoteApi};
use crate::workflow::{self, Session};

/// Whether the authority of `url` carries `user[:password]@`.
fn url_has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// The API key of a link to a cluster outside Kubernetes: from a file, the one the local
/// keystore already holds (when still active there), or one the plugin creates through the
/// remote's URL.
struct KeySource {
    encoded: secrecy::SecretString,
    id: String,
    /// The remote's URL when the plugin created (or earlier created) the key there.
    created_at: Option<String>,
    /// Whether this run created the key (until the keystore holds it, a failure invalidates it).
    fresh: bool,
    /// The remote's API, when given: after the link, it invalidates the keys of this link
    /// that an interrupted earlier run created but never stored.
    remote: Option<(EsClient, String)>,
}

async fn key_source(
    target: &Session,
    args: &LinkRequest,
    alias: &str,
) -> anyhow::Result<KeySource> {
    if let Some(path) = &args.api_key_file {
        let (encoded, id) = files::read_api_key(path)?;
        return Ok(KeySource {
            encoded,
            id,
            created_at: None,
            fresh: false,
            remote: None,
        });
    }
    let remote = &args.remote_api;
    let Some(url) = &remote.remote_url else {
        return Err(UserError::MissingKeySource.into());
    };
    let es = connect_remote_api(remote, url).await?;
    let client = &target.client;
    let name = plan::api_key_name(
        &observe::cluster_id(client, &target.namespace, &args.local),
        alias,
    );
    // A key the keystore already holds and the remote still accepts is kept.
    let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
    let secret_name = format!("{}-remote-cluster-credentials", args.local);
    if let Ok(Some(secret)) = client.call(secrets.get_opt(&secret_name)).await
        && let Some(id) = observe::stored_key_id(&secret, alias)
        && let Some(bytes) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&plan::credentials_key(alias)))
        && remote_key_active(&es, &id).await
    {
        let encoded = secrecy::SecretString::from(String::from_utf8_lossy(&bytes.0).into_owned());
        return Ok(KeySource {
            encoded,
            id,
            created_at: Some(url.clone()),
            fresh: false,
            remote: Some((es, name)),
        });
    }
    let access = plan::cross_cluster_access(&args.search_indices, &args.replication_indices);
    let created = es
        .post(
            "/_security/cross_cluster/api_key",
            &serde_json::json!({
                "name": name,
                "access": access,
                "metadata": {"managed-by": plan::MANAGED_BY, "local-context": client.context,
                             "local-namespace": target.namespace, "local-name": args.local, "alias": alias},
            }),
        )
        .await
        .with_context(|| format!("creating the cross-cluster API key on {url}"))?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let encoded = created["encoded"].as_str().unwrap_or_default().to_string();
    if id.is_empty() || encoded.is_empty() {
        anyhow::bail!("{url} answered without an API key");
    }
    Ok(KeySource {
        encoded: secrecy::SecretString::from(encoded),
        id,
        created_at: Some(url.clone()),
        fresh: true,
        remote: Some((es, name)),
    })
}

impl KeySource {
    /// Once the keystore holds this key: the other active keys of the link on the remote
    /// (made by a run killed before it stored its key) are invalidated.
    async fn invalidate_leftovers(&self) {
        let Some((es, name)) = &self.remote else {
            return;
        };
        invalidate_link_keys(es, name, Some(&self.id)).await;
    }

    /// After a failed run: a key this run created that the keystore does not hold is
    /// invalidated, so no orphan key is left on the remote.
    async fn undo_if_unused(&self, target: &Session, args: &LinkRequest) {
        let Some((es, _)) = self.remote.as_ref().filter(|_| self.fresh) else {
            return;
        };
        let client = &target.client;
        let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
        let alias = args.external.clone().unwrap_or_default();
        let stored = client
            .call(secrets.get_opt(&format!("{}-remote-cluster-credentials", args.local)))
            .await
            .ok()
            .flatten()
            .and_then(|s| observe::stored_key_id(&s, &alias));
        if stored.as_deref() == Some(self.id.as_str()) {
            return;
        }
        match es
            .delete("/_security/api_key", &serde_json::json!({"ids": [self.id]}))
            .await
        {
            Ok(_) => output::warning(&format!(
                "invalidated the API key {} created on the remote, since the link could not be completed",
                self.id
            )),
            Err(err) => output::warning(&format!(
                "could not invalidate the API key {} on the remote ({err}); invalidate it there",
                self.id
            )),
        }
    }
}

/// `--public-ca` without `--ca-file`: the CA above the remote's own certificate, read from the
/// verified TLS handshake of `--remote-url` (on Elastic Cloud Hosted one publicly trusted
/// certificate serves the REST API and the remote cluster server alike). It goes into the
/// plugin's CA bundle like a `--ca-file`: Elasticsearch trusts the JVM's public CAs on the
/// remote cluster client only while no `certificate_authorities` list is set there
/// (`SslConfigurationLoader.buildTrustConfig`), and ECK sets one with any API-key remote.
async fn public_root(args: &LinkRequest) -> anyhow::Result<RemoteCa> {
    let Some(url) = &args.remote_api.remote_url else {
        return Err(UserError::PublicCaNeedsRoot.into());
    };
    let es = connect_remote_api(&args.remote_api, url).await?;
    let ca = files::issuer_of_chain(es.peer_chain())
        .ok_or_else(|| UserError::NoIssuerInHandshake { url: url.clone() })?;
    output::info(&format!(
        "Trusting the CA sha256:{} that {url} presented above its certificate (--public-ca).",
        ca.fingerprint
    ));
    Ok(ca)
}

/// The remote's HTTPS API with the credentials given; a remote that cannot be reached is the
/// user's input to fix (exit 2), before anything is written.
pub async fn connect_remote_api(remote: &RemoteApi, url: &str) -> anyhow::Result<EsClient> {
    // A URL with user:password@ would be echoed in messages and stored in the link record.
    if url_has_credentials(url) {
        return Err(UserError::CredentialsInUrl.into());
    }
    let password_file = remote
        .remote_password_file
        .as_deref()
        .ok_or(UserError::MissingRemotePassword)?;
    let password = String::from_utf8(files::read_input_file(password_file)?).map_err(|_| {
        UserError::BadInputFile {
            path: password_file.to_path_buf(),
            reason: "is not UTF-8 text; put the password alone in the file".to_string(),
        }
    })?;
    let password = secrecy::SecretString::from(password.trim_end_matches(['\n', '\r']).to_string());
    let ca = match &remote.remote_ca_file {
        Some(path) => Some(files::read_input_file(path)?),
        None => None,
    };
    let es = EsClient::connect_url(
        url,
        ca.as_deref(),
        &remote.remote_user,
        &password,
        std::time::Duration::from_secs(15),
    )
    .await
    .map_err(|e| UserError::RemoteApi {
        url: url.to_string(),
        reason: format!("{e:#}"),
    })?;
    es.get("/").await.map_err(|e| UserError::RemoteApi {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    Ok(es)
}

/// Invalidates the active keys named `name` the plugin made on the remote behind `es`, but
/// `keep`; says what it did, and warns (naming the ids) when it could not.
pub async fn invalidate_link_keys(es: &EsClient, name: &str, keep: Option<&str>) -> Vec<String> {
    let ids: Vec<String> = match observe::plugin_keys_named(es, name).await {
        Ok(ids) => ids
            .into_iter()
            .filter(|id| Some(id.as_str()) != keep)
            .collect(),
        Err(err) => {
            output::warning(&format!(
                "could not list the link's API keys named {name} on the remote ({err:#}); check there for keys left active"
            ));
            return Vec::new();
        }
    };
    if ids.is_empty() {
        return ids;
    }
    match es
        .delete("/_security/api_key", &serde_json::json!({"ids": ids}))
        .await
    {
        Ok(_) => output::info(&format!(
            "Invalidated {} API key(s) of this link on the remote that an interrupted run left: {}.",
            ids.len(),
            ids.join(", ")
        )),
        Err(err) => output::warning(&format!(
            "could not invalidate the link's API keys {} on the remote ({err}); invalidate them there",
            ids.join(", ")
        )),
    }
    ids
}

async fn remote_key_active(es: &EsClient, id: &str) -> bool {
    es.get(&format!(
        "/_security/api_key?id={}",
        crate::es::query_value(id)
    ))
    .await
    .ok()
    .and_then(|found| found["api_keys"].as_array()?.first().cloned())
    .is_some_and(|key| key["invalidated"] == serde_json::Value::Bool(false))
}

/// `link LOCAL --external ALIAS`: the local half of an API-key link to a cluster outside every
/// kubeconfig context, with the key and CA the user hands over.
pub async fn link(target: &Session, args: &LinkRequest) -> anyhow::Result<Outcome> {
    if args.security == Some(plan::SecurityModel::Certificate) {
        return link_certificate(target, args).await;
    }
    let flags = &args.mutation;
    let alias = args.external.clone().unwrap_or_default();
    // Checked before anything is read from the cluster, let alone written.
    let ca_path = args.ca_file.as_deref().unwrap_or(std::path::Path::new(""));
    let ca = match (&args.ca_file, args.public_ca) {
        (Some(_), _) => Some(files::read_ca_file(ca_path, jiff::Timestamp::now())?),
        (None, true) => Some(public_root(args).await?),
        (None, false) => return Err(UserError::MissingCa.into()),
    };
    let deadline = std::time::Instant::now() + workflow::parse_wait_timeout(&flags.timeout)?;
    let source = key_source(target, args, &alias).await?;
    let request = plan::ExternalRequest {
        alias: alias.clone(),
        proxy_address: args.proxy_address.clone().unwrap_or_default(),
        server_name: args.server_name.clone(),
        ca,
        key_id: source.id.clone(),
        key_created_at: source.created_at.clone(),
        skip_unavailable: args.skip_unavailable,
    };
    let key = source.encoded.clone();
    let given = BTreeMap::from([(plan::OUTPUT_KEY_ENCODED.to_string(), key)]);
    let client = &target.client;
    let applied = workflow::plan_and_apply_given(&[client], &target.es, flags, &given, || {
        let request = &request;
        async move {
            let local = observe::read_es(client, &target.namespace, &args.local).await?;
            let secrets = Api::<Secret>::namespaced(client.client.clone(), &target.namespace);
            let maps = Api::<ConfigMap>::namespaced(client.client.clone(), &target.namespace);
            let credentials_name = plan::credentials_secret_name(&local.id);
            let bundle_name = plan::ca_bundle_name(&local.id);
            let (operator, credentials, bundle, settings, pending) = tokio::join!(
                eck::operator_facts(client, &target.namespace),
                client.call(secrets.get_opt(&credentials_name)),
                client.call(maps.get_opt(&bundle_name)),
                observe::alias_settings(client, &target.es, &local, &request.alias, deadline),
                observe::read_pending(client, &local.id, &request.alias),
            );
            let credentials = credentials?;
            let observed = plan::ExternalObserved {
                stored_key_id: credentials
                    .as_ref()
                    .and_then(|s| observe::stored_key_id(s, &request.alias)),
                credentials_secret: credentials.map(observe::without_values),
                ca_bundle: bundle?.map(observe::to_value),
                local_alias_settings: settings?,
                pending: pending?,
                operator,
                local,
            };
            Ok(plan::plan_external_link(&observed, request).map_err(UserError::from)?)
        }
    })
    .await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => {
            source.undo_if_unused(target, args).await;
            return Err(err);
        }
    };
    if flags.dry_run == crate::apply::DryRun::None {
        source.invalidate_leftovers().await;
    }
    let local_id = observe::cluster_id(client, &target.namespace, &args.local);
    let connected =
        workflow::wait_until_connected(client, &target.es, flags, &local_id, &alias, &[])
            .await
            .map_err(|err| {
                workflow::applied_but_pending(
                    err,
                    &applied.planned.plan,
                    &format!("the connection of alias {alias:?}"),
                )
            })?;
    // Said once the waits succeeded.
    say_external_linked(&local_id, &alias, &applied.planned, flags);
    external_result(&local_id, &alias, &applied, flags, connected)
}

/// What a link to a cluster outside Kubernetes did, on stderr.
fn say_external_linked(
    local_id: &plan::ClusterId,
    alias: &str,
    planned: &plan::LinkPlan,
    flags: &MutationOptions,
) {
    if planned.plan.is_empty() {
        output::info(&format!(
            "Remote cluster {alias:?} is already linked from {local_id}: nothing to change."
        ));
    } else if flags.dry_run == crate::apply::DryRun::None {
        output::info(&format!(
            "Linked {local_id} to the external cluster {alias:?} ({} security model, proxy mode).",
            planned.security
        ));
    }
}

/// `-o json|yaml` of a link to a cluster outside Kubernetes.
fn external_result(
    local_id: &plan::ClusterId,
    alias: &str,
    applied: &workflow::Applied<plan::LinkPlan>,
    flags: &MutationOptions,
    connected: Option<bool>,
) -> anyhow::Result<Outcome> {
    Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "LinkResult",
        "local": local_id,
        "external": alias,
        "security": applied.planned.security,
        "dryRun": flags.dry_run,
        "plan": applied.planned.plan,
        "writes": applied.writes,
        "connected": connected,
    }))
}

/// `link LOCAL --external ALIAS --security certificate`: the local trusts the remote's transport
/// CA and connects to its transport; the remote's administrator must trust the local's CA, which
/// is printed on stdout for them.
async fn link_certificate(target: &Session, args: &LinkRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let alias = args.external.clone().unwrap_or_default();
    let Some(ca_path) = &args.ca_file else {
        return Err(UserError::MissingCa.into());
    };
    let remote_ca = files::read_ca_file(ca_path, jiff::Timestamp::now())?;
    let subjects = files::restriction_subjects(
        args.restriction.trust_file.as_deref(),
        &args.restriction.trust_subject,
    )?;
    let proxy_address = args.proxy_address.clone().unwrap_or_default();
    let deadline = std::time::Instant::now() + workflow::parse_wait_timeout(&flags.timeout)?;
    let client = &target.client;
    // This cluster's transport CA as the planning read it, to hand over once applied.
    let own_ca: std::cell::RefCell<Option<RemoteCa>> = Default::default();
    let applied = workflow::plan_and_apply(&[client], &target.es, flags, || {
        let (alias, remote_ca, proxy_address, subjects, own_ca) =
            (&alias, &remote_ca, &proxy_address, &subjects, &own_ca);
        async move {
            let local = observe::read_es(client, &target.namespace, &args.local).await?;
            let (operator, settings) = tokio::join!(
                eck::operator_facts(client, &target.namespace),
                observe::alias_settings(client, &target.es, &local, alias, deadline),
            );
            let settings = settings?;
            let side = observe::trust_side(client, local).await?;
            own_ca.replace(side.own_ca.clone());
            let restricted =
                observe::restricted_when_asked(client, &side, subjects.as_ref()).await?;
            let restriction = observe::restriction(restricted.as_ref(), subjects.as_ref());
            let request = plan::ExternalCertificateRequest {
                alias,
                proxy_address,
                remote_ca,
                skip_unavailable: args.skip_unavailable,
                restriction,
            };
            Ok(
                plan::plan_external_certificate_link(&side, &operator, &settings, request)
                    .map_err(UserError::from)?,
            )
        }
    })
    .await?;
    let local_id = observe::cluster_id(client, &target.namespace, &args.local);
    say_external_linked(&local_id, &alias, &applied.planned, flags);
    let mut handover = None;
    if let Some(own) = own_ca.into_inner() {
        output::info(&format!(
            "The remote connects back only once its administrator trusts this cluster's transport CA (sha256:{}), printed on stdout; then check with `kubectl remote-cluster describe {}`.",
            own.fingerprint, args.local
        ));
        handover = Some(own.pem);
    }
    Ok(external_result(&local_id, &alias, &applied, flags, None)?.with_text(handover))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_noticed() {
        for url in [
            "https://elastic:s3cret@es.example:9243",
            "https://elastic@es.example",
            "elastic:pw@es.example:9200/path",
        ] {
            assert!(url_has_credentials(url), "{url}");
        }
        for url in [
            "https://es.example:9243",
            "https://es.example/_search?q=a@b",
            "https://[::1]:9200/#x@y",
        ] {
            assert!(!url_has_credentials(url), "{url}");
        }
    }
}
