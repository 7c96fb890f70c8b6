//! `kubectl remote-cluster export REMOTE --for ALIAS`: an ECK cluster prepared as the remote of
//! a cluster outside Kubernetes, and what the other side needs, handed over as files.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use secrecy::ExposeSecret;

use crate::apply::DryRun;
use crate::error::UserError;
use crate::es::EsClient;
use crate::k8s::eck;
use crate::observe;
use crate::output::{self, API_VERSION};
use crate::plan;
use crate::workflow::request::{ExportRequest, Outcome, Scope, UnexportRequest};
use crate::workflow::{self, PlanOnly, Session, external};

/// `export REMOTE --for ALIAS`.
pub async fn export(scope: &Scope, args: &ExportRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let target = Session::open(scope, "export").await?;
    let client = &target.client;
    // The local cluster to configure is checked before anything is written here.
    let apply_to = match &args.apply_to.remote_url {
        Some(url) => Some(external::connect_remote_api(&args.apply_to, url).await?),
        None => None,
    };
    let out_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-export-{}", args.remote, args.alias)));
    // Refused before anything is written to the cluster: the handover could not be written.
    check_output_dir(&out_dir)?;
    if args.restriction.given() && args.security != plan::SecurityModel::Certificate {
        return Err(UserError::TrustWithoutCertificate.into());
    }
    if args.security == plan::SecurityModel::Certificate {
        return export_certificate(&target, args, apply_to.as_ref()).await;
    }
    let request = plan::ExportRequest {
        alias: args.alias.clone(),
        search_indices: args.search_indices.clone(),
        replication_indices: args.replication_indices.clone(),
        expose: args.expose,
        proxy_address: args.proxy_address.clone(),
    };
    // What the last planning read, for the handover once the plan is applied.
    let seen: std::cell::RefCell<(Option<plan::RemoteCa>, Option<String>)> = Default::default();
    let applied = workflow::plan_and_apply(&[client], &target.es, flags, || {
        let (request, seen) = (&request, &seen);
        let namespace = &target.namespace;
        async move {
            let (remote, operator) = tokio::join!(
                observe::read_es(client, namespace, &args.remote),
                eck::operator_facts(client, namespace),
            );
            let remote = remote?;
            let pending_alias = plan::export_pending_alias(&request.alias);
            let (ca, exposure, pending) = tokio::join!(
                observe::read_transport_ca(client, namespace, &remote.id.name),
                observe::server_exposure(client, &remote.id, &operator),
                observe::read_pending(client, &remote.id, &pending_alias),
            );
            let (ca, (exposed_address, exposure_service_exists)) = (ca?, exposure?);
            *seen.borrow_mut() = (ca.clone(), exposed_address.clone());
            let observed = plan::ExportObserved {
                remote,
                operator,
                exposed_address,
                exposure_service_exists,
                ca,
                pending: pending?,
            };
            Ok(PlanOnly(
                plan::plan_export(&observed, request).map_err(UserError::from)?,
            ))
        }
    })
    .await?;
    if flags.dry_run != DryRun::None {
        return Ok(Outcome::nothing());
    }
    let (observed_ca, observed_address) = seen.into_inner();
    let address = match (
        &args.proxy_address,
        applied.outputs.get(plan::OUTPUT_ADDRESS),
        &observed_address,
    ) {
        (Some(given), _, _) => given.clone(),
        (None, Some(waited), _) => waited.expose_secret().to_string(),
        (None, None, Some(observed)) => observed.clone(),
        (None, None, None) => String::from("(not exposed)"),
    };
    let server_name = format!("{}-es-remote-cluster.{}.svc", args.remote, target.namespace);
    let ca = observed_ca.expect("the plan refuses a remote without a CA");
    let key = applied.outputs.get(plan::OUTPUT_KEY_ENCODED);
    write_handover(
        &out_dir,
        &args.alias,
        &address,
        &server_name,
        &ca.pem,
        key.map(|k| k.expose_secret()),
    )?;
    let mut summary = format!(
        "alias: {}\nproxy_address: {address}\nserver_name: {server_name}\nca: {}\n",
        args.alias,
        out_dir.join("ca.crt").display()
    );
    match key {
        Some(key) => {
            summary.push_str(&format!(
                "api_key_file: {}\n",
                out_dir.join("api-key").display()
            ));
            if args.show_secrets {
                summary.push_str(&format!("api_key: {}\n", key.expose_secret()));
            }
        }
        None => output::warning(&format!(
            "{} was exported for {:?} before and its API key handed over then (it is not kept); run `kubectl remote-cluster unexport {} --for {}` first to make a new one",
            args.remote, args.alias, args.remote, args.alias
        )),
    }
    let outcome = Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "ExportResult",
        "alias": args.alias,
        "proxyAddress": address,
        "serverName": server_name,
        "outputDir": out_dir,
        "writes": applied.writes,
    }))?
    .with_text(Some(summary));
    output::info(&format!(
        "Wrote {} (see INSTRUCTIONS.md there for Elastic Cloud Hosted, ECE and self-managed clusters).",
        out_dir.display()
    ));
    if let (Some(local), Some(url)) = (&apply_to, &args.apply_to.remote_url) {
        apply_remote_settings(
            local,
            url,
            &args.alias,
            &address,
            Some(&server_name),
            "trust ca.crt and add the key to the keystore, steps 1 to 3 of INSTRUCTIONS.md",
        )
        .await?;
    }
    Ok(outcome)
}

