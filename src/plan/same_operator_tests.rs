use super::*;

fn es(namespace: &str, name: &str, version: &str) -> EsState {
    EsState {
        id: ClusterId {
            context: "east".into(),
            namespace: namespace.into(),
            name: name.into(),
        },
        object: json!({
            "apiVersion": "elasticsearch.k8s.elastic.co/v1",
            "kind": "Elasticsearch",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "100", "generation": 1},
            "spec": {"version": version, "nodeSets": [{"name": "default", "count": 1}]}
        }),
    }
}

fn enterprise() -> Operator {
    Operator {
        license_level: Some("enterprise".into()),
        crd_has_api_key: true,
        crd_has_remote_cluster_server: true,
        crd_has_server_service: true,
    }
}

/// Applies a planned step to the state, as the API server would, bumping the resourceVersion.
fn apply(state: &mut EsState, step: &Step) {
    let Change::PatchElasticsearch { patch, .. } = &step.change else {
        panic!("only Elasticsearch patches here")
    };
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(patch.clone())).unwrap();
    json_patch::patch(&mut state.object, &patch).expect("the guarded patch applies");
    let next = state.resource_version().parse::<u64>().unwrap() + 1;
    state.object["metadata"]["resourceVersion"] = json!(next.to_string());
}

fn apply_all(plan: &Plan, states: &mut [&mut EsState]) {
    for step in &plan.steps {
        let state = states.iter_mut().find(|s| s.id == step.cluster).unwrap();
        apply(state, step);
    }
}

#[test]
fn api_key_link_adds_the_entry_then_enables_the_server() {
    let local = es("search", "catalog", "9.1.0");
    let remote = es("search", "products", "9.1.0");
    let planned =
        plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default()).unwrap();
    assert_eq!(planned.alias, "products");
    assert_eq!(planned.security, SecurityModel::ApiKey);
    assert_eq!(planned.plan.steps.len(), 2);
    // The local's record first, so that a run stopped between the two leaves a link `unlink`
    // finds.
    assert_eq!(planned.plan.steps[0].cluster, local.id);
    assert_eq!(planned.plan.steps[1].cluster, remote.id);
    assert!(planned.plan.steps.iter().all(|s| s.restarts_nodes));
    insta::assert_snapshot!("api_key_link_render", render(&planned.plan));
    insta::assert_json_snapshot!("api_key_link_plan", planned.plan);
}

#[test]
fn linking_twice_plans_nothing_the_second_time() {
    let mut local = es("search", "catalog", "9.1.0");
    let mut remote = es("logs", "products", "9.1.0");
    let request = LinkRequest {
        search_indices: vec!["logs-*".into()],
        replication_indices: vec!["leader-*".into()],
        ..LinkRequest::default()
    };
    let first = plan_same_operator_link(&local, &remote, &enterprise(), &request).unwrap();
    apply_all(&first.plan, &mut [&mut local, &mut remote]);
    let entry = &local.remote_clusters()[0];
    assert_eq!(
        entry,
        &json!({"name": "products", "elasticsearchRef": {"name": "products", "namespace": "logs"},
                "apiKey": {"access": {"search": {"names": ["logs-*"]}, "replication": {"names": ["leader-*"]}}}})
    );
    let second = plan_same_operator_link(&local, &remote, &enterprise(), &request).unwrap();
    assert!(second.plan.is_empty(), "{:?}", second.plan);
}

