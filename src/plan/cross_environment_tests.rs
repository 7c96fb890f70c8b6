use super::*;

fn es(context: &str, namespace: &str, name: &str, version: &str) -> EsState {
    EsState {
        id: ClusterId {
            context: context.into(),
            namespace: namespace.into(),
            name: name.into(),
        },
        object: json!({
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7", "generation": 1},
            "spec": {"version": version, "nodeSets": [
                {"name": "hot", "count": 3, "config": {"node.roles": ["data", "remote_cluster_client"]}},
                {"name": "cold", "count": 1}
            ]}
        }),
    }
}

fn operator(service_template: bool) -> Operator {
    Operator {
        license_level: Some("enterprise".into()),
        crd_has_api_key: true,
        crd_has_remote_cluster_server: true,
        crd_has_server_service: service_template,
    }
}

fn west_identity() -> ClusterIdentity {
    ClusterIdentity {
        uid: Some("5f0c3c1e-west".into()),
        server: "https://west.example:6443".into(),
    }
}

fn observed() -> CrossObserved {
    CrossObserved {
        remote_cluster: west_identity(),
        local: es("east", "search", "catalog", "9.1.0"),
        remote: es("west", "shop", "products", "9.1.0"),
        local_operator: operator(true),
        remote_operator: operator(true),
        remote_ca: Some(RemoteCa {
            pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            fingerprint: "ab12".into(),
        }),
        exposed_address: None,
        exposure_service_exists: false,
        credentials_secret: None,
        ca_bundle: None,
        stored_key: None,
        active_link_keys: Vec::new(),
        pending: None,
        local_alias_settings: BTreeMap::new(),
    }
}

fn summaries(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{}/{}: {}", s.cluster.context, s.cluster.name, s.summary))
        .collect()
}

