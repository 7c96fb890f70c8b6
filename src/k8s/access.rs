//! RBAC pre-flight: asks the API server whether the current user may do what a plan needs.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::clients::ContextClient;

/// `Some(allowed)` from a SelfSubjectAccessReview, `None` when the review itself failed (the
/// write will then meet RBAC on its own and report it).
pub async fn may(
    client: &ContextClient,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> Option<bool> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                namespace: Some(namespace.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = client
        .call(reviews.create(&PostParams::default(), &review))
        .await
        .ok()?;
    answer.status.map(|status| status.allowed)
}
