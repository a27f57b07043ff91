//! Records the commit the binary is built from, for `brisk_build_info` and `--version`-style
//! reports. `BRISK_COMMIT` in the environment wins (image builds have no `.git`); otherwise
//! `git rev-parse`, else "unknown". Hand-written rather than `vergen`: one git call is all we
//! need.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BRISK_COMMIT");
    let git_dir = git_dir();
    // Rebuild the stamp when HEAD moves: HEAD itself (checkouts) and the branch it names
    // (commits).
    let head = git_dir.join("HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(text) = std::fs::read_to_string(&head) {
            if let Some(branch) = text.trim().strip_prefix("ref: ") {
                let branch = git_dir.join(branch);
                if branch.is_file() {
                    println!("cargo:rerun-if-changed={}", branch.display());
                }
            }
        }
    }
    // A label value on /metrics: kept to the characters a commit id or tag uses.
    let commit = std::env::var("BRISK_COMMIT")
        .ok()
        .or_else(git_commit)
        .map(|c| {
            c.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .take(64)
                .collect::<String>()
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BRISK_COMMIT={commit}");
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!commit.is_empty()).then_some(commit)
}

/// The repository's git directory: `.git`, or where a linked worktree's `.git` file points.
fn git_dir() -> std::path::PathBuf {
    let dot_git = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    match std::fs::read_to_string(&dot_git) {
        Ok(text) => match text.trim().strip_prefix("gitdir: ") {
            Some(dir) => dot_git
                .parent()
                .map_or_else(|| dir.into(), |root| root.join(dir)),
            None => dot_git,
        },
        Err(_) => dot_git,
    }
}
