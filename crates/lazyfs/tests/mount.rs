//! Power cuts through a real FUSE mount. Needs root and /dev/fuse.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use brisk_lazyfs::{LazyFs, Mounted};

fn mount() -> Option<(tempfile::TempDir, Mounted)> {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipping: /dev/fuse is missing");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = LazyFs::mount(dir.path()).expect("mount");
    Some((dir, mounted))
}

fn sync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

#[test]
fn unsynced_file_is_gone_after_cut() {
    let Some((_dir, mut m)) = mount() else { return };
    let file = m.path().join("unsynced");
    fs::write(&file, b"lost").unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"lost");
    assert_eq!(m.unsynced_bytes(), 4);
    let report = m.power_cut().unwrap();
    assert_eq!(report.lost_inodes, 1);
    assert_eq!(report.discarded_bytes, 4);
    assert!(!file.exists());
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), 0);
}

#[test]
fn synced_file_survives_cut() {
    let Some((_dir, mut m)) = mount() else { return };
    let path = m.path().join("synced");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"durable contents").unwrap();
    f.sync_all().unwrap();
    drop(f);
    sync_dir(m.path());
    fs::write(m.path().join("not-synced"), b"x").unwrap();
    m.power_cut().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"durable contents");
    assert!(!m.path().join("not-synced").exists());
    assert_eq!(m.unsynced_bytes(), 0);
    m.unmount().unwrap();
}

#[test]
fn rename_is_durable_only_after_dir_fsync() {
    let Some((_dir, mut m)) = mount() else { return };
    let (a, b) = (m.path().join("a"), m.path().join("b"));
    let mut f = File::create(&a).unwrap();
    f.write_all(b"payload").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(&a, &b).unwrap();
    m.power_cut().unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"payload");
    assert!(!b.exists(), "uncommitted rename must be undone");

    fs::write(&b, b"old target").unwrap();
    fs::rename(&a, &b).unwrap();
    sync_dir(m.path());
    m.power_cut().unwrap();
    assert!(!a.exists());
    assert_eq!(fs::read(&b).unwrap(), b"payload");
}

#[test]
fn appends_survive_up_to_last_sync_data() {
    let Some((_dir, mut m)) = mount() else { return };
    let path = m.path().join("wal.log");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    log.write_all(b"record-1;").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"record-2;").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"record-3;").unwrap();
    drop(log);
    assert_eq!(fs::read(&path).unwrap(), b"record-1;record-2;record-3;");
    let report = m.power_cut().unwrap();
    assert_eq!(report.discarded_bytes, 9);
    assert_eq!(report.reverted_files, 1);
    assert_eq!(fs::read(&path).unwrap(), b"record-1;record-2;");
}

#[test]
fn hard_links_and_directories_through_the_mount() {
    let Some((_dir, mut m)) = mount() else { return };
    let (db, ckpt) = (m.path().join("db"), m.path().join("ckpt"));
    fs::create_dir(&db).unwrap();
    fs::create_dir(&ckpt).unwrap();
    let sst = db.join("000007.sst");
    let mut f = File::create(&sst).unwrap();
    f.write_all(b"sorted table").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::hard_link(&sst, ckpt.join("000007.sst")).unwrap();
    fs::remove_file(&sst).unwrap();
    sync_dir(&ckpt);
    m.power_cut().unwrap();
    assert!(!sst.exists());
    assert_eq!(fs::read(ckpt.join("000007.sst")).unwrap(), b"sorted table");
    let names: Vec<_> = fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);
}
