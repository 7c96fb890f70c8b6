//! SIGINT, SIGTERM and SIGHUP while a plan is applied stop it at the next step boundary: the
//! request in flight completes (or times out), waits stop at once, the steps already applied are
//! undone, and the command says what it did. A second signal stops at once, still saying what
//! was applied and what to run. Outside an apply (reading, planning, asking) nothing has been
//! written, so a signal ends the process straight away.
//!
//! Exit codes follow the shell's convention, 128 + the signal's number: 130 (SIGINT), 143
//! (SIGTERM), 129 (SIGHUP).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::signal::unix::{SignalKind, signal};

use crate::output;

/// The number of the first signal received, 0 when none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Whether a plan is being applied, so that a signal must be turned into an orderly stop.
static APPLYING: AtomicBool = AtomicBool::new(false);
/// The steps applied so far in this process, for a report after a second signal.
static APPLIED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The command that finishes the work, shown after a second signal.
static RESUME: Mutex<Option<String>> = Mutex::new(None);
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Starts listening for the three signals (the first call inside the runtime; later calls do
/// nothing).
pub fn listen() {
    static LISTENING: AtomicBool = AtomicBool::new(false);
    if LISTENING.swap(true, Ordering::SeqCst) {
        return;
    }
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                received(kind.as_raw_value());
            }
        });
    }
}

fn received(number: i32) {
    let first = RECEIVED
        .compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if !APPLYING.load(Ordering::SeqCst) && APPLIED.lock().map(|a| a.is_empty()).unwrap_or(true) {
        output::error(&format!("{}: stopped before any write", name(number)));
        std::process::exit(128 + number);
    }
    if first {
        output::warning(&format!(
            "{}: stopping after the step in progress, then undoing what this run applied (signal again to stop at once)",
            name(number)
        ));
        WAKE.notify_waiters();
        return;
    }
    let applied = APPLIED.lock().map(|a| a.clone()).unwrap_or_default();
    let resume = RESUME.lock().ok().and_then(|r| r.clone());
    output::error(&format!(
        "{}: stopped at once; {} step(s) were applied and not undone{}",
        name(number),
        applied.len(),
        resume
            .map(|command| format!(": run `{command}` to finish, or unlink to remove them"))
            .unwrap_or_default()
    ));
    for step in applied {
        output::info(&format!("  applied: {step}"));
    }
    let first_number = RECEIVED.load(Ordering::SeqCst);
    std::process::exit(128 + first_number);
}

fn name(number: i32) -> &'static str {
    match number {
        1 => "SIGHUP",
        2 => "interrupted (SIGINT)",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Whether a signal asked the command to stop.
pub fn requested() -> bool {
    RECEIVED.load(Ordering::SeqCst) != 0
}

/// The signal that stopped the command, as a message ("interrupted (SIGINT)").
pub fn reason() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        number => Some(name(number)),
    }
}

/// The exit code for a command a signal stopped (128 + the signal's number).
pub fn exit_code() -> Option<u8> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        number => u8::try_from(128 + number).ok(),
    }
}

/// Resolves once a signal asked the command to stop (at once when one already did).
pub async fn stopped() {
    loop {
        let notified = WAKE.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Marks the start and the end of an apply: signals in between stop at a step boundary.
pub fn applying(active: bool, resume: Option<String>) {
    if active && let Ok(mut slot) = RESUME.lock() {
        *slot = resume;
    }
    APPLYING.store(active, Ordering::SeqCst);
}

/// Records a step as applied (what a second signal reports).
pub fn step_applied(summary: &str) {
    if let Ok(mut applied) = APPLIED.lock() {
        applied.push(summary.to_string());
    }
}

/// Records that the steps applied so far were undone.
pub fn all_undone() {
    if let Ok(mut applied) = APPLIED.lock() {
        applied.clear();
    }
}
