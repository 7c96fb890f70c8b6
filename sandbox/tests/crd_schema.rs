//! Our structural schema of `Elasticsearch` agrees with ECK's real CRD. The repository does
//! not carry that file: the conformance tests (module `eck_crd_conformance`) are ignored unless
//! asked for, `ECK_CRD=<path to elasticsearch.k8s.elastic.co_elasticsearches.yaml> cargo test
//! -- --ignored eck_crd_conformance` (`.ci/run` does), and fail when the file cannot be read.

use remote_cluster_sandbox::schema::{self, Schema};
use remote_cluster_sandbox::{ClusterConfig, EckFeatures, ResourceKey, Sandbox, Sub};
use serde_json::{Value, json};

/// ECK's CRD from `ECK_CRD`; a conformance test asked for without it fails.
fn real_crd() -> Value {
    let path = std::env::var_os("ECK_CRD").expect(
        "ECK_CRD is not set: give the path to ECK's CRD \
         elasticsearch.k8s.elastic.co_elasticsearches.yaml",
    );
    let path = std::path::Path::new(&path);
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read ECK_CRD={}: {e}", path.display()));
    serde_saphyr::from_str(&text).expect("ECK_CRD is a YAML CRD")
}

fn real_v1_schema(crd: &Value) -> Value {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("v1 version")["schema"]["openAPIV3Schema"]
        .clone()
}

/// Follows `.a.b[].c` in an OpenAPI schema.
fn real_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, items) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        cur = cur.get("properties")?.get(name)?;
        if items {
            cur = cur.get("items")?;
        }
    }
    Some(cur)
}