/// `export --security certificate`: trust the other side's transport CA, expose the transport,
/// hand over this cluster's transport CA and the address.
async fn export_certificate(
    target: &Session,
    args: &ExportRequest,
    apply_to: Option<&EsClient>,
) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let client = &target.client;
    let Some(ca_path) = &args.ca_file else {
        return Err(UserError::MissingExportCa.into());
    };
    let their_ca = crate::observe::files::read_ca_file(ca_path, jiff::Timestamp::now())?;
    let subjects = crate::observe::files::restriction_subjects(
        args.restriction.trust_file.as_deref(),
        &args.restriction.trust_subject,
    )?;
    let request = plan::ExportRequest {
        alias: args.alias.clone(),
        search_indices: Vec::new(),
        replication_indices: Vec::new(),
        expose: args.expose,
        proxy_address: args.proxy_address.clone(),
    };
    // This cluster's transport CA and its transport's address, as the last planning read them.
    let seen: std::cell::RefCell<(Option<plan::RemoteCa>, Option<String>)> = Default::default();
    let applied = workflow::plan_and_apply(&[client], &target.es, flags, || {
        let (request, their_ca, seen, subjects) = (&request, &their_ca, &seen, &subjects);
        async move {
            let (remote, operator) = tokio::join!(
                observe::read_es(client, &target.namespace, &args.remote),
                eck::operator_facts(client, &target.namespace),
            );
            let side = observe::trust_side(client, remote?).await?;
            let restricted =
                observe::restricted_when_asked(client, &side, subjects.as_ref()).await?;
            let restriction = observe::restriction(restricted.as_ref(), subjects.as_ref());
            let services = Api::<Service>::namespaced(client.client.clone(), &target.namespace);
            let transport = client
                .call(services.get_opt(&format!("{}-es-transport", args.remote)))
                .await?;
            let address =
                eck::load_balancer_address(transport.as_ref(), &plan::ServicePort::transport());
            *seen.borrow_mut() = (side.own_ca.clone(), address.clone());
            Ok(PlanOnly(
                plan::plan_export_certificate(
                    &side,
                    &operator,
                    request,
                    their_ca,
                    address.as_ref(),
                    restriction,
                )
                .map_err(UserError::from)?,
            ))
        }
    })
    .await?;
    if flags.dry_run != DryRun::None {
        return Ok(Outcome::nothing());
    }
    if applied.planned.0.is_empty() {
        output::info(&format!(
            "{} is already exported for {:?} with the certificate model: nothing to change; the handover is written again.",
            args.remote, args.alias
        ));
    }
    let (own_ca, observed_address) = seen.into_inner();
    let address = match (
        &args.proxy_address,
        applied.outputs.get(plan::OUTPUT_ADDRESS),
        observed_address,
    ) {
        (Some(given), _, _) => given.clone(),
        (None, Some(waited), _) => waited.expose_secret().to_string(),
        (None, None, Some(observed)) => observed,
        (None, None, None) => String::from("(not exposed)"),
    };
    let own = own_ca.ok_or_else(|| anyhow::anyhow!("{} has no transport CA yet", args.remote))?;
    let out_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-export-{}", args.remote, args.alias)));
    create_output_dir(&out_dir)?;
    replace_file(&out_dir, "ca.crt", own.pem.as_bytes(), 0o644)?;
    replace_file(
        &out_dir,
        "INSTRUCTIONS.md",
        certificate_instructions(&args.alias, &address, &target.namespace).as_bytes(),
        0o644,
    )?;
    let summary = format!(
        "alias: {}\nproxy_address: {address}\nca: {}\n",
        args.alias,
        out_dir.join("ca.crt").display()
    );
    let outcome = Outcome::document(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "ExportResult",
        "alias": args.alias,
        "security": plan::SecurityModel::Certificate,
        "proxyAddress": address,
        "outputDir": out_dir,
        "writes": applied.writes,
    }))?
    .with_text(Some(summary));
    if let (Some(local), Some(url)) = (apply_to, &args.apply_to.remote_url) {
        apply_remote_settings(
            local,
            url,
            &args.alias,
            &address,
            None,
            "trust ca.crt, step 1 of INSTRUCTIONS.md",
        )
        .await?;
    }
    Ok(outcome)
}