#[test]
fn entries_the_plugin_did_not_add_stay_in_place() {
    let mut local = es("search", "catalog", "9.1.0");
    local.object["spec"]["remoteClusters"] = json!([
        {"name": "legacy", "elasticsearchRef": {"name": "old"}, "extra": {"kept": true}}
    ]);
    let mut remote = es("search", "products", "9.1.0");
    remote.object["spec"]["remoteClusterServer"] = json!({"enabled": true});
    let planned = plan_same_operator_link(
        &local,
        &remote,
        &enterprise(),
        &LinkRequest {
            alias: Some("prod".into()),
            ..LinkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(planned.plan.steps.len(), 1, "the server is already on");
    apply_all(&planned.plan, &mut [&mut local]);
    let entries = local.remote_clusters();
    assert_eq!(
        entries[0],
        json!({"name": "legacy", "elasticsearchRef": {"name": "old"}, "extra": {"kept": true}})
    );
    assert_eq!(entries[1]["name"], "prod");
    assert!(local.plugin_links().contains_key("prod"));
}

#[test]
fn a_foreign_entry_with_the_alias_is_refused() {
    let mut local = es("search", "catalog", "9.1.0");
    local.object["spec"]["remoteClusters"] =
        json!([{"name": "products", "elasticsearchRef": {"name": "elsewhere"}}]);
    let remote = es("search", "products", "9.1.0");
    let err = plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "alias \"products\" is already used on search/catalog (context east) by a link to search/elsewhere; choose another with --alias"
    );
}

#[test]
fn an_alias_eck_is_still_removing_is_refused() {
    let mut local = es("search", "catalog", "9.1.0");
    local.object["metadata"]["annotations"] = json!({ECK_MANAGED_REMOTES: "products"});
    let remote = es("search", "products", "9.1.0");
    let err = plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default())
        .unwrap_err();
    assert!(matches!(err, PlanError::AliasTaken { .. }), "{err}");
}

#[test]
fn pre_write_checks() {
    let local = es("search", "catalog", "9.1.0");
    let remote = es("search", "products", "9.1.0");
    let op = enterprise();
    let default = LinkRequest::default();

    assert!(matches!(
        plan_same_operator_link(&local, &local, &op, &default),
        Err(PlanError::SameCluster(_))
    ));
    let bad_alias = LinkRequest {
        alias: Some("Prod.EU".into()),
        ..LinkRequest::default()
    };
    assert_eq!(
        plan_same_operator_link(&local, &remote, &op, &bad_alias).unwrap_err(),
        PlanError::InvalidAlias("Prod.EU".into())
    );
    let old = es("search", "products", "8.17.0");
    let err = plan_same_operator_link(&local, &old, &op, &default).unwrap_err();
    assert!(
        matches!(err, PlanError::IncompatibleVersions { .. }),
        "{err}"
    );

    let ancient_local = es("search", "catalog", "8.9.0");
    let ancient_remote = es("search", "products", "8.9.1");
    let api_key = LinkRequest {
        security: Some(SecurityModel::ApiKey),
        ..LinkRequest::default()
    };
    let err = plan_same_operator_link(&ancient_local, &ancient_remote, &op, &api_key).unwrap_err();
    assert!(matches!(err, PlanError::ApiKeyUnsupported { .. }), "{err}");

    let basic = Operator {
        license_level: Some("basic".into()),
        ..enterprise()
    };
    let err = plan_same_operator_link(&local, &remote, &basic, &default).unwrap_err();
    assert!(
        err.to_string().contains("ECK does nothing with the link"),
        "{err}"
    );

    let old_operator = Operator {
        crd_has_api_key: false,
        crd_has_remote_cluster_server: false,
        ..enterprise()
    };
    let err = plan_same_operator_link(&local, &remote, &old_operator, &api_key).unwrap_err();
    assert!(err.to_string().contains("ECK 2.16 or later"), "{err}");

    let mut unmanaged = es("search", "products", "9.1.0");
    unmanaged.object["metadata"]["annotations"] = json!({ECK_MANAGED: "false"});
    assert!(matches!(
        plan_same_operator_link(&local, &unmanaged, &op, &default),
        Err(PlanError::NotManaged { .. })
    ));

    let certificate_with_indices = LinkRequest {
        security: Some(SecurityModel::Certificate),
        search_indices: vec!["a".into()],
        ..LinkRequest::default()
    };
    assert_eq!(
        plan_same_operator_link(&local, &remote, &op, &certificate_with_indices).unwrap_err(),
        PlanError::IndicesWithCertificate
    );
}

#[test]
fn older_versions_fall_back_to_certificates_with_a_warning() {
    let local = es("search", "catalog", "8.12.0");
    let remote = es("search", "products", "8.13.0");
    let planned =
        plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default()).unwrap();
    assert_eq!(planned.security, SecurityModel::Certificate);
    assert_eq!(planned.plan.steps.len(), 1);
    assert!(!planned.plan.steps[0].restarts_nodes);
    assert!(planned.plan.warnings[0].contains("deprecated"));
    let Change::PatchElasticsearch { patch, .. } = &planned.plan.steps[0].change else {
        panic!("an Elasticsearch patch")
    };
    assert_eq!(
        patch[1],
        json!({"op": "add", "path": "/spec/remoteClusters", "value": [{"name": "products", "elasticsearchRef": {"name": "products"}}]})
    );
}