#[test]
fn a_fresh_api_key_link_plans_every_step_in_order() {
    let planned = plan_cross_environment_link(&observed(), &CrossRequest::default()).unwrap();
    assert_eq!(
        summaries(&planned.plan),
        [
            "east/catalog: record the link of \"products\" as under way in ConfigMap catalog-remote-cluster-products-pending",
            "west/products: enable the remote cluster server (port 9443) and expose it",
            "west/products: wait for the LoadBalancer address of Service products-es-remote-cluster",
            "west/products: create a cross-cluster API key for the link",
            "west/products: record the incoming link east/search/catalog:products",
            "east/catalog: store the API key in Secret catalog-remote-cluster-credentials (keystore)",
            "east/catalog: add the remote's CA to ConfigMap catalog-remote-cluster-cas",
            "east/catalog: reference the keystore Secret and trust the remote's CA",
            "east/catalog: wait for the rolling restart (the keystore is read at start)",
            "east/catalog: connect alias \"products\" in proxy mode",
            "east/catalog: delete ConfigMap catalog-remote-cluster-products-pending: the link is complete",
        ]
    );
    insta::assert_snapshot!("cross_link_render", render(&planned.plan));
    let json = serde_json::to_string(&planned.plan).unwrap();
    assert!(json.contains(r#"{"output":"apiKey.encoded"}"#), "{json}");
    assert!(json.contains(r#""cluster.remote.products.proxy_address":"${remote.address}""#));
    assert!(json.contains(r#""port":{"name":"rcs","default":9443}"#));
}

/// The state once every step has been applied, as the next `link` would read it.
fn linked() -> CrossObserved {
    linked_from(observed(), &CrossRequest::default())
}

/// `state` once every step of the link `request` asks for has been applied.
fn linked_from(mut state: CrossObserved, request: &CrossRequest) -> CrossObserved {
    let planned = plan_cross_environment_link(&state, request).unwrap();
    let outputs = [
        ("${remote.address}", "lb-1.invalid:9443"),
        ("${apiKey.id}", "key-1"),
    ];
    let substitute = |value: &Value| {
        let mut text = value.to_string();
        for (from, to) in outputs {
            text = text.replace(from, to);
        }
        serde_json::from_str::<Value>(&text).unwrap()
    };
    for step in &planned.plan.steps {
        let target = if step.cluster == state.local.id {
            &mut state.local
        } else {
            &mut state.remote
        };
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => {
                let mut patch = substitute(&Value::Array(patch.clone()));
                // As apply does: a guard on the version read moves on with our own writes.
                if patch[0]["path"] == "/metadata/resourceVersion" {
                    patch[0]["value"] = json!(target.resource_version());
                }
                let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
                json_patch::patch(&mut target.object, &patch).unwrap();
                let rv: u64 = target.resource_version().parse().unwrap();
                target.object["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
            }
            Change::ApplyObject {
                object: ObjectKind::Secret,
                data,
                ..
            } => {
                let keys: serde_json::Map<String, Value> = data
                    .keys()
                    .map(|k| (k.clone(), json!("c2VjcmV0")))
                    .collect();
                state.credentials_secret =
                    Some(json!({"metadata": {"resourceVersion": "1"}, "data": keys}));
            }
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } if data.contains_key(PENDING_KEY) => {
                let DataValue::Literal(text) = &data[PENDING_KEY] else {
                    panic!("the pending record is literal")
                };
                state.pending = Some(
                    json!({"metadata": {"resourceVersion": "7"}, "data": {PENDING_KEY: text}}),
                );
            }
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } => {
                let DataValue::Literal(bundle) = &data["ca.crt"] else {
                    panic!("a CA is public")
                };
                state.ca_bundle =
                    Some(json!({"metadata": {"resourceVersion": "1"}, "data": {"ca.crt": bundle}}));
            }
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                name,
                ..
            } if name.ends_with("-pending") => state.pending = None,
            Change::WaitForAddress { .. } => {
                state.exposed_address = Some("lb-1.invalid:9443".into())
            }
            Change::CreateApiKey { .. } => {
                state.stored_key = Some(StoredKey {
                    id: "key-1".into(),
                    active: true,
                })
            }
            Change::PutClusterSettings { settings } => {
                for (key, value) in substitute(settings).as_object().unwrap() {
                    state
                        .local_alias_settings
                        .insert(key.clone(), value.clone());
                }
            }
            Change::CreateService { .. } => state.exposure_service_exists = true,
            Change::WaitForRollout => {}
            other @ (Change::DeleteObject { .. }
            | Change::InvalidateApiKey { .. }
            | Change::SetSkipUnavailable { .. }
            | Change::ApplyObject {
                object: ObjectKind::Service,
                ..
            }) => {
                panic!("a link does not {other:?}")
            }
        }
    }
    state
}

#[test]
fn once_linked_the_same_link_plans_nothing() {
    let state = linked();
    let record = state.local.plugin_links()["products"].clone();
    assert_eq!(record.key_id.as_deref(), Some("key-1"));
    assert_eq!(record.proxy_address.as_deref(), Some("lb-1.invalid:9443"));
    assert_eq!(record.ca_fingerprint.as_deref(), Some("ab12"));
    assert_eq!(
        record.remote_identity(),
        Some(west_identity()),
        "the remote is recorded by who it is, not only by the context's name"
    );
    let again = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    assert!(again.plan.is_empty(), "{}", render(&again.plan));
}

#[test]
fn an_invalidated_key_is_replaced_and_the_keystore_rewritten() {
    let mut state = linked();
    state.stored_key = Some(StoredKey {
        id: "key-1".into(),
        active: false,
    });
    let planned = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    let kinds: Vec<&str> = planned
        .plan
        .steps
        .iter()
        .map(|s| match s.change {
            Change::CreateApiKey { .. } => "key",
            Change::ApplyObject { .. } => "object",
            Change::PatchElasticsearch { .. } => "patch",
            Change::WaitForRollout => "wait",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["object", "key", "patch", "object", "patch", "wait", "other"],
        "bracketed by the pending record (written first, deleted last)"
    );
}

#[test]
fn older_eck_gets_a_service_of_ours() {
    let mut state = observed();
    state.remote_operator = operator(false);
    let planned = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    let create = planned
        .plan
        .steps
        .iter()
        .find_map(|s| match &s.change {
            Change::CreateService { manifest, .. } => Some(manifest.clone()),
            _ => None,
        })
        .expect("a Service is created");
    assert_eq!(create["metadata"]["name"], "products-es-remote-cluster-lb");
    assert_eq!(create["spec"]["type"], "LoadBalancer");
    assert_eq!(create["spec"]["ports"][0]["targetPort"], 9443);
    assert_eq!(create["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
}

#[test]
fn a_given_proxy_address_needs_no_exposure() {
    let request = CrossRequest {
        expose: Expose::None,
        proxy_address: Some("rcs.example.com:443".into()),
        server_name: Some("rcs.example.com".into()),
        ..CrossRequest::default()
    };
    let planned = plan_cross_environment_link(&observed(), &request).unwrap();
    assert!(!planned.plan.steps.iter().any(|s| matches!(
        s.change,
        Change::WaitForAddress { .. } | Change::CreateService { .. }
    )));
    let settings = planned
        .plan
        .steps
        .iter()
        .find_map(|s| match &s.change {
            Change::PutClusterSettings { settings } => Some(settings.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        settings,
        json!({"cluster.remote.products.mode": "proxy",
               "cluster.remote.products.proxy_address": "rcs.example.com:443",
               "cluster.remote.products.server_name": "rcs.example.com"})
    );
}

#[test]
fn bad_input_is_refused() {
    let exposure_none = CrossRequest {
        expose: Expose::None,
        ..CrossRequest::default()
    };
    assert!(matches!(
        plan_cross_environment_link(&observed(), &exposure_none),
        Err(PlanError::NotExposed { .. })
    ));
    let no_port = CrossRequest {
        proxy_address: Some("rcs.example.com".into()),
        ..CrossRequest::default()
    };
    assert_eq!(
        plan_cross_environment_link(&observed(), &no_port).unwrap_err(),
        PlanError::InvalidAddress("rcs.example.com".into())
    );
    let mut basic = observed();
    basic.remote_operator.license_level = Some("basic".into());
    let err = plan_cross_environment_link(&basic, &CrossRequest::default()).unwrap_err();
    assert_eq!(
        err,
        PlanError::LicenseTermsNotEnterprise {
            context: "west".into(),
            level: "basic".into()
        },
        "across operators the requirement is Elastic's terms, not an ECK gate"
    );
    assert!(
        err.to_string().contains("ECK itself does not block"),
        "{err}"
    );
    let mut taken = observed();
    taken.local.object["spec"]["remoteClusters"] =
        json!([{"name": "products", "elasticsearchRef": {"name": "x"}}]);
    assert!(matches!(
        plan_cross_environment_link(&taken, &CrossRequest::default()),
        Err(PlanError::AliasTaken { .. })
    ));
    let mut foreign_settings = observed();
    foreign_settings.local_alias_settings.insert(
        "cluster.remote.products.seeds".into(),
        json!(["10.0.0.1:9300"]),
    );
    assert!(matches!(
        plan_cross_environment_link(&foreign_settings, &CrossRequest::default()),
        Err(PlanError::AliasTaken { .. })
    ));
    let mut old = observed();
    old.remote = es("west", "shop", "products", "8.9.0");
    old.local = es("east", "search", "catalog", "8.9.0");
    assert!(matches!(
        plan_cross_environment_link(&old, &CrossRequest::default()),
        Err(PlanError::ApiKeyUnsupported { .. })
    ));
    let mut no_ca = observed();
    no_ca.remote_ca = None;
    assert!(matches!(
        plan_cross_environment_link(&no_ca, &CrossRequest::default()),
        Err(PlanError::NoRemoteCa(..))
    ));
}

#[test]
fn ca_trust_keeps_what_the_node_set_had() {
    let mut node_set = json!({
        "name": "hot",
        "config": {"xpack.security.remote_cluster_client.ssl.certificate_authorities": "other/ca.crt"},
        "podTemplate": {"spec": {
            "volumes": [{"name": "data-extra", "emptyDir": {}}],
            "containers": [{"name": "elasticsearch", "env": [{"name": "A", "value": "1"}]},
                           {"name": "sidecar"}]
        }}
    });
    assert!(with_ca_trust(&mut node_set, "catalog-remote-cluster-cas"));
    assert_eq!(
        node_set["config"]["xpack.security.remote_cluster_client.ssl.certificate_authorities"],
        json!(["other/ca.crt", CA_FILE_SETTING])
    );
    assert_eq!(
        node_set["podTemplate"]["spec"]["volumes"][0]["name"],
        "data-extra"
    );
    assert_eq!(
        node_set["podTemplate"]["spec"]["volumes"][1]["configMap"]["name"],
        "catalog-remote-cluster-cas"
    );
    let es_container = &node_set["podTemplate"]["spec"]["containers"][0];
    assert_eq!(es_container["env"][0]["name"], "A");
    assert_eq!(es_container["volumeMounts"][0]["mountPath"], CA_MOUNT_PATH);
    assert!(
        node_set["podTemplate"]["spec"]["containers"][1]
            .get("volumeMounts")
            .is_none()
    );
    assert!(
        !with_ca_trust(&mut node_set, "catalog-remote-cluster-cas"),
        "idempotent"
    );
}

#[test]
fn ca_blocks_are_removed_one_alias_at_a_time() {
    let a = RemoteCa {
        pem: "PEM-A\n".into(),
        fingerprint: "aa".into(),
    };
    let b = RemoteCa {
        pem: "PEM-B\n".into(),
        fingerprint: "bb".into(),
    };
    let bundle = format!("{}{}", ca_block("a", &a), ca_block("b", &b));
    assert_eq!(without_block(&bundle, "a"), ca_block("b", &b));
    assert_eq!(without_block(&bundle, "b"), ca_block("a", &a));
}

fn unlink_observed(state: &CrossObserved, remote_reachable: bool) -> CrossUnlinkObserved {
    CrossUnlinkObserved {
        local: state.local.clone(),
        record: state.local.plugin_links()["products"].clone(),
        remote: remote_reachable.then(|| state.remote.clone()),
        remote_others: Vec::new(),
        credentials_secret: state.credentials_secret.clone(),
        ca_bundle: state.ca_bundle.clone(),
        local_alias_settings: state.local_alias_settings.clone(),
        exposure_service: None,
        active_link_keys: Vec::new(),
        pending: None,
    }
}

fn apply_patch(target: &mut EsState, patch: &[Value]) {
    let mut patch = Value::Array(patch.to_vec());
    if patch[0]["path"] == "/metadata/resourceVersion" {
        patch[0]["value"] = json!(target.resource_version());
    }
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut target.object, &patch).unwrap();
    let rv: u64 = target.resource_version().parse().unwrap();
    target.object["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
}

#[test]
fn unlink_restores_both_clusters_as_they_were() {
    let before = observed();
    let mut state = linked();
    let unlink = plan_cross_environment_unlink(
        &unlink_observed(&state, true),
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: true,
        },
    );
    insta::assert_snapshot!("cross_unlink_render", render(&unlink.plan));
    assert!(unlink.left_on_remote.is_empty());
    let mut invalidated = Vec::new();
    for step in &unlink.plan.steps {
        let target = if step.cluster == state.local.id {
            &mut state.local
        } else {
            &mut state.remote
        };
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => apply_patch(target, patch),
            Change::PutClusterSettings { settings } => {
                for (key, value) in settings.as_object().unwrap() {
                    assert!(value.is_null());
                    state.local_alias_settings.remove(key);
                }
            }
            Change::DeleteObject {
                object: ObjectKind::Secret,
                ..
            } => state.credentials_secret = None,
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } if data.contains_key(PENDING_KEY) => {
                state.pending = Some(json!({"metadata": {"resourceVersion": "9"}}));
            }
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                name,
                ..
            } if name.ends_with("-pending") => state.pending = None,
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                ..
            } => state.ca_bundle = None,
            Change::InvalidateApiKey { id } => invalidated.push(id.clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(state.pending, None, "the pending record goes with the rest");
    assert_eq!(invalidated, ["key-1"]);
    assert_eq!(state.local.object["spec"], before.local.object["spec"]);
    // Exactly as before the link: no empty annotations map left behind.
    assert_eq!(
        state.local.object["metadata"].get("annotations"),
        before.local.object["metadata"].get("annotations")
    );
    assert_eq!(state.remote.object["spec"], before.remote.object["spec"]);
    assert_eq!(
        state.remote.object["metadata"].get("annotations"),
        before.remote.object["metadata"].get("annotations")
    );
    assert!(state.credentials_secret.is_none() && state.ca_bundle.is_none());
    assert!(state.local_alias_settings.is_empty());
}

#[test]
fn local_only_unlink_says_what_is_left_on_the_remote() {
    let state = linked();
    let unlink = plan_cross_environment_unlink(
        &unlink_observed(&state, false),
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: false,
        },
    );
    assert!(
        unlink
            .plan
            .steps
            .iter()
            .all(|s| s.cluster == state.local.id)
    );
    assert!(
        unlink.left_on_remote[0].contains("key-1"),
        "{:?}",
        unlink.left_on_remote
    );
}

#[test]
fn unlinking_one_of_two_links_keeps_the_other() {
    let mut state = linked();
    let other_key = credentials_key("other");
    state.credentials_secret.as_mut().unwrap()["data"][&other_key] = json!("b3RoZXI=");
    let other_ca = RemoteCa {
        pem: "PEM-O\n".into(),
        fingerprint: "ff".into(),
    };
    let bundle = format!(
        "{}{}",
        state.ca_bundle.as_ref().unwrap()["data"]["ca.crt"]
            .as_str()
            .unwrap(),
        ca_block("other", &other_ca)
    );
    state.ca_bundle.as_mut().unwrap()["data"]["ca.crt"] = json!(bundle);
    let unlink = plan_cross_environment_unlink(
        &unlink_observed(&state, true),
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: false,
        },
    );
    let secret_step = unlink
        .plan
        .steps
        .iter()
        .find_map(|s| match &s.change {
            Change::ApplyObject {
                object: ObjectKind::Secret,
                remove,
                ..
            } => Some(remove.clone()),
            _ => None,
        })
        .expect("the Secret is edited, not deleted");
    assert_eq!(secret_step, [credentials_key("products")]);
    let bundle_step = unlink
        .plan
        .steps
        .iter()
        .find_map(|s| match &s.change {
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } => data.get("ca.crt").cloned(),
            _ => None,
        })
        .expect("the bundle keeps the other CA");
    assert_eq!(
        bundle_step,
        DataValue::Literal(ca_block("other", &other_ca))
    );
    assert!(!unlink.plan.steps.iter().any(
        |s| matches!(&s.change, Change::DeleteObject { name, .. } if !name.ends_with("-pending"))
    ));
}

#[test]
fn ca_trust_removal_undoes_only_what_was_added() {
    let original = json!({
        "name": "hot",
        "config": {"xpack.security.remote_cluster_client.ssl.certificate_authorities": ["other/ca.crt"]},
        "podTemplate": {"spec": {"containers": [{"name": "elasticsearch", "env": []}]}}
    });
    let mut node_set = original.clone();
    assert!(with_ca_trust(&mut node_set, "b"));
    assert!(without_ca_trust(&mut node_set, true));
    assert_eq!(node_set, original);
}

fn ca(name: &str) -> RemoteCa {
    RemoteCa {
        pem: format!("-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"),
        fingerprint: format!("{name}-fp"),
    }
}

fn certificate_observed() -> CertificateObserved {
    let base = observed();
    CertificateObserved {
        remote_cluster: west_identity(),
        local: TrustSide {
            es: base.local,
            own_ca: Some(ca("east-ca")),
            ca_configmap: None,
        },
        remote: TrustSide {
            es: base.remote,
            own_ca: Some(ca("west-ca")),
            ca_configmap: None,
        },
        local_operator: operator(true),
        remote_operator: operator(true),
        exposed_address: None,
        local_alias_settings: BTreeMap::new(),
        pending: None,
    }
}

/// Applies a certificate-model plan to the observed state, as the servers would.
fn apply_certificate(state: &mut CertificateObserved, plan: &Plan) {
    for step in &plan.steps {
        let side = if step.cluster == state.local.es.id {
            &mut state.local
        } else {
            &mut state.remote
        };
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => {
                let text = Value::Array(patch.clone())
                    .to_string()
                    .replace("${remote.address}", "lb-t.invalid:9300");
                let patch: Vec<Value> = serde_json::from_str(&text).unwrap();
                apply_patch(&mut side.es, &patch);
            }
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } if data.contains_key(PENDING_KEY) => {
                let DataValue::Literal(text) = &data[PENDING_KEY] else {
                    panic!("the pending record is literal")
                };
                state.pending = Some(
                    json!({"metadata": {"resourceVersion": "8"}, "data": {PENDING_KEY: text}}),
                );
            }
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                data,
                ..
            } => {
                let DataValue::Literal(bundle) = &data["ca.crt"] else {
                    panic!("CAs are public")
                };
                side.ca_configmap =
                    Some(json!({"metadata": {"resourceVersion": "3"}, "data": {"ca.crt": bundle}}));
            }
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                name,
                ..
            } if is_pending_record(name) => state.pending = None,
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                ..
            } => side.ca_configmap = None,
            Change::WaitForAddress { .. } => {
                state.exposed_address = Some("lb-t.invalid:9300".into())
            }
            Change::WaitForRollout => {}
            Change::PutClusterSettings { settings } => {
                for (k, v) in settings.as_object().unwrap() {
                    let v: Value = serde_json::from_str(
                        &v.to_string()
                            .replace("${remote.address}", "lb-t.invalid:9300"),
                    )
                    .unwrap();
                    if v.is_null() {
                        state.local_alias_settings.remove(k);
                    } else {
                        state.local_alias_settings.insert(k.clone(), v);
                    }
                }
            }
            other => panic!("the certificate model does not {other:?}"),
        }
    }
}