fn certificate_instructions(alias: &str, address: &str, namespace: &str) -> String {
    format!(
        "# Connecting to this ECK cluster as remote cluster `{alias}` (certificate model)

The certificate security model is deprecated since Elasticsearch 9.0. This ECK cluster already
trusts your transport CA. `ca.crt` here is this cluster's transport CA.

## Elastic Cloud Hosted or ECE

1. If not done yet: Security > Remote Connections > Add trusted environment > Self-managed >
   Certificates; upload `ca.crt`; trust clusters whose Common Name follows the Elastic pattern,
   with the Scope ID `{namespace}.es.local` (Elastic's ECE guide gives `default.es.local`).
2. Add the remote cluster `{alias}` in proxy mode with the address `{address}`.

## Self-managed

1. Add `ca.crt` to `xpack.security.transport.ssl.certificate_authorities` on every node, and
   restart them.
2. `PUT _cluster/settings` with `cluster.remote.{alias}.mode: proxy` and
   `cluster.remote.{alias}.proxy_address: {address}`.

## Both

- Create roles with the same names on both clusters: authorization goes by role name.
- `GET _remote/info` shows `{alias}` connected.
"
    )
}

/// `--apply-to`: the remote cluster set on the other side through its API; what needs its nodes
/// (`remaining`) is said, not done.
async fn apply_remote_settings(
    local: &EsClient,
    url: &str,
    alias: &str,
    address: &str,
    server_name: Option<&str>,
    remaining: &str,
) -> anyhow::Result<()> {
    let prefix = format!("cluster.remote.{alias}");
    let mut settings = serde_json::json!({
        format!("{prefix}.mode"): "proxy",
        format!("{prefix}.proxy_address"): address,
    });
    if let Some(name) = server_name {
        settings[format!("{prefix}.server_name")] = serde_json::json!(name);
    }
    local
        .put(
            "/_cluster/settings",
            &serde_json::json!({ "persistent": settings }),
        )
        .await
        .map_err(|e| anyhow::anyhow!("setting the remote cluster on {url}: {e}"))?;
    output::info(&format!(
        "Set cluster.remote.{alias} on {url}. Still to do on its nodes (they need node access): {remaining}."
    ));
    Ok(())
}

/// The files an export writes into its output directory.
const HANDOVER_FILES: [&str; 3] = ["ca.crt", "api-key", "INSTRUCTIONS.md"];

/// The output directory is usable: absent (it is created), or a directory that is not a
/// symbolic link, where each handover file is absent or a regular file (not a link) that an
/// earlier export left and that is replaced.
fn check_output_dir(dir: &Path) -> Result<(), UserError> {
    let refuse = |path: &Path, reason: &str| UserError::BadInputFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(refuse(dir, &format!("cannot be used as --output-dir: {e}")));
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refuse(
                dir,
                "is a symbolic link; give a real directory as --output-dir (or a new path)",
            ));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(refuse(
                dir,
                "is not a directory; give a directory as --output-dir (or a new path)",
            ));
        }
        Ok(_) => {}
    }
    for name in HANDOVER_FILES {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(
                    &path,
                    "is a symbolic link, which the export will not write through; remove it or give another --output-dir",
                ));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(refuse(
                    &path,
                    "is not a regular file; remove it or give another --output-dir",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates the output directory (owner only, when new) and checks it is not a link.
fn create_output_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    check_output_dir(dir)?;
    Ok(())
}

/// Writes `name` in `dir` without ever following a link: the content goes into a new file
/// (exclusive create, no-follow, `mode` from the start), which is then renamed over `name`;
/// the rename replaces a file left there (or a link planted since the check) instead of
/// writing through it.
fn replace_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> anyhow::Result<()> {
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&temporary)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", temporary.display()))?;
    let written = file
        .write_all(content)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, dir.join(name)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(anyhow::anyhow!(
            "cannot write {}: {e}",
            dir.join(name).display()
        ));
    }
    Ok(())
}

