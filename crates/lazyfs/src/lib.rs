//! A FUSE filesystem that forgets everything not made durable by fsync, to catch missing
//! fsyncs in the database (in the spirit of LazyFS and CharybdeFS).
//!
//! The filesystem lives in memory and follows an ext4-like journal model:
//!
//! - Namespace and metadata changes (create, mkdir, unlink, rmdir, rename, link, truncate,
//!   chmod) become durable all together, in order, at the next fsync or fsyncdir of *any* file
//!   or directory: that call commits the journal.
//! - File contents become durable only when that file itself is fsynced (fsync or fdatasync),
//!   at a cost proportional to the bytes written since its previous fsync.
//! - A file whose name was committed but whose contents were never fsynced comes back after a
//!   power cut with its last fsynced contents (empty if none), resized by committed truncates.
//!
//! [`Mounted::power_cut`] unmounts (dropping the kernel's caches), rolls the state back to the
//! durable state and mounts again at the same path.

mod fuse;
mod state;

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

pub use state::CutReport;
use state::State;

#[derive(Debug, thiserror::Error)]
pub enum LazyFsError {
    #[error("mountpoint {path}: {source}")]
    Mountpoint { path: PathBuf, source: io::Error },
    #[error("mounting FUSE at {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("{0} is still mounted after unmounting")]
    StillMounted(PathBuf),
    #[error("the FUSE session for {0} did not stop; is a process still using it?")]
    SessionHung(PathBuf),
    #[error("the FUSE session for {path} failed: {source}")]
    Session { path: PathBuf, source: io::Error },
    #[error("the FUSE session thread for {0} panicked")]
    SessionPanicked(PathBuf),
}

/// The filesystem state, shared with the FUSE session so that it survives remounts.
#[derive(Clone, Debug)]
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    /// Mounts a new, empty filesystem on the existing directory `mountpoint`.
    pub fn mount(mountpoint: &Path) -> Result<Mounted, LazyFsError> {
        let err = |source| LazyFsError::Mountpoint {
            path: mountpoint.into(),
            source,
        };
        let path = mountpoint.canonicalize().map_err(err)?;
        let meta = std::fs::metadata(&path).map_err(err)?;
        if !meta.is_dir() {
            return Err(err(io::Error::from(io::ErrorKind::NotADirectory)));
        }
        let root_perm = (meta.permissions().mode() & 0o7777) as u16;
        let state = State::new(meta.uid(), meta.gid(), root_perm);
        let fs = LazyFs {
            state: Arc::new(Mutex::new(state)),
        };
        let session = Some(fs.start(&path)?);
        Ok(Mounted { fs, path, session })
    }

    /// Bytes written but not yet fsynced.
    pub fn unsynced_bytes(&self) -> u64 {
        fuse::lock(&self.state).unsynced_bytes()
    }

    fn start(&self, path: &Path) -> Result<BackgroundSession, LazyFsError> {
        // With AutoUnmount, fusermount3 unmounts the filesystem if this process dies; it
        // requires allow_root. Without fusermount3, fall back to a plain mount.
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("brisk-lazyfs".into()),
            MountOption::DefaultPermissions,
            MountOption::AutoUnmount,
        ];
        config.acl = SessionACL::RootAndOwner;
        let adapter = || fuse::Adapter::new(self.state.clone());
        fuser::spawn_mount(adapter(), path, &config)
            .or_else(|_| {
                config.mount_options.pop();
                config.acl = SessionACL::Owner;
                fuser::spawn_mount(adapter(), path, &config)
            })
            .map_err(|source| LazyFsError::Mount {
                path: path.into(),
                source,
            })
    }
}

/// A mounted [`LazyFs`]; unmounted on drop (best effort).
#[derive(Debug)]
pub struct Mounted {
    fs: LazyFs,
    path: PathBuf,
    session: Option<BackgroundSession>,
}

impl Mounted {
    /// The canonical mountpoint.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The filesystem state.
    pub fn fs(&self) -> &LazyFs {
        &self.fs
    }

    /// Bytes written but not yet fsynced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.fs.unsynced_bytes()
    }

    /// Simulated power loss: unmounts (dropping the kernel's caches), resets the current state
    /// to the durable state and mounts again at the same path. Call only after every process
    /// using the mount was killed.
    pub fn power_cut(&mut self) -> Result<CutReport, LazyFsError> {
        self.stop()?;
        let report = fuse::lock(&self.fs.state).power_cut();
        self.session = Some(self.fs.start(&self.path)?);
        Ok(report)
    }

    /// Unmounts and waits for the FUSE session to end.
    pub fn unmount(mut self) -> Result<(), LazyFsError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), LazyFsError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let path = &self.path;
        // fusermount3's auto-unmount helper only unmounts a dead filesystem, so unmount
        // explicitly; a busy mount refuses a plain unmount and is detached lazily instead.
        for args in [&["-u", "-q"][..], &["-u", "-q", "-z"]] {
            if is_mounted(path) {
                let mut cmd = Command::new("fusermount3");
                cmd.args(args)
                    .arg("--")
                    .arg(path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let _ = cmd.status();
            }
        }
        // Dropping the rest of the session releases its mount handle (unmounting, if still
        // mounted) and the auto-unmount helper; the event loop thread then ends.
        let BackgroundSession { guard, .. } = session;
        if !wait_until(|| !is_mounted(path)) {
            return Err(LazyFsError::StillMounted(path.clone()));
        }
        if !wait_until(|| guard.is_finished()) {
            return Err(LazyFsError::SessionHung(path.clone()));
        }
        reap_fusermount_helpers();
        join(guard, path)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn join(guard: JoinHandle<io::Result<()>>, path: &Path) -> Result<(), LazyFsError> {
    match guard.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(LazyFsError::Session {
            path: path.into(),
            source,
        }),
        Err(_) => Err(LazyFsError::SessionPanicked(path.into())),
    }
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(10) {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Whether `path` is a mountpoint according to /proc/self/mountinfo (field 5, with space, tab,
/// newline and backslash escaped in octal).
fn is_mounted(path: &Path) -> bool {
    let escaped: String = (path.to_string_lossy().chars())
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .any(|line| line.split(' ').nth(4) == Some(escaped.as_str()))
}

/// fuser never waits for the fusermount3 helper it leaves running for AutoUnmount; reap the
/// ones that have exited so that remounting does not accumulate zombies.
fn reap_fusermount_helpers() {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        // Format: "pid (comm) state ppid ...".
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = tail.split_whitespace().take(2).collect();
        let pid = entry.file_name().to_string_lossy().parse::<libc::pid_t>();
        if let (true, ["Z", ppid], Ok(pid)) = (head.ends_with("(fusermount3"), &fields[..], pid) {
            if *ppid == me {
                // SAFETY: waits for one exited child of this process; no status is written.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    }
}
