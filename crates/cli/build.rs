//! Records the git commit the binary is built from (`LONGCTX_GIT_COMMIT`), so bench runs name
//! the code that produced them rather than whatever the source tree holds when they run.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let value = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=LONGCTX_GIT_COMMIT={value}");
    // Rebuild when HEAD moves or the index changes (a commit, a checkout, staged edits).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
    }
    // And when any workspace source changes, so the `-dirty` mark stays true.
    println!("cargo:rerun-if-changed=../../crates");
    println!("cargo:rerun-if-changed=build.rs");
}