/// The files the other side needs; the key readable by the owner only.
fn write_handover(
    dir: &Path,
    alias: &str,
    address: &str,
    server_name: &str,
    ca_pem: &str,
    key: Option<&str>,
) -> anyhow::Result<()> {
    create_output_dir(dir)?;
    replace_file(dir, "ca.crt", ca_pem.as_bytes(), 0o644)?;
    if let Some(key) = key {
        // No final newline: Elasticsearch stores a keystore value byte for byte (`add-file`,
        // ECK's keystore init container, `kubectl create secret --from-file`), and a newline
        // after the key makes it undecodable on the remote.
        replace_file(dir, "api-key", key.as_bytes(), 0o600)?;
    }
    replace_file(
        dir,
        "INSTRUCTIONS.md",
        instructions(alias, address, server_name).as_bytes(),
        0o644,
    )?;
    Ok(())
}

fn instructions(alias: &str, address: &str, server_name: &str) -> String {
    format!(
        "# Connecting to this ECK cluster as remote cluster `{alias}`

API-key security model. Files here: `ca.crt` (the CA of the remote cluster server's certificate)
and `api-key` (the encoded cross-cluster API key; keep it secret, delete it once entered).

Remote cluster settings: mode `proxy`, proxy address `{address}`, server name `{server_name}`.

## Elastic Cloud Hosted or ECE

1. Security > Remote Connections > Add trusted environment > Self-managed > API keys.
2. The CA is private: upload `ca.crt`.
3. Add the alias `{alias}` and paste the content of `api-key`; create the trust (no restart is
   needed from 8.14 on).
4. Add the remote cluster `{alias}` in proxy mode with the address and server name above.

## Self-managed

1. Copy `ca.crt` to every node, for example to `config/remote-{alias}-ca.crt`, and set in
   `elasticsearch.yml`:

       xpack.security.remote_cluster_client.ssl.enabled: true
       xpack.security.remote_cluster_client.ssl.certificate_authorities: [ \"remote-{alias}-ca.crt\" ]

2. On every node: `bin/elasticsearch-keystore add-file cluster.remote.{alias}.credentials api-key`
   (the file holds the key without a final newline; a newline would break it).
3. Restart the nodes (or, when only the key changed, `POST _nodes/reload_secure_settings`).
4. Then:

       PUT _cluster/settings
       {{\"persistent\": {{\"cluster.remote.{alias}.mode\": \"proxy\",
                         \"cluster.remote.{alias}.proxy_address\": \"{address}\",
                         \"cluster.remote.{alias}.server_name\": \"{server_name}\"}}}}

5. Check with `GET _remote/info`: `{alias}` shows `connected: true`.
"
    )
}

/// `unexport REMOTE --for ALIAS`.
pub async fn unexport(scope: &Scope, args: &UnexportRequest) -> anyhow::Result<Outcome> {
    let flags = &args.mutation;
    let target = Session::open(scope, "unexport").await?;
    let client = &target.client;
    let applied = workflow::plan_and_apply(&[client], &target.es, flags, || {
        let (namespace, target) = (&target.namespace, &target);
        async move {
            let remote = observe::read_es(client, namespace, &args.remote).await?;
            let services = Api::<Service>::namespaced(client.client.clone(), namespace);
            let own = plan::exposure_service_name(&remote.id);
            let service = client
                .call(services.get_opt(&own))
                .await?
                .map(|s| serde_json::to_value(s).unwrap_or_default());
            if plan::exported_with_certificate(&remote, &args.alias) {
                let side = observe::trust_side(client, remote).await?;
                let restricted = observe::restricted_side(client, &side).await?;
                return Ok(PlanOnly(
                    plan::plan_unexport_certificate(&side, &restricted, &args.alias)
                        .map_err(UserError::from)?,
                ));
            }
            let others = if args.disable_server {
                observe::others_than(client, &remote.id).await?
            } else {
                Vec::new()
            };
            let request = plan::CrossUnlinkRequest {
                alias: args.alias.clone(),
                disable_server: args.disable_server,
            };
            let interrupted = interrupted_export(target, &remote, &args.alias).await?;
            Ok(PlanOnly(
                plan::plan_unexport(&remote, &request, service.as_ref(), others, interrupted)
                    .map_err(UserError::from)?,
            ))
        }
    })
    .await?;
    if flags.dry_run == DryRun::None {
        let invalidated = applied
            .planned
            .0
            .steps
            .iter()
            .any(|s| matches!(s.change, plan::Change::InvalidateApiKey { .. }));
        let what = if invalidated {
            "Invalidated the API key exported"
        } else {
            "Removed the trust set up"
        };
        output::info(&format!(
            "{what} for {:?} and removed what only it used ({} writes).",
            args.alias, applied.writes
        ));
    }
    Ok(Outcome::nothing())
}

/// What an interrupted export of `alias` left: its pending record and the keys named for it.
/// `None` when it left nothing.
async fn interrupted_export(
    target: &Session,
    remote: &plan::EsState,
    alias: &str,
) -> anyhow::Result<Option<plan::InterruptedExport>> {
    let client = &target.client;
    let pending =
        observe::read_pending(client, &remote.id, &plan::export_pending_alias(alias)).await?;
    let es = target
        .es
        .client(client, &remote.id)
        .await
        .map_err(|e| e.context(format!("cannot read the exported keys on {}", remote.id)))?;
    let active_keys =
        observe::plugin_keys_named(&es, &plan::export_key_name(&remote.id, alias)).await?;
    if pending.is_none() && active_keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(plan::InterruptedExport {
        pending,
        active_keys,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_planted_link_is_refused_and_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious\n").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&target, out.join("api-key")).unwrap();
        let err = check_output_dir(&out).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        // Planted after the check: the rename replaces the link, the target keeps its content.
        replace_file(&out, "api-key", b"key\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        assert!(
            !std::fs::symlink_metadata(out.join("api-key"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let linked_dir = dir.path().join("linked");
        std::os::unix::fs::symlink(&out, &linked_dir).unwrap();
        assert!(check_output_dir(&linked_dir).is_err());
        assert!(check_output_dir(&target).is_err());
        assert!(check_output_dir(&dir.path().join("new")).is_ok());
    }

    #[test]
    fn a_key_file_left_readable_by_others_is_narrowed_before_the_key_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("api-key");
        std::fs::write(&key_file, "old\n").unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_handover(
            dir.path(),
            "eck",
            "lb.example:9443",
            "products-es-remote-cluster.search.svc",
            "-----BEGIN CERTIFICATE-----\n",
            Some("a2V5OnNlY3JldA=="),
        )
        .unwrap();
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&key_file).unwrap(),
            "a2V5OnNlY3JldA==",
            "the key alone, no newline"
        );
    }
}
