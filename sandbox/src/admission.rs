//! ECK's validating admission webhook for `Elasticsearch` (`elastic-es-validation-v1.k8s.elastic.co`),
//! the checks that matter to the plugin.
//!
//! Sources (elastic/cloud-on-k8s): `pkg/controller/elasticsearch/validation/validations.go`
//! (`supportsRemoteClusterUsingAPIKey`, `supportedVersion`, `noDowngrades`), `remote_cluster.go`
//! (`RemoteClusterAPIKeysMinVersion = version.MinFor(8, 10, 0)`, which prints as `8.10.0-1`),
//! `pkg/controller/common/webhook/webhook.go` (a failed validation is answered with
//! controller-runtime's `admission.Denied(err.Error())`, i.e. `Allowed: false`, code 403, reason
//! Forbidden). The API server wraps the webhook's message
//! (`k8s.io/apiserver/pkg/admission/plugin/webhook/errors/statuserror.go ToStatusErr`):
//! `admission webhook "<name>" denied the request: <message>`, keeping the webhook's code.

use serde_json::Value;

use crate::resources::ResourceKey;
use crate::schema::parse_version;
use crate::status::{ApiError, Cause};

pub const WEBHOOK_NAME: &str = "elastic-es-validation-v1.k8s.elastic.co";

const MIN_API_KEYS: (u64, u64, u64) = (8, 10, 0);
const MIN_API_KEYS_PRINTED: &str = "8.10.0-1";
const PARSE_VERSION_MSG: &str =
    "Cannot parse Elasticsearch version. String format must be {major}.{minor}.{patch}[-{label}]";

fn spec_version(es: &Value) -> &str {
    es.pointer("/spec/version")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Runs ECK's checks on a proposed object (`old` = the stored one for an update), as the
/// webhook answers them.
pub fn validate_elasticsearch(es: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    match invalid_message(es, old) {
        None => Ok(()),
        Some(message) => Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!("admission webhook \"{WEBHOOK_NAME}\" denied the request: {message}"),
            details: None,
        }),
    }
}

/// What ECK's validation says of `es` (`Elasticsearch.elasticsearch.k8s.elastic.co "<name>" is
/// invalid: ...`), `None` when it passes. The webhook and, when the webhook is not installed,
/// the controller (`elasticsearch_controller.go` `internalReconcile`) run the same checks.
pub fn invalid_message(es: &Value, old: Option<&Value>) -> Option<String> {
    let mut errs = Vec::new();
    let version = spec_version(es);
    let parsed = parse_version(version);
    match parsed {
        None => errs.push(Cause::invalid(
            "spec.version",
            &Value::String(version.into()),
            PARSE_VERSION_MSG,
        )),
        Some(v) => {
            // ECK HEAD supports 7.17+ (7.x deprecated), 8.x and 9.x.
            if v < (7, 17, 0) || v.0 > 9 {
                errs.push(Cause::invalid(
                    "spec.version",
                    &Value::String(version.into()),
                    "Unsupported version",
                ));
            }
            // `ver.LE(MinFor(8,10,0))`: anything below 8.10.0 (pre-releases of 8.10.0 too).
            let too_old = v < MIN_API_KEYS || (v == MIN_API_KEYS && version.contains('-'));
            let rcs = es
                .pointer("/spec/remoteClusterServer/enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if rcs && too_old {
                errs.push(Cause::invalid(
                    "spec.remoteClusterServer",
                    &Value::String(version.into()),
                    &format!(
                        "minimum required version for remote cluster server is {MIN_API_KEYS_PRINTED} but desired version is {version}"
                    ),
                ));
            }
            let api_keys = es
                .pointer("/spec/remoteClusters")
                .and_then(Value::as_array)
                .is_some_and(|rcs| rcs.iter().any(|r| r.get("apiKey").is_some()));
            if api_keys && too_old {
                errs.push(Cause::invalid(
                    "spec.remoteClusters.*[apiKey]",
                    &Value::String(version.into()),
                    &format!(
                        "minimum required version for remote cluster using API keys is {MIN_API_KEYS_PRINTED} but desired version is {version}"
                    ),
                ));
            }
            if let Some(old) = old
                && let Some(ov) = parse_version(spec_version(old))
                && v < ov
            {
                errs.push(Cause::invalid(
                    "spec.version",
                    &Value::String(version.into()),
                    "Downgrades are not supported",
                ));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(sets) = es.pointer("/spec/nodeSets").and_then(Value::as_array) {
        for s in sets {
            if let Some(n) = s.get("name").and_then(Value::as_str)
                && !seen.insert(n.to_string())
            {
                errs.push(Cause::invalid(
                    "spec.nodeSets",
                    &Value::String(n.into()),
                    "NodeSet names must be unique",
                ));
            }
        }
    }
    if errs.is_empty() {
        return None;
    }
    let name = es
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some(ApiError::invalid(&ResourceKey::ELASTICSEARCHES, name, errs).message)
}
