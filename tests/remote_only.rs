//! `unlink --remote-only`: the remote's side of an API-key link across Kubernetes clusters,
//! removed from the remote alone (the local is gone, out of reach, or was cleaned with
//! `--local-only`), found through the remote's record of the incoming link.

mod common;

use common::{World, es, stderr_of};

const BOTH: &[&str] = &["east", "west"];

fn world() -> World {
    World::settled(common::east_and_west(
        [es("search", "catalog")],
        [es("shop", "products")],
    ))
}

fn link() -> Vec<&'static str> {
    common::east_to_west("link", "products", &["--yes", "--timeout", "60s"])
}

/// `unlink` of alias `products` from east/search/catalog, then `extra`.
fn unlink(extra: &[&'static str]) -> Vec<&'static str> {
    [
        &[
            "unlink",
            "catalog",
            "products",
            "-n",
            "search",
            "--context",
            "east",
            "--yes",
            "--timeout",
            "60s",
        ][..],
        extra,
    ]
    .concat()
}

#[test]
fn local_only_then_remote_only_then_unlink_restore_both_clusters() {
    let world = world();
    let before = world.snapshot(BOTH);
    world.ok(link());
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);

    let local_only = world.ok(unlink(&["--local-only"]));
    assert!(
        stderr_of(&local_only).contains("left on the remote"),
        "{}",
        stderr_of(&local_only)
    );
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);

    world.clear_requests(BOTH);
    let remote_only = world.ok(unlink(&[
        "--remote-only",
        "--remote-context",
        "west",
        "--disable-server",
    ]));
    let said = stderr_of(&remote_only);
    assert!(said.contains("the local side was not contacted"), "{said}");
    assert_eq!(
        world.request_count("east"),
        0,
        "the local is never contacted"
    );
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 0);
    world.settle(BOTH);
    let after = world.snapshot(&["west"]);
    let west_before: Vec<_> = before
        .iter()
        .filter(|(name, _)| name.starts_with("west/"))
        .cloned()
        .collect();
    common::assert_same_objects(&west_before, &after);

    // The local still holds the pending record `--local-only` kept: a plain unlink, once the
    // local is back, finds nothing left on the remote and forgets it.
    world.ok(unlink(&[]));
    world.assert_unchanged(BOTH, &before);

    // Nothing left to remove: said, exit 2, no write.
    world.refused(
        unlink(&["--remote-only", "--remote-context", "west"]),
        "no Elasticsearch in context \"west\" records an incoming link \"east/search/catalog:products\"",
    );
}

#[test]
fn remote_only_is_refused_without_the_remote_context_or_with_local_only() {
    let world = world();
    world.ok(link());
    world.refused(unlink(&["--remote-only"]), "--remote-context");
    world.refused(
        unlink(&["--remote-only", "--remote-context", "west", "--local-only"]),
        "cannot be used with",
    );
    // A link the remote does not record under that local name: nothing is written.
    world.refused(
        [
            "unlink",
            "catalog",
            "products",
            "-n",
            "elsewhere",
            "--context",
            "east",
            "--remote-only",
            "--remote-context",
            "west",
            "--yes",
        ],
        "records an incoming link \"east/elsewhere/catalog:products\"",
    );
    assert_eq!(world.active_plugin_keys("west", "shop", "products"), 1);
}