fn sorted(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn compare(ours: &Schema, real: &Value, path: &str, problems: &mut Vec<String>) {
    let real_type = real.get("type").and_then(Value::as_str);
    if ours.ty != real_type {
        problems.push(format!("{path}: type {:?} vs real {real_type:?}", ours.ty));
    }
    if ours.int_or_string != real.get("x-kubernetes-int-or-string").is_some() {
        problems.push(format!("{path}: int-or-string differs"));
    }
    if ours.opaque {
        // Declared opaque on purpose: only the type is compared.
        return;
    }
    let our_required: Vec<String> = {
        let mut r: Vec<String> = ours.required.iter().map(|s| s.to_string()).collect();
        r.sort();
        r
    };
    if our_required != sorted(real.get("required")) {
        problems.push(format!(
            "{path}: required {our_required:?} vs real {:?}",
            sorted(real.get("required"))
        ));
    }
    let real_preserve = real
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if ours.preserve_unknown != real_preserve {
        problems.push(format!(
            "{path}: preserve-unknown-fields {} vs real {real_preserve}",
            ours.preserve_unknown
        ));
    }
    let num = |k: &str| real.get(k).and_then(Value::as_u64).map(|n| n as usize);
    if ours.min_length != num("minLength") || ours.max_length != num("maxLength") {
        problems.push(format!("{path}: string length bounds differ"));
    }
    if ours.min_items != num("minItems") {
        problems.push(format!("{path}: minItems differs"));
    }
    if ours.format != real.get("format").and_then(Value::as_str) {
        problems.push(format!(
            "{path}: format {:?} vs real {:?}",
            ours.format,
            real.get("format")
        ));
    }
    if ours.pattern != real.get("pattern").and_then(Value::as_str) {
        problems.push(format!("{path}: pattern differs"));
    }
    let real_enum = sorted(real.get("enum"));
    let mut our_enum: Vec<String> = ours.enum_values.iter().map(|s| s.to_string()).collect();
    our_enum.sort();
    if our_enum != real_enum {
        problems.push(format!("{path}: enum differs"));
    }
    // Same set of properties.
    let mut real_props: Vec<String> = real
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    real_props.sort();
    let mut our_props: Vec<String> = ours.properties.iter().map(|(n, _)| n.to_string()).collect();
    our_props.sort();
    if our_props != real_props {
        problems.push(format!(
            "{path}: properties {our_props:?} vs real {real_props:?}"
        ));
    }
    for (name, child) in &ours.properties {
        match real.get("properties").and_then(|p| p.get(*name)) {
            Some(r) => compare(child, r, &format!("{path}.{name}"), problems),
            None => problems.push(format!("{path}.{name}: not in the real CRD")),
        }
    }
    match (&ours.items, real.get("items")) {
        (Some(i), Some(r)) => compare(i, r, &format!("{path}[]"), problems),
        (None, None) => {}
        _ => problems.push(format!("{path}: items differ")),
    }
    match (
        &ours.additional_properties,
        real.get("additionalProperties"),
    ) {
        (Some(a), Some(r)) => compare(a, r, &format!("{path}{{*}}"), problems),
        (None, None) => {}
        _ => problems.push(format!("{path}: additionalProperties differ")),
    }
}

#[test]
fn older_eck_versions_lack_newer_fields() {
    let has = |v: &str, path: &str| {
        schema::elasticsearch_schema(&EckFeatures::for_version(v))
            .at(path)
            .is_some()
    };
    assert!(has("3.3.0", ".spec.remoteClusterServer.service"));
    assert!(!has("3.2.0", ".spec.remoteClusterServer.service"));
    assert!(has("3.2.0", ".spec.remoteClusterServer.enabled"));
    assert!(has("2.16.0", ".spec.remoteClusters[].apiKey"));
    assert!(!has("2.15.0", ".spec.remoteClusters[].apiKey"));
    assert!(!has("2.15.0", ".spec.remoteClusterServer"));
    assert!(has("2.8.0", ".spec.transport.tls.certificateAuthorities"));
    assert!(!has("2.7.0", ".spec.transport.tls.certificateAuthorities"));
}

#[test]
fn served_crd_is_ours_and_an_old_eck_prunes_new_fields() {
    let sb = Sandbox::builder()
        .cluster(ClusterConfig::new("new"))
        .cluster(ClusterConfig::new("old").eck_version("3.2.0"))
        .start()
        .unwrap();
    let crd_name = "elasticsearches.elasticsearch.k8s.elastic.co";
    let served = sb
        .cluster("new")
        .get(&ResourceKey::CUSTOM_RESOURCE_DEFINITIONS, None, crd_name)
        .unwrap();
    assert_eq!(
        served["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        schema::elasticsearch_schema(&EckFeatures::LATEST).to_openapi()
    );
    assert_eq!(
        served["metadata"]["labels"]["app.kubernetes.io/version"],
        "3.5.0"
    );
    let old_crd = sb
        .cluster("old")
        .get(&ResourceKey::CUSTOM_RESOURCE_DEFINITIONS, None, crd_name)
        .unwrap();
    assert!(
        old_crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/remoteClusterServer/properties/service")
            .is_none()
    );
    let es = json!({
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {
            "version": "9.1.0",
            "nodeSets": [{"name": "default", "count": 1}],
            "remoteClusterServer": {"enabled": true, "service": {"spec": {"type": "LoadBalancer"}}},
        },
    });
    for (cluster, kept) in [("new", true), ("old", false)] {
        let created = sb
            .cluster(cluster)
            .create(&ResourceKey::ELASTICSEARCHES, es.clone())
            .unwrap();
        assert_eq!(
            created
                .pointer("/spec/remoteClusterServer/service")
                .is_some(),
            kept,
            "{cluster}: {created}"
        );
        assert_eq!(created["spec"]["remoteClusterServer"]["enabled"], true);
    }
    // Status writes are validated against the status schema too.
    let bad = sb.cluster("new").merge_patch(
        &ResourceKey::ELASTICSEARCHES,
        Some("default"),
        "a",
        &json!({"status": {"availableNodes": "three"}}),
        Sub::Status,
    );
    assert!(bad.is_err());
}

/// Conformance with the real CRD: ignored unless asked for with `ECK_CRD`.
mod eck_crd_conformance {
    use super::*;

    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn our_schema_agrees_with_the_real_crd() {
        let crd = real_crd();
        let real = real_v1_schema(&crd);
        let ours = schema::elasticsearch_schema(&EckFeatures::LATEST);
        let mut problems = Vec::new();
        compare(&ours, &real, "", &mut problems);
        assert!(
            problems.is_empty(),
            "schema disagreements:\n{}",
            problems.join("\n")
        );
    }

    /// The fields the plugin reads or writes are modelled exactly (not opaque) and agree.
    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn plugin_fields_are_modelled_exactly() {
        let crd = real_crd();
        let real = real_v1_schema(&crd);
        let ours = schema::elasticsearch_schema(&EckFeatures::LATEST);
        let fields = [
            (".spec.version", "string", vec![], false),
            (".spec.remoteClusterServer", "object", vec![], false),
            (
                ".spec.remoteClusterServer.enabled",
                "boolean",
                vec![],
                false,
            ),
            (".spec.remoteClusterServer.service", "object", vec![], false),
            (
                ".spec.remoteClusterServer.service.metadata",
                "object",
                vec![],
                false,
            ),
            (".spec.remoteClusters", "array", vec![], false),
            (".spec.remoteClusters[]", "object", vec!["name"], false),
            (".spec.remoteClusters[].name", "string", vec![], false),
            (
                ".spec.remoteClusters[].elasticsearchRef",
                "object",
                vec![],
                false,
            ),
            (
                ".spec.remoteClusters[].elasticsearchRef.serviceName",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey",
                "object",
                vec!["access"],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.search",
                "object",
                vec!["names"],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.search.names",
                "array",
                vec![],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.search.field_security",
                "object",
                vec!["except", "grant"],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.search.query",
                "object",
                vec![],
                true,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.search.allow_restricted_indices",
                "boolean",
                vec![],
                false,
            ),
            (
                ".spec.remoteClusters[].apiKey.access.replication",
                "object",
                vec!["names"],
                false,
            ),
            (
                ".spec.secureSettings[]",
                "object",
                vec!["secretName"],
                false,
            ),
            (
                ".spec.secureSettings[].entries[]",
                "object",
                vec!["key"],
                false,
            ),
            (
                ".spec.secureSettings[].entries[].path",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.transport.tls.certificateAuthorities.configMapName",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.transport.tls.subjectAltNames[].dns",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.transport.tls.otherNameSuffix",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.transport.tls.certificate.secretName",
                "string",
                vec![],
                false,
            ),
            (
                ".spec.transport.tls.selfSignedCertificates.disabled",
                "boolean",
                vec![],
                false,
            ),
            (".spec.nodeSets[]", "object", vec!["name"], false),
            (".spec.nodeSets[].count", "integer", vec![], false),
            (".spec.nodeSets[].config", "object", vec![], true),
            (".spec.nodeSets[].podTemplate", "object", vec![], true),
            (
                ".spec.nodeSets[].volumeClaimTemplates",
                "array",
                vec![],
                false,
            ),
            (".status.availableNodes", "integer", vec![], false),
            (".status.health", "string", vec![], false),
            (".status.phase", "string", vec![], false),
            (".status.version", "string", vec![], false),
            (".status.observedGeneration", "integer", vec![], false),
            (
                ".status.conditions[]",
                "object",
                vec!["status", "type"],
                false,
            ),
        ];
        for (path, ty, required, preserve) in fields {
            let o = ours
                .at(path)
                .unwrap_or_else(|| panic!("{path} missing from our schema"));
            let r =
                real_at(&real, path).unwrap_or_else(|| panic!("{path} missing from the real CRD"));
            assert!(!o.opaque, "{path} must not be opaque");
            assert_eq!(o.ty, Some(ty), "{path} type (ours)");
            assert_eq!(r["type"], ty, "{path} type (real)");
            let mut req: Vec<&str> = required.clone();
            req.sort();
            let mut ours_req = o.required.clone();
            ours_req.sort();
            assert_eq!(ours_req, req, "{path} required (ours)");
            assert_eq!(sorted(r.get("required")), req, "{path} required (real)");
            assert_eq!(o.preserve_unknown, preserve, "{path} preserve (ours)");
            assert_eq!(
                r.get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                preserve,
                "{path} preserve (real)"
            );
        }
        assert_eq!(
            ours.at(".spec.remoteClusters[].name").unwrap().min_length,
            Some(1)
        );
        assert_eq!(
            real_at(&real, ".spec.remoteClusters[].name").unwrap()["minLength"],
            1
        );
        assert_eq!(
            sorted(real_at(&real, ".spec").unwrap().get("required")),
            ["nodeSets", "version"]
        );
    }

    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn crd_metadata_matches_the_real_one() {
        let crd = real_crd();
        let ours = schema::elasticsearch_crd(&EckFeatures::LATEST, "3.5.0");
        assert_eq!(ours["metadata"]["name"], crd["metadata"]["name"]);
        assert_eq!(ours["spec"]["names"], crd["spec"]["names"]);
        assert_eq!(ours["spec"]["scope"], crd["spec"]["scope"]);
        assert_eq!(ours["spec"]["group"], crd["spec"]["group"]);
        let real_v1 = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "v1")
            .unwrap()
            .clone();
        let our_v1 = &ours["spec"]["versions"][0];
        assert_eq!(
            our_v1["additionalPrinterColumns"],
            real_v1["additionalPrinterColumns"]
        );
        assert_eq!(our_v1["subresources"], real_v1["subresources"]);
        assert_eq!(our_v1["served"], real_v1["served"]);
        assert_eq!(our_v1["storage"], real_v1["storage"]);
    }

    /// The comparison itself is not vacuous: an older ECK's schema disagrees with the real CRD.
    #[test]
    #[ignore = "needs ECK_CRD=<path to ECK's elasticsearch CRD>"]
    fn the_comparison_detects_differences() {
        let crd = real_crd();
        let real = real_v1_schema(&crd);
        let old = schema::elasticsearch_schema(&EckFeatures::for_version("3.2.0"));
        let mut problems = Vec::new();
        compare(&old, &real, "", &mut problems);
        assert_eq!(
            problems,
            [
                ".spec.remoteClusterServer: properties [\"enabled\"] vs real [\"enabled\", \"service\"]"
            ]
        );
    }
}