#[test]
fn certificate_link_trusts_both_ways_exposes_transport_and_is_idempotent() {
    let mut state = certificate_observed();
    let planned = plan_certificate_link(&state, &CrossRequest::default()).unwrap();
    assert_eq!(planned.security, SecurityModel::Certificate);
    insta::assert_snapshot!("certificate_link_render", render(&planned.plan));
    apply_certificate(&mut state, &planned.plan);
    assert_eq!(
        state.remote.es.object["spec"]["transport"],
        json!({"tls": {"certificateAuthorities": {"configMapName": "products-remote-cluster-transport-cas"}},
               "service": {"spec": {"type": "LoadBalancer"}}})
    );
    assert!(state.remote.bundle().contains("east-ca"));
    assert!(state.local.bundle().contains("west-ca"));
    assert_eq!(
        state.local_alias_settings["cluster.remote.products.proxy_address"],
        "lb-t.invalid:9300"
    );
    let again = plan_certificate_link(&state, &CrossRequest::default()).unwrap();
    assert!(again.plan.is_empty(), "{}", render(&again.plan));
}

#[test]
fn certificate_unlink_restores_both_sides_and_keeps_a_users_configmap() {
    let mut state = certificate_observed();
    // The local already names a ConfigMap of its own: the plugin adds a block, never replaces it.
    state.local.es.object["spec"]["transport"] =
        json!({"tls": {"certificateAuthorities": {"configMapName": "corporate-cas"}}});
    let corporate = "-----BEGIN CERTIFICATE-----\ncorp\n-----END CERTIFICATE-----\n";
    state.local.ca_configmap =
        Some(json!({"metadata": {"resourceVersion": "1"}, "data": {"ca.crt": corporate}}));
    let before = state.clone();
    let planned = plan_certificate_link(&state, &CrossRequest::default()).unwrap();
    apply_certificate(&mut state, &planned.plan);
    assert!(
        state.local.bundle().starts_with(corporate),
        "the user's CAs stay first"
    );
    let record = state.local.es.plugin_links()["products"].clone();
    assert_eq!(record.remote_identity(), Some(west_identity()));
    let unlink = plan_certificate_unlink(
        &CertificateUnlinkObserved {
            local: state.local.clone(),
            remote: Some(state.remote.clone()),
            record,
            local_alias_settings: state.local_alias_settings.clone(),
            local_restricted: RestrictedObserved::default(),
            pending: None,
        },
        "products",
    );
    apply_certificate(&mut state, &unlink.plan);
    assert_eq!(
        state.local.es.object["spec"],
        before.local.es.object["spec"]
    );
    assert_eq!(
        state.remote.es.object["spec"],
        before.remote.es.object["spec"]
    );
    assert_eq!(state.local.bundle(), corporate);
    assert!(
        state.remote.ca_configmap.is_none(),
        "our ConfigMap on the remote is deleted"
    );
    assert!(state.local_alias_settings.is_empty());
    assert_eq!(
        state.remote.es.object["metadata"].get("annotations"),
        before.remote.es.object["metadata"].get("annotations")
    );
    assert_eq!(
        state.local.es.object["metadata"].get("annotations"),
        before.local.es.object["metadata"].get("annotations")
    );
}

