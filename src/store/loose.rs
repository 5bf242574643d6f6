//! Reading an event commit straight from its loose object file: one `read(2)` and an inflate.
//!
//! Why not gix for this one read: gix maps every loose object into memory and unmaps it after
//! (mmap + munmap per object). In a process that also runs the HTTP client's threads, each
//! munmap is a cross-core TLB shootdown, and `sync now` of 100,000 events spent 3.3 s of its
//! 10 s in the kernel reading 200,000 objects of ~650 bytes (docs/benchmarks.md, Sync client).
//!
//! This is a fast path, not a second object database: it answers only for a loose object of
//! type `commit` under the repository's own `objects/` whose headers it knows (`tree`,
//! `parent`, `author`, `committer`, `encoding`, and the multi-line `gpgsig` and `mergetag`).
//! Anything else — packed after `git gc`, in an alternate, a damaged file — is `None`, and the
//! caller asks gix, which handles every case and reports errors in its words.

use std::io::Read;
use std::path::Path;

use gix::ObjectId;

/// A commit's message and parents, as gix's `message_raw_sloppy` and `parent_ids` give them.
#[derive(Debug, PartialEq, Eq)]
pub struct LooseCommit {
    pub message: String,
    pub parents: Vec<ObjectId>,
}

/// The commit `id` from `objects_dir`'s loose objects, or `None` when this fast path does not
/// apply (see the module docs).
pub fn read_commit(objects_dir: &Path, id: &ObjectId) -> Option<LooseCommit> {
    let hex = id.to_hex().to_string();
    let path = objects_dir.join(&hex[..2]).join(&hex[2..]);
    let compressed = std::fs::read(path).ok()?;
    let mut raw = Vec::with_capacity(compressed.len() * 3);
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_end(&mut raw)
        .ok()?;
    parse_commit(&raw)
}

/// Parses a whole loose object (`commit <size>\0<body>`).
fn parse_commit(raw: &[u8]) -> Option<LooseCommit> {
    let nul = raw.iter().position(|&b| b == 0)?;
    let header = std::str::from_utf8(&raw[..nul]).ok()?;
    let size: usize = header.strip_prefix("commit ")?.parse().ok()?;
    let body = &raw[nul + 1..];
    if body.len() != size {
        return None;
    }
    let split = body.windows(2).position(|w| w == b"\n\n")?;
    let (headers, message) = (&body[..split], &body[split + 2..]);
    let mut parents = Vec::new();
    let mut seen_tree = false;
    for line in headers.split(|&b| b == b'\n') {
        if line.first() == Some(&b' ') {
            continue; // continuation of a multi-line header (gpgsig, mergetag)
        }
        let (key, value) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => return None,
        };
        match key {
            b"tree" => seen_tree = ObjectId::from_hex(value).is_ok(),
            b"parent" => parents.push(ObjectId::from_hex(value).ok()?),
            b"author" | b"committer" | b"encoding" | b"gpgsig" | b"mergetag" => {}
            _ => return None,
        }
    }
    if !seen_tree {
        return None;
    }
    Some(LooseCommit {
        message: String::from_utf8(message.to_vec()).ok()?,
        parents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const PARENT: &str = "1111111111111111111111111111111111111111";

    fn object(body: &str) -> Vec<u8> {
        format!("commit {}\0{body}", body.len()).into_bytes()
    }

    #[test]
    fn reads_message_and_parents() {
        let body = format!(
            "tree {TREE}\nparent {PARENT}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\n\
             {{\"event_id\":1}}\n\nEvent-Id: X\n"
        );
        let c = parse_commit(&object(&body)).unwrap();
        assert_eq!(c.message, "{\"event_id\":1}\n\nEvent-Id: X\n");
        assert_eq!(
            c.parents,
            vec![ObjectId::from_hex(PARENT.as_bytes()).unwrap()]
        );
    }

    #[test]
    fn a_root_commit_and_signed_headers_are_understood() {
        let body = format!(
            "tree {TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\ngpgsig -----BEGIN\n \
             line\n -----END\n\nmsg"
        );
        let c = parse_commit(&object(&body)).unwrap();
        assert!(c.parents.is_empty());
        assert_eq!(c.message, "msg");
    }

    #[test]
    fn anything_unexpected_is_left_to_gix() {
        let good = format!("tree {TREE}\nauthor A <a@x> 1 +0000\n\nmsg");
        assert!(parse_commit(&object(&good)).is_some());
        // wrong type, wrong size, unknown header, no tree, bad parent, no message separator
        assert!(parse_commit(b"blob 3\0abc").is_none());
        assert!(parse_commit(format!("commit 99\0{good}").as_bytes()).is_none());
        assert!(parse_commit(&object(&format!("tree {TREE}\nweird x\n\nmsg"))).is_none());
        assert!(parse_commit(&object("author A <a@x> 1 +0000\n\nmsg")).is_none());
        assert!(parse_commit(&object(&format!("tree {TREE}\nparent zz\n\nmsg"))).is_none());
        assert!(parse_commit(&object(&format!("tree {TREE}\nauthor A"))).is_none());
        assert!(parse_commit(b"garbage without a nul").is_none());
        let missing = ObjectId::from_hex(PARENT.as_bytes()).unwrap();
        assert!(read_commit(Path::new("/nonexistent/objects"), &missing).is_none());
    }
}