#[test]
fn every_spec_edit_is_guarded_by_the_generation_read() {
    let local = es("search", "catalog", "9.1.0");
    let remote = es("search", "products", "9.1.0");
    let planned =
        plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default()).unwrap();
    for step in &planned.plan.steps {
        let Change::PatchElasticsearch { patch, .. } = &step.change else {
            panic!("only Elasticsearch patches here")
        };
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/generation", "value": 1})
        );
        // The annotations map is created whole here, so the resourceVersion guards it too.
        assert!(
            patch.contains(
                &json!({"op": "test", "path": "/metadata/resourceVersion", "value": "100"})
            )
        );
    }
}

fn linked() -> (EsState, EsState) {
    let mut local = es("search", "catalog", "9.1.0");
    let mut remote = es("search", "products", "9.1.0");
    let planned =
        plan_same_operator_link(&local, &remote, &enterprise(), &LinkRequest::default()).unwrap();
    apply_all(&planned.plan, &mut [&mut local, &mut remote]);
    (local, remote)
}

#[test]
fn unlink_reverses_link_exactly() {
    let original = es("search", "catalog", "9.1.0");
    let original_remote = es("search", "products", "9.1.0");
    let (mut local, mut remote) = linked();
    let request = UnlinkRequest {
        alias: "products".into(),
        disable_server: true,
    };
    let planned = plan_same_operator_unlink(&local, Some(&remote), &[], &request).unwrap();
    insta::assert_snapshot!("unlink_render", render(&planned.plan));
    apply_all(&planned.plan, &mut [&mut local, &mut remote]);
    assert_eq!(
        local.object["spec"],
        json!({"version": "9.1.0", "nodeSets": [{"name": "default", "count": 1}]})
    );
    // Exactly as before the link: no empty annotations map, no `enabled: false`.
    assert_eq!(
        local.object["metadata"].get("annotations"),
        original.object["metadata"].get("annotations")
    );
    assert_eq!(remote.object["spec"], original_remote.object["spec"]);
    assert_eq!(
        remote.object["metadata"].get("annotations"),
        original_remote.object["metadata"].get("annotations")
    );
    assert_eq!(
        original.object["spec"]["version"],
        local.object["spec"]["version"]
    );
    assert_eq!(original_remote.id, remote.id);
}

#[test]
fn unlink_keeps_the_server_for_other_clients_and_says_who() {
    let (local, remote) = linked();
    let mut other = es("search", "reports", "9.1.0");
    other.object["spec"]["remoteClusters"] = json!([
        {"name": "p", "elasticsearchRef": {"name": "products"}, "apiKey": {"access": {"search": {"names": ["*"]}}}}
    ]);
    let request = UnlinkRequest {
        alias: "products".into(),
        disable_server: true,
    };
    let planned = plan_same_operator_unlink(&local, Some(&remote), &[other], &request).unwrap();
    assert_eq!(planned.plan.steps.len(), 1);
    assert_eq!(planned.still_using, ["search/reports"]);
    assert!(planned.plan.warnings[0].contains("still used by search/reports"));
}

#[test]
fn unlink_refuses_what_is_not_ours_or_not_there() {
    let mut local = es("search", "catalog", "9.1.0");
    local.object["spec"]["remoteClusters"] =
        json!([{"name": "hand-made", "elasticsearchRef": {"name": "x"}}]);
    let ask = |alias: &str| UnlinkRequest {
        alias: alias.into(),
        disable_server: false,
    };
    assert!(matches!(
        plan_same_operator_unlink(&local, None, &[], &ask("hand-made")),
        Err(PlanError::NotOurs { .. })
    ));
    assert!(matches!(
        plan_same_operator_unlink(&local, None, &[], &ask("missing")),
        Err(PlanError::NoSuchAlias { .. })
    ));
}

