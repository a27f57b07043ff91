//! Children a harness starts, and signals to them.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use nix::sys::signal::Signal as Sig;

/// Sends `sig` to `pid`; a process that is already gone is not an error here.
pub fn signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// Whether a process with this pid exists.
pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// Makes the child `cmd` starts receive `sig` when the thread that started it exits, so a
/// harness killed with SIGKILL (which runs no cleanup) leaves no node holding its ports and
/// data directories. Start children from a thread that lives as long as they should.
pub fn die_with_parent(cmd: &mut std::process::Command, sig: Signal) {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(sig).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl: then no signal will come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the parent exited while starting"));
            }
            Ok(())
        });
    }
}
