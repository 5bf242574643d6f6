//! docs/reference/cli-commands.md is generated from the clap definitions
//! (`spec-kitty __generate-docs`); this test fails when the committed page differs from what
//! the code generates. `SPEC_KITTY_BLESS=1 cargo test --test docs_cli_reference` rewrites it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");
const PAGE: &str = "docs/reference/cli-commands.md";

fn generate() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cli-commands.md");
    let run = Command::new(BIN)
        .arg("__generate-docs")
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run spec-kitty __generate-docs");
    assert!(
        run.status.success(),
        "__generate-docs failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(&out).expect("generated page")
}

#[test]
fn the_committed_cli_reference_is_what_the_code_generates() {
    let generated = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE);
    if std::env::var_os("SPEC_KITTY_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the page");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{PAGE} is out of date with the clap definitions (first difference at line {}):\n\
             committed: {:?}\ngenerated: {:?}\n\
             regenerate it with: SPEC_KITTY_BLESS=1 cargo test --test docs_cli_reference",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn every_visible_command_has_a_section_and_hidden_ones_none() {
    let page = generate();
    for heading in [
        "## `spec-kitty auth`",
        "## `spec-kitty sync`",
        "## `spec-kitty sync now`",
        "## `spec-kitty sync workspace`",
        "## `spec-kitty completions`",
        "## `spec-kitty man`",
    ] {
        assert!(page.contains(heading), "missing {heading}");
    }
    assert!(
        !page.contains("## `spec-kitty __generate-docs"),
        "the generator itself stays hidden"
    );
    assert!(
        !page.contains("## `spec-kitty sync daemon run"),
        "hidden subcommands stay hidden"
    );
}

#[test]
fn the_auth_and_sync_groups_open_with_local_versus_server_sync() {
    let page = generate();
    for group in ["## `spec-kitty auth`", "## `spec-kitty sync`"] {
        let at = page.find(&format!("{group}\n")).expect(group);
        let section = &page[at..at + 1500.min(page.len() - at)];
        assert!(
            section.contains("`sync workspace`") || section.contains("`spec-kitty sync workspace`"),
            "{group} names the local sync workspace"
        );
        assert!(section.contains("sync now"), "{group} names server sync");
    }
}

#[test]
fn completions_and_man_pages_are_generated_from_the_same_definitions() {
    let bash = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .expect("run completions");
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(script.contains("spec-kitty") && script.contains("workspace"));

    let dir = tempfile::tempdir().expect("temp dir");
    let man_dir = dir.path().join("man1");
    let man = Command::new(BIN)
        .args(["man", "--out"])
        .arg(&man_dir)
        .output()
        .expect("run man");
    assert!(
        man.status.success(),
        "{}",
        String::from_utf8_lossy(&man.stderr)
    );
    let page = std::fs::read_to_string(man_dir.join("spec-kitty-sync-now.1")).expect("page");
    assert!(page.contains(".TH") && page.contains("dry\\-run"), "{page}");
    assert!(man_dir.join("spec-kitty.1").is_file());
}