#[test]
fn alias_rules() {
    assert!(valid_alias("prod_eu-1"));
    assert!(!valid_alias(""));
    assert!(!valid_alias("Prod"));
    assert!(!valid_alias("a.b"));
    assert!(!valid_alias("a:b"));
}

#[test]
fn skip_unavailable_is_set_once_and_cleared_before_the_seeds_go() {
    let local = es("search", "catalog", "9.1.0");
    let set = skip_unavailable_step(&local, "products", true, None).unwrap();
    assert!(matches!(
        &set.change,
        Change::SetSkipUnavailable {
            value: Some(true),
            ..
        }
    ));
    assert!(skip_unavailable_step(&local, "products", true, Some(true)).is_none());
    assert!(skip_unavailable_step(&local, "products", false, None).is_none());
    assert!(clear_skip_unavailable_step(&local, "products", None).is_none());
    let clear = clear_skip_unavailable_step(&local, "products", Some(true)).unwrap();
    assert!(matches!(
        &clear.change,
        Change::SetSkipUnavailable { value: None, .. }
    ));
}

#[test]
fn an_alias_of_the_plugin_is_never_re_pointed() {
    let (local, _) = linked();
    let request = LinkRequest {
        alias: Some("products".into()),
        ..LinkRequest::default()
    };
    // Another remote under the alias the plugin uses for products.
    let reports = es("search", "reports", "9.1.0");
    let err = plan_same_operator_link(&local, &reports, &enterprise(), &request).unwrap_err();
    assert!(matches!(err, PlanError::AliasInUse { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(
            "already links to search/products (context east) with the api-key security model"
        ) && message.contains(
            "`kubectl remote-cluster unlink catalog products -n search --context east` first"
        ),
        "{message}"
    );
    // The same remote with the other security model.
    let products = es("search", "products", "9.1.0");
    let certificate = LinkRequest {
        security: Some(SecurityModel::Certificate),
        ..request.clone()
    };
    let err = plan_same_operator_link(&local, &products, &enterprise(), &certificate).unwrap_err();
    assert!(matches!(err, PlanError::AliasInUse { .. }), "{err}");
    // A link across Kubernetes clusters under the alias: a same-operator link does not take it.
    let mut crossed = es("search", "catalog", "9.1.0");
    crossed.object["metadata"]["annotations"] = json!({LINKS_ANNOTATION: serde_json::to_string(&json!({
        "products": {"remoteContext": "west", "remoteNamespace": "shop", "remoteName": "products", "security": "api-key", "proxyAddress": "lb:9443"}
    })).unwrap()});
    let err = plan_same_operator_link(&crossed, &products, &enterprise(), &request).unwrap_err();
    assert!(
        err.to_string().contains("shop/products (context west)"),
        "{err}"
    );
    // The same remote and model again (other indices) is an update, not a re-pointing.
    let update = LinkRequest {
        search_indices: vec!["logs-*".into()],
        ..request
    };
    assert!(plan_same_operator_link(&local, &products, &enterprise(), &update).is_ok());
}

/// Only pod-template inputs restart (real-behaviour.md 6): a certificate-model entry next to an
/// API-key one leaves the keystore alone; the link record restarts once ECK propagates it.
#[test]
fn a_certificate_entry_restarts_only_when_its_record_is_propagated() {
    let mut local = es("search", "catalog", "9.1.0");
    let mut products = es("search", "products", "9.1.0");
    let orders = es("search", "orders", "9.1.0");
    let api_key =
        plan_same_operator_link(&local, &products, &enterprise(), &LinkRequest::default()).unwrap();
    apply_all(&api_key.plan, &mut [&mut local, &mut products]);
    let certificate = LinkRequest {
        security: Some(SecurityModel::Certificate),
        ..LinkRequest::default()
    };
    let planned = plan_same_operator_link(&local, &orders, &enterprise(), &certificate).unwrap();
    assert!(
        planned.plan.restarts().is_empty(),
        "{}",
        render(&planned.plan)
    );

    local.object["metadata"]["annotations"][PROPAGATE_ANNOTATIONS] = json!("*");
    let planned = plan_same_operator_link(&local, &orders, &enterprise(), &certificate).unwrap();
    assert_eq!(planned.plan.restarts(), vec![&local.id]);
}