#[test]
fn trust_is_mutual_unless_one_way_and_stale_copies_need_refresh() {
    let state = certificate_observed();
    let both = plan_trust(&state.local, &state.remote, false, false).unwrap();
    assert_eq!(
        both.steps
            .iter()
            .filter(|s| matches!(s.change, Change::ApplyObject { .. }))
            .count(),
        2
    );
    let one = plan_trust(&state.local, &state.remote, true, false).unwrap();
    assert!(one.steps.iter().all(|s| s.cluster == state.local.es.id));

    let mut rotated = certificate_observed();
    let block = ca_block(&peer_label(&rotated.remote.es.id), &ca("old-west-ca"));
    rotated.local.ca_configmap =
        Some(json!({"metadata": {"resourceVersion": "1"}, "data": {"ca.crt": block}}));
    rotated.local.es.object["spec"]["transport"] = json!({"tls": {"certificateAuthorities": {"configMapName": "catalog-remote-cluster-transport-cas"}}});
    let without_refresh = plan_trust(&rotated.local, &rotated.remote, true, false).unwrap();
    assert!(without_refresh.steps.is_empty());
    assert!(
        without_refresh.warnings[0].contains("--refresh"),
        "{:?}",
        without_refresh.warnings
    );
    let refreshed = plan_trust(&rotated.local, &rotated.remote, true, true).unwrap();
    assert!(
        refreshed.steps[0]
            .summary
            .starts_with("replace the stale CA")
    );
}

/// The ECK side of a certificate-model export to a deployment on Elastic Cloud Hosted.
struct RestrictedState {
    side: TrustSide,
    restricted: RestrictedObserved,
}

fn restricted_state() -> RestrictedState {
    RestrictedState {
        side: TrustSide {
            es: es("west", "search", "products", "9.1.0"),
            own_ca: Some(ca("west-ca")),
            ca_configmap: None,
        },
        restricted: RestrictedObserved {
            configmap: None,
            eck_peers: vec![("search".into(), "orders".into())],
            node_patterns: BTreeMap::new(),
        },
    }
}

fn apply_restricted(state: &mut RestrictedState, plan: &Plan) {
    for step in &plan.steps {
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => apply_patch(&mut state.side.es, patch),
            Change::ApplyObject {
                object: ObjectKind::ConfigMap,
                name,
                data,
                ..
            } if *name == restricted_trust_name(&state.side.es.id) => {
                let data: serde_json::Map<String, Value> = data
                    .iter()
                    .map(|(k, v)| match v {
                        DataValue::Literal(text) => (k.clone(), json!(text)),
                        DataValue::Output(_) => panic!("nothing secret in a trust"),
                    })
                    .collect();
                state.restricted.configmap =
                    Some(json!({"metadata": {"resourceVersion": "4"}, "data": data}));
            }
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                name,
                ..
            } if *name == restricted_trust_name(&state.side.es.id) => {
                state.restricted.configmap = None
            }
            Change::WaitForRollout | Change::WaitForAddress { .. } => {}
            // An unlink's pending record: written first, deleted last.
            Change::ApplyObject { name, .. } | Change::DeleteObject { name, .. }
                if is_pending_record(name) => {}
            other => panic!("a restricted export does not {other:?}"),
        }
    }
}

