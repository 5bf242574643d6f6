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
        // The team part: a server, a login, a sync, and a teammate's pull.
        "✅ Login successful!",
        "↑ Pushed ",
        "✅ Sync complete",
        "Spec Kitty Sync Status",
        "all there: yes",
        "bob pulls alice's events",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The teammate pulled every event alice pushed, and its board shows her moves.
    let pushed = text
        .lines()
        .find_map(|l| l.strip_prefix("↑ Pushed "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a pushed count");
    assert!(
        text.contains(&format!("↓ Pulled {pushed} new events")),
        "the teammate pulls all {pushed}: {text}"
    );
    let board = text
        .rsplit("bob's board shows alice's moves")
        .next()
        .unwrap_or("");
    assert!(board.contains("WP01"), "{board}");
    // The demo leaves nothing behind in the user's home.
    assert!(!env.home.join(".gitconfig").exists());
    assert!(!env.home.join(".spec-kitty/credentials").exists());
    assert!(!env.home.join(".spec-kitty/config.toml").exists());
}

#[test]
fn demo_leaves_a_global_core_hooks_path_and_its_hooks_untouched() {
    // Given a user whose global git config sends every repository's hooks to ~/globalhooks.
    let env = TestRepo::new();
    let global_hooks = env.home.join("globalhooks");
    std::fs::create_dir_all(&global_hooks).unwrap();
    let hook = global_hooks.join("post-commit");
    let hook_text = format!(
        "#!/bin/sh\necho ran >> '{}'\n",
        env.home.join("global-hook-ran").display()
    );
    std::fs::write(&hook, &hook_text).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let gitconfig = env.home.join(".gitconfig");
    let config_text = format!("[core]\n\thooksPath = {}\n", global_hooks.display());
    std::fs::write(&gitconfig, &config_text).unwrap();

    let out = env.sk(&["demo"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("HistoryAdded WP01 note: commit "),
        "the demo's own hooks still record: {}",
        stdout(&out)
    );

    // The global hooks directory holds exactly what it held, and its hook never ran.
    let names: Vec<String> = std::fs::read_dir(&global_hooks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["post-commit".to_owned()]);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), hook_text);
    assert!(!env.home.join("global-hook-ran").exists());
    assert_eq!(std::fs::read_to_string(&gitconfig).unwrap(), config_text);
}
