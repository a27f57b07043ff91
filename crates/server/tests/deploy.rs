//! The deployment files parse and agree with the binary: the Dockerfile's stages and
//! health check, and docker-compose.yml's three members (through PyYAML in the test
//! environment scripts/setup.sh creates).

use std::path::PathBuf;
use std::process::Command;

fn repo_file(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_dockerfile_builds_a_non_root_image_that_is_healthy_when_ready() {
    let text = repo_file("Dockerfile");
    // Instructions, continuation lines joined.
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    const KNOWN: &[&str] = &[
        "FROM",
        "RUN",
        "WORKDIR",
        "COPY",
        "USER",
        "VOLUME",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
        "ENV",
        "ARG",
        "LABEL",
    ];
    for i in &instructions {
        let word = i.split_whitespace().next().unwrap_or_default();
        assert!(KNOWN.contains(&word), "unknown instruction in {i:?}");
    }
    let froms: Vec<_> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage");
    assert!(froms[0].ends_with(" AS builder"));
    assert!(instructions
        .iter()
        .any(|i| i.starts_with("COPY --from=builder ")));
    let user = instructions
        .iter()
        .rev()
        .find(|i| i.starts_with("USER "))
        .expect("the runtime stage names a user");
    assert!(!user.contains("root"), "{user}");
    assert!(instructions
        .iter()
        .any(|i| i.starts_with("HEALTHCHECK ") && i.contains("/readyz")));
    assert!(instructions
        .iter()
        .any(|i| i.starts_with("ENTRYPOINT [\"brisk\", \"serve\"]")));
}

#[test]
fn docker_compose_describes_three_members_that_bootstrap_together() {
    let venv = std::env::var_os("BRISK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/brisk-venv")
        });
    let script = r#"
import json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({name: s["command"] for name, s in d["services"].items()}))
"#;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docker-compose.yml");
    let o = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("the test environment's Python (scripts/setup.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let services: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(services.len(), 3);
    let flag = |cmd: &[String], name: &str| -> String {
        cmd.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("--{name} missing in {cmd:?}"))
    };
    let bootstraps: std::collections::BTreeSet<String> =
        services.values().map(|c| flag(c, "bootstrap")).collect();
    assert_eq!(
        bootstraps.len(),
        1,
        "every member gets the same bootstrap list"
    );
    let bootstrap = bootstraps.into_iter().next().unwrap();
    for (name, cmd) in &services {
        let id = flag(cmd, "id");
        let member = format!(
            "{id}={}/{}",
            flag(cmd, "advertise"),
            flag(cmd, "peer-advertise")
        );
        assert!(
            bootstrap.split(',').any(|m| m == member),
            "{name}: {member} is not in {bootstrap}"
        );
        for required in ["data-dir", "listen", "peer-listen", "http"] {
            flag(cmd, required);
        }
    }
}

/// `brisk serve` with settings it cannot use exits 2 (a usage error, as for a bad flag) and
/// says which setting, whether a flag or the config file gave it; nothing is created.
#[test]
fn serve_refuses_invalid_settings_as_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("brisk-deploy-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let config = dir.join("brisk.toml");
    std::fs::write(&config, "snapshot-every = \"often\"\n").expect("write the config");
    let data = dir.join("data");
    for (args, says) in [
        (vec!["serve", "--id", "1"], "--data-dir is required"),
        (
            vec!["serve", "--config", config.to_str().expect("utf-8 path")],
            "snapshot-every",
        ),
        (
            vec![
                "serve",
                "--id",
                "1",
                "--data-dir",
                data.to_str().expect("utf-8 path"),
                "--listen",
                "127.0.0.1:1",
                "--peer-listen",
                "127.0.0.1:2",
                "--http",
                "127.0.0.1:3",
                "--peer-insecure",
                "--max-value-bytes",
                "0",
            ],
            "max-value-bytes",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_brisk"))
            .args(&args)
            .env_remove("BRISK_CONFIG")
            .output()
            .expect("run brisk serve");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert!(!data.exists(), "a refused start created its data directory");
    let _ = std::fs::remove_dir_all(&dir);
}
