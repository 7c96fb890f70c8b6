//! The resource types the fake API server serves, and what discovery says about them.
//!
//! Names, kinds, short names and verbs are those of a real cluster (`kubectl api-resources`
//! on Kubernetes 1.3x; the Elasticsearch entry comes from the ECK CRD, see
//! `eck-remote-clusters.md` in the shared docs, section 2.1).

use serde::Serialize;

/// Identifies a resource type: API group ("" for the core group), version and plural name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ResourceKey {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

impl ResourceKey {
    pub const ELASTICSEARCHES: ResourceKey = ResourceKey {
        group: "elasticsearch.k8s.elastic.co",
        version: "v1",
        plural: "elasticsearches",
    };
    pub const SECRETS: ResourceKey = ResourceKey::core("secrets");
    pub const CONFIGMAPS: ResourceKey = ResourceKey::core("configmaps");
    pub const SERVICES: ResourceKey = ResourceKey::core("services");
    pub const PODS: ResourceKey = ResourceKey::core("pods");
    pub const NAMESPACES: ResourceKey = ResourceKey::core("namespaces");
    pub const EVENTS: ResourceKey = ResourceKey::core("events");
    pub const CUSTOM_RESOURCE_DEFINITIONS: ResourceKey = ResourceKey {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
    };

    /// `authorization.k8s.io/v1` `selfsubjectaccessreviews` (create only, never stored).
    pub const SELF_SUBJECT_ACCESS_REVIEWS: ResourceKey = ResourceKey {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
    };

    const fn core(plural: &'static str) -> ResourceKey {
        ResourceKey {
            group: "",
            version: "v1",
            plural,
        }
    }

    /// `apiVersion` of objects of this type (`v1` or `group/version`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` in the core group), as the API server writes it in
    /// error messages (`schema.GroupResource.String()`).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Static description of this resource type, if the sandbox knows it.
    pub fn info(&self) -> Option<&'static ResourceInfo> {
        ALL.iter().find(|r| r.key == *self)
    }

    pub fn kind(&self) -> &'static str {
        self.info().map(|i| i.kind).unwrap_or("Unknown")
    }

    pub fn namespaced(&self) -> bool {
        self.info().map(|i| i.namespaced).unwrap_or(true)
    }

    /// Every resource type the sandbox serves (when ECK is installed).
    pub fn all() -> impl Iterator<Item = ResourceKey> {
        ALL.iter().map(|r| r.key)
    }
}

/// What discovery publishes about a resource type.
#[derive(Debug)]
pub struct ResourceInfo {
    pub key: ResourceKey,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Has a `/status` subresource.
    pub status_subresource: bool,
    /// `metadata.generation` is maintained (custom resources and CRDs).
    pub has_generation: bool,
    /// DELETE answers the deleted object (true) or a `Status` (false), as the real registry
    /// (`ReturnDeletedObject` in `k8s.io/apiserver/pkg/registry/generic/registry/store.go`).
    pub delete_returns_object: bool,
    /// Custom resources refuse unconditional updates (PUT without resourceVersion):
    /// `AllowUnconditionalUpdate() == false` in apiextensions-apiserver's strategy.
    pub allow_unconditional_update: bool,
    /// Field selectors accepted besides metadata.name / metadata.namespace.
    pub field_selectors: &'static [&'static str],
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

static ALL: &[ResourceInfo] = &[
    ResourceInfo {
        key: ResourceKey::ELASTICSEARCHES,
        kind: "Elasticsearch",
        singular: "elasticsearch",
        namespaced: true,
        short_names: &["es"],
        categories: &["elastic"],
        verbs: ALL_VERBS,
        status_subresource: true,
        has_generation: true,
        delete_returns_object: true,
        allow_unconditional_update: false,
        field_selectors: &[],
    },
    ResourceInfo {
        key: ResourceKey::SECRETS,
        kind: "Secret",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        status_subresource: false,
        has_generation: false,
        delete_returns_object: false,
        allow_unconditional_update: true,
        field_selectors: &["type"],
    },
    ResourceInfo {
        key: ResourceKey::CONFIGMAPS,
        kind: "ConfigMap",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        verbs: ALL_VERBS,
        status_subresource: false,
        has_generation: false,
        delete_returns_object: false,
        allow_unconditional_update: true,
        field_selectors: &[],
    },
    ResourceInfo {
        key: ResourceKey::SERVICES,
        kind: "Service",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        verbs: ALL_VERBS,
        status_subresource: true,
        has_generation: false,
        delete_returns_object: false,
        allow_unconditional_update: true,
        field_selectors: &["spec.clusterIP", "spec.type"],
    },
    ResourceInfo {
        key: ResourceKey::PODS,
        kind: "Pod",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        status_subresource: true,
        has_generation: false,
        delete_returns_object: true,
        allow_unconditional_update: true,
        field_selectors: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    ResourceInfo {
        key: ResourceKey::NAMESPACES,
        kind: "Namespace",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        status_subresource: true,
        has_generation: false,
        delete_returns_object: true,
        allow_unconditional_update: true,
        field_selectors: &["status.phase"],
    },
    ResourceInfo {
        key: ResourceKey::EVENTS,
        kind: "Event",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        status_subresource: false,
        has_generation: false,
        delete_returns_object: false,
        allow_unconditional_update: true,
        field_selectors: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    ResourceInfo {
        key: ResourceKey::CUSTOM_RESOURCE_DEFINITIONS,
        kind: "CustomResourceDefinition",
        singular: "customresourcedefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        verbs: ALL_VERBS,
        status_subresource: true,
        has_generation: true,
        delete_returns_object: true,
        allow_unconditional_update: false,
        field_selectors: &[],
    },
    ResourceInfo {
        key: ResourceKey::SELF_SUBJECT_ACCESS_REVIEWS,
        kind: "SelfSubjectAccessReview",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: &["create"],
        status_subresource: false,
        has_generation: false,
        delete_returns_object: false,
        allow_unconditional_update: false,
        field_selectors: &[],
    },
];

/// Finds a resource type by group, version and plural in the served set.
pub(crate) fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    ALL.iter()
        .find(|r| r.key.group == group && r.key.version == version && r.key.plural == plural)
}
