//! Command output on stdout that never panics when the reader goes away.
//!
//! `println!` panics when stdout is a pipe whose reader has closed it
//! (`spec-kitty events log --json | head -1`), because Rust ignores SIGPIPE and the write fails
//! with `BrokenPipe`. Every command prints through [`outln!`](crate::outln) and
//! [`out!`](crate::out) instead: the first failed write marks stdout closed and later output is
//! dropped, so the command still finishes what it was doing (a sync still records its answers,
//! a demo still stops the processes it started) and exits quietly. A closed pipe is not an
//! error; any other write failure (a full disk) is reported by `main` once the command is done.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Writes `args` (and a newline when `newline`) to stdout, unless it is already closed.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let written = if newline {
        writeln!(out, "{args}")
    } else {
        // Output without a newline is a prompt or a screen control: it must show now.
        write!(out, "{args}").and_then(|()| out.flush())
    };
    if let Err(e) = written {
        closed_by(&e);
    }
}

fn closed_by(e: &io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != io::ErrorKind::BrokenPipe
        && let Ok(mut failure) = FAILURE.lock()
    {
        failure.get_or_insert_with(|| e.to_string());
    }
}

/// True once a write to stdout has failed: long listings and `--watch` loops stop early.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Flushes stdout; returns why output was lost, if a write failed for another reason than the
/// reader closing the pipe.
pub fn finish() -> Option<String> {
    if !closed()
        && let Err(e) = io::stdout().lock().flush()
    {
        closed_by(&e);
    }
    FAILURE.lock().ok().and_then(|f| f.clone())
}

/// `println!` for command output: never panics on a closed stdout (see [`crate::cli::stdout`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::stdout::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*), true)
    };
}

/// `print!` for command output: never panics on a closed stdout, and flushes.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*), false)
    };
}
