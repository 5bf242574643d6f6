//! The README's first command: `spec-kitty demo` runs the main job on a throwaway repository.

mod common;

use common::{TestRepo, stderr, stdout};

#[test]
fn demo_runs_a_work_package_through_the_lanes_with_hooks() {
    let env = TestRepo::new();
    let out = env.sk(&["demo"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for needle in [
        "post-commit    installed",
        "HistoryAdded WP01 note: commit ",
        "WPStatusChanged WP01 planned → doing",
        "WPStatusChanged WP01 doing → for_review",
        "WPStatusChanged WP01 for_review → done",
        "DependencyResolved WP02 WP01 completed",
        "0 problems: clean",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The demo leaves nothing behind in the user's home.
    assert!(!env.home.join(".gitconfig").exists());
}
