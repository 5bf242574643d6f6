//! 5,000 pending events go up in 5 batches; the progress bar appears on a terminal only.

mod common;
mod server_common;
mod sync_common;

use std::process::Command;

use server_common::TestServer;
use sync_common::*;

#[test]
fn five_thousand_events_go_in_five_batches_with_a_progress_bar_only_on_a_terminal() {
    if common::rerun_hermetic(
        "five_thousand_events_go_in_five_batches_with_a_progress_bar_only_on_a_terminal",
    ) {
        return;
    }
    let server = TestServer::start(&[]);
    server.add_user("alice", "acme");
    let repo = repo_for(&server);
    append_n(&repo.root, 5000, |_| "local");
    login(&repo, "alice");

    // Under a pseudo-terminal (`script` allocates one): the bar is drawn on stderr.
    let cmd = format!("{} sync now", common::BIN);
    let out = repo
        .env(Command::new("script").current_dir(&repo.root))
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("↑ Pushed 5000 events (5 batches)"), "{text}");
    assert!(
        text.contains("/5000 events"),
        "a progress bar on the terminal: {text}"
    );
    assert_eq!(pending(&repo), 0);

    // Without a terminal: same work, no bar.
    append_n(&repo.root, 1200, |_| "local");
    let out = repo.sk(&["sync", "now"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("↑ Pushed 1200 events (2 batches)"), "{text}");
    assert!(
        !text.contains("/1200 events"),
        "no bar without a terminal: {text}"
    );
    assert_eq!(server_ids(&server, "alice").len(), 6200);
}
