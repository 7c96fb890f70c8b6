//! `kubectl_complete-remote_cluster`: kubectl 1.26+ runs this to complete `kubectl remote-cluster …`.
//!
//! It receives the words typed after the plugin name (the last one is the word being completed)
//! and answers in Cobra's `__complete` protocol; see `remote_cluster::complete`.

use std::io::Write;

fn main() {
    let mut words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    // Also answer when called the way Cobra programs are: `… __complete <words>`.
    if words
        .first()
        .is_some_and(|w| w == "__complete" || w == "__completeNoDesc")
    {
        words.remove(0);
    }
    let answer = remote_cluster::complete::complete(&words).render();
    let mut stdout = std::io::stdout().lock();
    // Nothing useful can be done when the shell has gone away.
    let _ = stdout.write_all(answer.as_bytes());
    let _ = stdout.flush();
}