/// `es` is as `before`, but for its resourceVersion and an annotations map left empty (the API
/// server does not store one: ObjectMeta's `omitempty`).
fn assert_restored(es: &EsState, before: &Value) {
    let mut after = es.object.clone();
    after["metadata"]["resourceVersion"] = before["metadata"]["resourceVersion"].clone();
    if after["metadata"]["annotations"] == json!({}) {
        after["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
    }
    assert_eq!(&after, before);
}

fn ech_request() -> ExportRequest {
    ExportRequest {
        alias: "ech".into(),
        ..ExportRequest::default()
    }
}

#[test]
fn a_restricted_export_mounts_the_trust_on_every_node_set_and_unexport_restores_it() {
    let mut state = restricted_state();
    let before = state.side.es.object.clone();
    let subjects = vec!["*.node.2dc5.cluster.1075.account".to_string()];
    let restriction = Restriction {
        observed: &state.restricted,
        subjects: &subjects,
    };
    let plan = plan_export_certificate(
        &state.side,
        &operator(true),
        &ech_request(),
        &ca("ech-region-ca"),
        None,
        Some(restriction),
    )
    .unwrap();
    insta::assert_snapshot!("restricted_export_render", render(&plan));
    assert!(plan.steps.iter().any(|s| s.restarts_nodes));
    apply_restricted(&mut state, &plan);
    for set in state.side.es.object["spec"]["nodeSets"].as_array().unwrap() {
        let config = &set["config"];
        assert_eq!(
            config[TRUST_RESTRICTIONS_SETTING],
            format!("{RESTRICTED_TRUST_DIR}/trust.yml")
        );
        assert_eq!(
            config[TRANSPORT_CAS_SETTING],
            json!([format!("{RESTRICTED_TRUST_DIR}/ca.crt")])
        );
        assert_eq!(
            set["podTemplate"]["spec"]["volumes"][0]["configMap"]["name"],
            "products-remote-cluster-restricted-trust"
        );
    }
    assert_eq!(
        state.side.es.object["spec"]["nodeSets"][0]["config"]["node.roles"],
        json!(["data", "remote_cluster_client"]),
        "the user's settings stay"
    );
    let trust_yml = state.restricted.configmap.as_ref().unwrap()["data"]["trust.yml"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed: Value = serde_saphyr::from_str(&trust_yml).unwrap();
    assert_eq!(
        parsed["trust.subject_name"],
        json!([
            "*.node.products.search.es.local",
            "*.node.orders.search.es.local",
            "*.node.2dc5.cluster.1075.account"
        ])
    );
    let restriction = Restriction {
        observed: &state.restricted,
        subjects: &subjects,
    };
    let again = plan_export_certificate(
        &state.side,
        &operator(true),
        &ech_request(),
        &ca("ech-region-ca"),
        Some(&"lb-t.invalid:9300".to_string()),
        Some(restriction),
    )
    .unwrap();
    assert!(again.is_empty(), "{}", render(&again));

    let undo = plan_unexport_certificate(&state.side, &state.restricted, "ech").unwrap();
    insta::assert_snapshot!("restricted_unexport_render", render(&undo));
    let delete_at = undo
        .steps
        .iter()
        .position(|s| matches!(s.change, Change::DeleteObject { .. }))
        .unwrap();
    let rollout_at = undo
        .steps
        .iter()
        .position(|s| matches!(s.change, Change::WaitForRollout))
        .unwrap();
    assert!(
        rollout_at < delete_at,
        "the ConfigMap goes once no node mounts it"
    );
    apply_restricted(&mut state, &undo);
    assert_restored(&state.side.es, &before);
    assert!(state.restricted.configmap.is_none());
}

#[test]
fn a_second_restricted_peer_only_changes_the_trust_file() {
    let mut state = restricted_state();
    for (alias, subject) in [
        ("ech", "*.node.a.cluster.1.account"),
        ("ece", "*.node.b.cluster.2.account"),
    ] {
        let subjects = vec![subject.to_string()];
        let plan = plan_export_certificate(
            &state.side,
            &operator(true),
            &ExportRequest {
                alias: alias.into(),
                proxy_address: Some("lb.example:9300".into()),
                ..ExportRequest::default()
            },
            &ca(&format!("{alias}-ca")),
            None,
            Some(Restriction {
                observed: &state.restricted,
                subjects: &subjects,
            }),
        )
        .unwrap();
        let restarts = plan.steps.iter().any(|s| s.restarts_nodes);
        assert_eq!(restarts, alias == "ech", "{}", render(&plan));
        apply_restricted(&mut state, &plan);
    }
    let undo = plan_unexport_certificate(&state.side, &state.restricted, "ech").unwrap();
    assert!(
        !undo.steps.iter().any(|s| s.restarts_nodes),
        "{}",
        render(&undo)
    );
    apply_restricted(&mut state, &undo);
    let data = &state.restricted.configmap.as_ref().unwrap()["data"];
    assert!(!data["ca.crt"].as_str().unwrap().contains("ech-ca"));
    assert!(data["ca.crt"].as_str().unwrap().contains("ece-ca"));
    assert!(
        !data["trust.yml"]
            .as_str()
            .unwrap()
            .contains("*.node.a.cluster.1.account")
    );
    assert!(
        data["trust.yml"]
            .as_str()
            .unwrap()
            .contains("*.node.products.search.es.local")
    );
}

#[test]
fn a_restriction_set_by_someone_else_is_refused() {
    let mut state = restricted_state();
    state.side.es.object["spec"]["nodeSets"][1]["config"] =
        json!({TRUST_RESTRICTIONS_SETTING: "/usr/share/elasticsearch/config/mine/trust.yml"});
    let subjects = vec!["*.node.a.cluster.1.account".to_string()];
    let err = plan_export_certificate(
        &state.side,
        &operator(true),
        &ech_request(),
        &ca("ech-ca"),
        None,
        Some(Restriction {
            observed: &state.restricted,
            subjects: &subjects,
        }),
    )
    .unwrap_err();
    assert!(
        matches!(err, PlanError::ForeignTrustRestrictions { ref node_set, .. } if node_set == "cold"),
        "{err}"
    );
}

#[test]
fn a_restricted_external_link_is_undone_by_unlink() {
    let mut state = restricted_state();
    let before = state.side.es.object.clone();
    let subjects = vec!["*.node.2dc5.cluster.1075.account".to_string()];
    let remote_ca = ca("ech-region-ca");
    let request = ExternalCertificateRequest {
        alias: "ech",
        proxy_address: "ech.example:9400",
        remote_ca: &remote_ca,
        skip_unavailable: false,
        restriction: Some(Restriction {
            observed: &state.restricted,
            subjects: &subjects,
        }),
    };
    let planned =
        plan_external_certificate_link(&state.side, &operator(true), &BTreeMap::new(), request)
            .unwrap();
    insta::assert_snapshot!("restricted_external_link_render", render(&planned.plan));
    let plan_without_settings = Plan {
        steps: planned
            .plan
            .steps
            .iter()
            .filter(|s| !matches!(s.change, Change::PutClusterSettings { .. }))
            .cloned()
            .collect(),
        warnings: Vec::new(),
    };
    apply_restricted(&mut state, &plan_without_settings);
    let record = state.side.es.plugin_links()["ech"].clone();
    assert!(is_external(&record));
    let observed = CertificateUnlinkObserved {
        local: state.side.clone(),
        remote: None,
        record,
        local_alias_settings: BTreeMap::new(),
        local_restricted: state.restricted.clone(),
        pending: None,
    };
    let undo = plan_certificate_unlink(&observed, "ech");
    apply_restricted(&mut state, &undo.plan);
    assert_restored(&state.side.es, &before);
    assert!(state.restricted.configmap.is_none());
}

#[test]
fn trust_yml_lists_each_name_once_this_cluster_first() {
    let id = es("west", "search", "products", "9.1.0").id;
    let peers = BTreeMap::from([(
        "//ech".to_string(),
        vec![
            "*.node.products.search.es.local".to_string(),
            "*.node.a.cluster.1.account".to_string(),
        ],
    )]);
    let observed = RestrictedObserved {
        eck_peers: vec![("search".into(), "orders".into())],
        ..RestrictedObserved::default()
    };
    let rendered = render_trust_yml(&id, &observed, &peers);
    let parsed: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(
        parsed["trust.subject_name"],
        json!([
            "*.node.products.search.es.local",
            "*.node.orders.search.es.local",
            "*.node.a.cluster.1.account"
        ]),
        "{rendered}"
    );
}

#[test]
fn trust_yml_names_clusters_with_an_other_name_suffix_by_it() {
    let id = es("west", "search", "products", "9.1.0").id;
    let observed = RestrictedObserved {
        eck_peers: vec![
            ("search".into(), "orders".into()),
            ("search".into(), "users".into()),
        ],
        node_patterns: BTreeMap::from([
            (("search".into(), "products".into()), "*.p.example".into()),
            (("search".into(), "orders".into()), "*.o.example".into()),
        ]),
        ..RestrictedObserved::default()
    };
    let rendered = render_trust_yml(&id, &observed, &BTreeMap::new());
    let parsed: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(
        parsed["trust.subject_name"],
        json!(["*.p.example", "*.o.example", "*.node.users.search.es.local"]),
        "{rendered}"
    );
    let mut suffixed = es("west", "search", "orders", "9.1.0");
    assert_eq!(eck_node_pattern(&suffixed), "*.node.orders.search.es.local");
    suffixed.object["spec"]["transport"] = json!({"tls": {"otherNameSuffix": "o.example"}});
    assert_eq!(eck_node_pattern(&suffixed), "*.o.example");
}

#[test]
fn once_restricted_a_peer_without_node_names_is_refused() {
    let mut state = restricted_state();
    let subjects = vec!["*.node.a.cluster.1.account".to_string()];
    let plan = plan_export_certificate(
        &state.side,
        &operator(true),
        &ech_request(),
        &ca("ech-ca"),
        None,
        Some(Restriction {
            observed: &state.restricted,
            subjects: &subjects,
        }),
    )
    .unwrap();
    apply_restricted(&mut state, &plan);
    let self_managed = ExportRequest {
        alias: "selfmanaged".into(),
        ..ExportRequest::default()
    };
    let err = plan_export_certificate(
        &state.side,
        &operator(true),
        &self_managed,
        &ca("their-ca"),
        None,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, PlanError::RestrictedNeedsSubjects(_)),
        "{err}"
    );
    let their_ca = ca("their-ca");
    let err = plan_external_certificate_link(
        &state.side,
        &operator(true),
        &BTreeMap::new(),
        ExternalCertificateRequest {
            alias: "selfmanaged",
            proxy_address: "es.example:9300",
            remote_ca: &their_ca,
            skip_unavailable: false,
            restriction: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, PlanError::RestrictedNeedsSubjects(_)),
        "{err}"
    );
}

#[test]
fn a_certificate_link_sets_skip_unavailable_when_asked() {
    let state = certificate_observed();
    let request = CrossRequest {
        skip_unavailable: true,
        ..CrossRequest::default()
    };
    let planned = plan_certificate_link(&state, &request).unwrap();
    let settings = planned
        .plan
        .steps
        .iter()
        .find_map(|s| match &s.change {
            Change::PutClusterSettings { settings } => Some(settings.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        settings["cluster.remote.products.skip_unavailable"], true,
        "{settings}"
    );
    assert!(
        settings
            .get("cluster.remote.products.server_name")
            .is_none()
    );
}

/// Runs the cross-environment unlink of `products` on `state`, as the servers would.
fn unlinked(mut state: CrossObserved) -> CrossObserved {
    let unlink = plan_cross_environment_unlink(
        &unlink_observed(&state, true),
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: true,
        },
    );
    for step in &unlink.plan.steps {
        let target = if step.cluster == state.local.id {
            &mut state.local
        } else {
            &mut state.remote
        };
        match &step.change {
            Change::PatchElasticsearch { patch, .. } => apply_patch(target, patch),
            Change::PutClusterSettings { settings } => {
                for key in settings.as_object().unwrap().keys() {
                    state.local_alias_settings.remove(key);
                }
            }
            Change::DeleteObject {
                object: ObjectKind::Secret,
                ..
            } => state.credentials_secret = None,
            Change::DeleteObject {
                object: ObjectKind::ConfigMap,
                ..
            } => state.ca_bundle = None,
            _ => {}
        }
    }
    state
}

fn alias_in_use(result: Result<LinkPlan, PlanError>) -> String {
    match result {
        Err(err @ PlanError::AliasInUse { .. }) => err.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_alias_the_plugin_uses_for_another_remote_is_never_re_pointed() {
    let state = linked();
    let request = CrossRequest {
        alias: Some("products".into()),
        ..CrossRequest::default()
    };
    // Another remote under the same alias.
    let mut other = state.clone();
    other.remote = es("west", "shop", "reports", "9.1.0");
    let message = alias_in_use(plan_cross_environment_link(&other, &request));
    assert!(
        message.contains(
            "already links to shop/products (context west) with the api-key security model"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "run `kubectl remote-cluster unlink catalog products -n search --context east` first"
        ),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
    // The same remote in another Kubernetes cluster is another remote too.
    let mut elsewhere = state.clone();
    elsewhere.remote = es("north", "shop", "products", "9.1.0");
    alias_in_use(plan_cross_environment_link(&elsewhere, &request));
    // The same remote with the other security model.
    let certificate = CertificateObserved {
        local: TrustSide {
            es: state.local.clone(),
            own_ca: Some(ca("east-ca")),
            ca_configmap: None,
        },
        remote: TrustSide {
            es: state.remote.clone(),
            own_ca: Some(ca("west-ca")),
            ca_configmap: None,
        },
        ..certificate_observed()
    };
    let message = alias_in_use(plan_certificate_link(&certificate, &request));
    assert!(message.contains("api-key security model"), "{message}");
    // An external remote under an alias a Kubernetes link holds.
    let external = ExternalObserved {
        local: state.local.clone(),
        operator: operator(true),
        credentials_secret: state.credentials_secret.clone(),
        ca_bundle: state.ca_bundle.clone(),
        local_alias_settings: state.local_alias_settings.clone(),
        stored_key_id: Some("key-1".into()),
        pending: None,
    };
    let external_request = ExternalRequest {
        alias: "products".into(),
        proxy_address: "es.example.com:9443".into(),
        server_name: None,
        ca: Some(ca("cloud")),
        key_id: "key-9".into(),
        key_created_at: None,
        skip_unavailable: false,
    };
    alias_in_use(plan_external_link(&external, &external_request));
    let side = TrustSide {
        es: state.local.clone(),
        own_ca: Some(ca("east-ca")),
        ca_configmap: None,
    };
    let cloud = ca("cloud");
    let message = alias_in_use(plan_external_certificate_link(
        &side,
        &operator(true),
        &state.local_alias_settings,
        ExternalCertificateRequest {
            alias: "products",
            proxy_address: "es.example.com:9300",
            remote_ca: &cloud,
            skip_unavailable: false,
            restriction: None,
        },
    ));
    assert!(
        message.contains("shop/products (context west)"),
        "{message}"
    );
    // The same remote and model again is not a re-pointing.
    assert!(plan_cross_environment_link(&state, &request).is_ok());
}

#[test]
fn an_external_alias_is_not_taken_over_by_a_kubernetes_link() {
    let state = observed();
    let external = ExternalObserved {
        local: state.local.clone(),
        operator: operator(true),
        credentials_secret: None,
        ca_bundle: None,
        local_alias_settings: BTreeMap::new(),
        stored_key_id: None,
        pending: None,
    };
    let request = ExternalRequest {
        alias: "products".into(),
        proxy_address: "es.example.com:9443".into(),
        server_name: None,
        ca: Some(ca("cloud")),
        key_id: "key-9".into(),
        key_created_at: None,
        skip_unavailable: false,
    };
    let planned = plan_external_link(&external, &request).unwrap();
    let mut local = state.local.clone();
    for step in &planned.plan.steps {
        if let Change::PatchElasticsearch { patch, .. } = &step.change {
            apply_patch(&mut local, patch);
        }
    }
    let mut after = state.clone();
    after.local = local;
    let message = alias_in_use(plan_cross_environment_link(
        &after,
        &CrossRequest::default(),
    ));
    assert!(
        message.contains("the external cluster at es.example.com:9443"),
        "{message}"
    );
}

#[test]
fn a_bundle_mounted_after_a_public_ca_link_without_one_is_warned_about() {
    let state = observed();
    let external = |local: EsState| ExternalObserved {
        local,
        operator: operator(true),
        credentials_secret: None,
        ca_bundle: None,
        local_alias_settings: BTreeMap::new(),
        stored_key_id: None,
        pending: None,
    };
    let request = |alias: &str, ca: Option<RemoteCa>| ExternalRequest {
        alias: alias.into(),
        proxy_address: "es.example.com:9443".into(),
        server_name: None,
        ca,
        key_id: "key-9".into(),
        key_created_at: None,
        skip_unavailable: false,
    };
    // A link made while public CAs were trusted without a bundle (an earlier plugin version).
    let planned =
        plan_external_link(&external(state.local.clone()), &request("ech", None)).unwrap();
    let mut local = state.local.clone();
    for step in &planned.plan.steps {
        if let Change::PatchElasticsearch { patch, .. } = &step.change {
            apply_patch(&mut local, patch);
        }
    }
    assert!(trusts_public_cas(&local));
    let with_bundle =
        plan_external_link(&external(local.clone()), &request("private", Some(ca("p")))).unwrap();
    let warnings = with_bundle.plan.warnings.join("\n");
    assert!(
        warnings.contains("\"ech\"") && warnings.contains("--public-ca --remote-url"),
        "{warnings}"
    );
    // Without a bundle nothing is cut off.
    let without = plan_external_link(&external(local), &request("other", None)).unwrap();
    assert!(without.plan.warnings.iter().all(|w| !w.contains("\"ech\"")));
}

#[test]
fn a_users_service_type_is_never_replaced() {
    for user_type in ["NodePort", "ClusterIP"] {
        let mut state = observed();
        state.remote.object["spec"]["remoteClusterServer"] = json!({
            "enabled": true,
            "service": {"spec": {"type": user_type}}
        });
        // The plugin would need a LoadBalancer: refused, with what to do.
        let err = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap_err();
        assert!(
            matches!(err, PlanError::ServiceTypeTaken { .. }),
            "{user_type}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "spec.remoteClusterServer.service.spec.type: {user_type}"
            )) && message.contains("--proxy-address"),
            "{message}"
        );
        // With the address the user exposes it at, the user's Service is used as it is.
        let request = CrossRequest {
            proxy_address: Some("rcs.example.com:30443".into()),
            ..CrossRequest::default()
        };
        let before = state.remote.object["spec"].clone();
        let linked = linked_from(state, &request);
        assert_eq!(linked.remote.object["spec"], before, "{user_type}");
        assert_eq!(linked.remote.annotation(EXPOSURE_ANNOTATION), None);
        let back = unlinked(linked);
        assert_eq!(back.remote.object["spec"], before, "{user_type}");
    }
}

#[test]
fn the_users_service_template_fields_survive_link_and_unlink() {
    let mut state = observed();
    let template = json!({
        "metadata": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"ports": [{"name": "rcs", "port": 9443}], "loadBalancerSourceRanges": ["10.0.0.0/8"]}
    });
    state.remote.object["spec"]["remoteClusterServer"] = json!({"service": template});
    let before = state.clone();
    let linked = linked_from(state, &CrossRequest::default());
    let server = &linked.remote.object["spec"]["remoteClusterServer"];
    assert_eq!(server["service"]["spec"]["type"], "LoadBalancer");
    assert_eq!(
        server["service"]["metadata"], template["metadata"],
        "the user's annotations stay"
    );
    assert_eq!(
        server["service"]["spec"]["ports"],
        template["spec"]["ports"]
    );
    let back = unlinked(linked);
    assert_eq!(back.remote.object["spec"], before.remote.object["spec"]);
    assert_eq!(
        back.remote.object["metadata"].get("annotations"),
        before.remote.object["metadata"].get("annotations")
    );
    assert_eq!(back.local.object["spec"], before.local.object["spec"]);
    assert_eq!(back.local.object["metadata"].get("annotations"), None);
}

#[test]
fn a_users_load_balancer_type_is_kept_by_unlink() {
    let mut state = observed();
    state.remote.object["spec"]["remoteClusterServer"] =
        json!({"enabled": true, "service": {"spec": {"type": "LoadBalancer"}}});
    let before = state.remote.object["spec"].clone();
    let linked = linked_from(state, &CrossRequest::default());
    assert_eq!(linked.remote.object["spec"], before);
    let back = unlinked(linked);
    assert_eq!(back.remote.object["spec"], before);
}

#[test]
fn removing_a_block_returns_the_bundle_byte_for_byte() {
    let block = ca_block("a", &ca("a"));
    for user in [
        "",
        "-----BEGIN CERTIFICATE-----\nuser\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nuser\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\r\nuser\r\n-----END CERTIFICATE-----\r\n",
    ] {
        let with = with_block(user, &block);
        assert!(with.contains(&block));
        assert_eq!(without_block(&with, "a"), user, "{user:?}");
        // A second block, removed in either order.
        let both = with_block(&with, &ca_block("b", &ca("b")));
        assert_eq!(without_block(&without_block(&both, "a"), "b"), user);
        assert_eq!(without_block(&without_block(&both, "b"), "a"), user);
    }
}

#[test]
fn a_users_ca_configmap_without_a_final_newline_is_restored_exactly() {
    let mut state = certificate_observed();
    state.local.es.object["spec"]["transport"] =
        json!({"tls": {"certificateAuthorities": {"configMapName": "corporate-cas"}}});
    let corporate = "-----BEGIN CERTIFICATE-----\ncorp\n-----END CERTIFICATE-----";
    state.local.ca_configmap =
        Some(json!({"metadata": {"resourceVersion": "1"}, "data": {"ca.crt": corporate}}));
    let before = state.clone();
    let planned = plan_certificate_link(&state, &CrossRequest::default()).unwrap();
    apply_certificate(&mut state, &planned.plan);
    assert!(state.local.bundle().starts_with(corporate));
    let record = state.local.es.plugin_links()["products"].clone();
    let unlink = plan_certificate_unlink(
        &CertificateUnlinkObserved {
            local: state.local.clone(),
            remote: Some(state.remote.clone()),
            record,
            local_alias_settings: state.local_alias_settings.clone(),
            local_restricted: RestrictedObserved::default(),
            pending: None,
        },
        "products",
    );
    apply_certificate(&mut state, &unlink.plan);
    assert_eq!(state.local.bundle(), corporate, "not one byte added");
    assert_eq!(
        state.local.es.object["spec"],
        before.local.es.object["spec"]
    );
}

#[test]
fn removing_the_last_annotations_removes_the_map_with_a_guard() {
    let mut es = es("east", "search", "catalog", "9.1.0");
    es.object["metadata"]["annotations"] = json!({LINKS_ANNOTATION: "{}"});
    let ops = annotation_ops(&es, &[(LINKS_ANNOTATION, None)]);
    assert_eq!(
        ops,
        [
            json!({"op": "test", "path": "/metadata/annotations", "value": {LINKS_ANNOTATION: "{}"}}),
            json!({"op": "remove", "path": "/metadata/annotations"}),
        ]
    );
    // Another annotation stays, and with it the map.
    es.object["metadata"]["annotations"]["team"] = json!("search");
    let ops = annotation_ops(&es, &[(LINKS_ANNOTATION, None)]);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["op"], "remove");
}

fn invalidated_keys(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|step| match &step.change {
            Change::InvalidateApiKey { id } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_key_an_interrupted_run_left_is_invalidated_last_when_linking_again() {
    let mut state = linked();
    state.active_link_keys = vec!["key-1".into(), "key-orphan".into()];
    let again = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    assert_eq!(
        invalidated_keys(&again.plan),
        ["key-orphan"],
        "the key in use stays"
    );
    assert_eq!(
        again.plan.steps.len(),
        3,
        "the invalidation, inside the pending record: {}",
        render(&again.plan)
    );

    let mut fresh = observed();
    fresh.active_link_keys = vec!["key-orphan".into()];
    let first = plan_cross_environment_link(&fresh, &CrossRequest::default()).unwrap();
    let last = &first.plan.steps[first.plan.steps.len() - 2];
    assert!(
        matches!(&last.change, Change::InvalidateApiKey { id } if id == "key-orphan"),
        "invalidated only after the new key is stored: {}",
        render(&first.plan)
    );
}

#[test]
fn unlink_invalidates_every_active_key_of_the_link() {
    let state = linked();
    let mut observed = unlink_observed(&state, true);
    observed.active_link_keys = vec!["key-1".into(), "key-orphan".into()];
    let unlink = plan_cross_environment_unlink(
        &observed,
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: false,
        },
    );
    assert_eq!(invalidated_keys(&unlink.plan), ["key-1", "key-orphan"]);
}

#[test]
fn an_interrupted_link_is_resumed_and_its_pending_record_deleted_last() {
    let mut state = observed();
    let first = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    let Change::ApplyObject { data, .. } = &first.plan.steps[0].change else {
        panic!("the pending record comes first")
    };
    let DataValue::Literal(text) = &data[PENDING_KEY] else {
        panic!("literal")
    };
    state.pending =
        Some(json!({"metadata": {"resourceVersion": "5"}, "data": {PENDING_KEY: text}}));
    let again = plan_cross_environment_link(&state, &CrossRequest::default()).unwrap();
    assert_eq!(
        again.plan.steps.len(),
        first.plan.steps.len() - 1,
        "the same steps without writing the record again: {}",
        render(&again.plan)
    );
    assert!(matches!(
        &again.plan.steps.last().unwrap().change,
        Change::DeleteObject { resource_version, .. } if resource_version == "5"
    ));
}

#[test]
fn a_pending_record_of_another_link_or_an_unlink_is_refused() {
    let mut other = observed();
    let foreign = PendingOperation {
        operation: "link".into(),
        alias: "products".into(),
        remote_context: "west".into(),
        remote_namespace: "shop".into(),
        remote_name: "orders".into(),
        security: SecurityModel::ApiKey,
        remote_cluster_uid: None,
        remote_server: None,
    };
    for pending in [
        foreign.clone(),
        PendingOperation {
            operation: "unlink".into(),
            remote_name: "products".into(),
            ..foreign
        },
    ] {
        other.pending = Some(json!({"metadata": {"resourceVersion": "5"},
            "data": {PENDING_KEY: serde_json::to_string(&pending).unwrap()}}));
        let refused = plan_cross_environment_link(&other, &CrossRequest::default()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("run `kubectl remote-cluster unlink catalog products`"),
            "{refused}"
        );
    }
}

#[test]
fn unlink_without_the_remote_keeps_the_pending_record_for_a_later_unlink() {
    let state = linked();
    let unlink = plan_cross_environment_unlink(
        &unlink_observed(&state, false),
        &CrossUnlinkRequest {
            alias: "products".into(),
            disable_server: false,
        },
    );
    assert!(matches!(
        &unlink.plan.steps[0].change,
        Change::ApplyObject { data, .. } if data.contains_key(PENDING_KEY)
    ));
    assert!(
        !unlink.plan.steps.iter().any(
            |s| matches!(&s.change, Change::DeleteObject { name, .. } if name.ends_with("-pending"))
        ),
        "{}",
        render(&unlink.plan)
    );
}

#[test]
fn api_key_names_stay_within_elasticsearchs_limit_and_keep_the_names_that_fit() {
    let id = |context: &str| ClusterId {
        context: context.to_string(),
        namespace: "search".to_string(),
        name: "catalog".to_string(),
    };
    // A name that fits is the one every earlier version gave, so its keys are still found.
    assert_eq!(
        api_key_name(&id("east"), "products"),
        "kubectl-rc-east-search-catalog-products"
    );
    let fits = "c".repeat(API_KEY_NAME_MAX - "kubectl-rc--search-catalog-p".len());
    assert_eq!(
        api_key_name(&id(&fits), "p"),
        format!("kubectl-rc-{fits}-search-catalog-p")
    );
    // Longer: cut to the limit, ending with a hash of the whole name, different per link.
    let arn = format!(
        "arn:aws:eks:eu-west-1:123456789012:cluster/{}",
        "x".repeat(240)
    );
    let long = api_key_name(&id(&arn), "products");
    assert_eq!(long.encode_utf16().count(), API_KEY_NAME_MAX);
    assert!(
        long.starts_with("kubectl-rc-arn:aws:eks:eu-west-1:"),
        "{long}"
    );
    let other = api_key_name(&id(&arn), "products-2");
    assert_ne!(long, other);
    assert_eq!(long[..240], other[..240]);
    assert_eq!(long, api_key_name(&id(&arn), "products"), "stable");
    // Counted as Elasticsearch counts (UTF-16 units), never cut inside a character.
    let wide = api_key_name(&id(&"🦀".repeat(200)), "p");
    assert!(wide.encode_utf16().count() <= API_KEY_NAME_MAX, "{wide}");
}

/// With file-based secure settings (ECK 3.5+, Elasticsearch 9.5+) the key is applied in place:
/// the plan says so, restarts only the remote (its server), and does not wait for a local
/// restart; without the annotation, or below 9.5, the keystore restarts the local.
#[test]
fn file_based_secure_settings_link_without_a_local_restart() {
    let with = |version: &str, annotated: bool| {
        let mut state = observed();
        state.local = es("east", "search", "catalog", version);
        if annotated {
            state.local.object["metadata"]["annotations"] =
                json!({(FILE_BASED_SECURE_SETTINGS): "true"});
        }
        plan_cross_environment_link(&state, &CrossRequest::default()).unwrap()
    };
    let file_based = with("9.5.0", true);
    assert!(
        summaries(&file_based.plan).contains(
            &"east/catalog: store the API key in Secret catalog-remote-cluster-credentials (file-based secure settings: applies without a restart)".to_string()
        ),
        "{}",
        render(&file_based.plan)
    );
    let local = &file_based.plan.steps[0].cluster;
    let restarts_local = |plan: &Plan| plan.restarts().contains(&local);
    // The CA mount is still a pod-template change on a first link.
    assert!(restarts_local(&file_based.plan));
    assert!(
        !file_based
            .plan
            .steps
            .iter()
            .any(|s| s.summary.contains("store the API key") && s.restarts_nodes)
    );
    for (version, annotated) in [("9.5.0", false), ("9.4.0", true)] {
        let keystore = with(version, annotated);
        assert!(
            keystore
                .plan
                .steps
                .iter()
                .any(|s| s.summary.contains("store the API key") && s.restarts_nodes),
            "{version} {annotated}"
        );
    }
}
