//! The in-memory filesystem and its durability model; no mount needed to exercise it.
//!
//! `nodes` is the current namespace (what processes see) and `durable` the namespace as of the
//! last journal commit; every fsync or fsyncdir commits, making `durable` a copy of `nodes`.
//! File contents live in [`FileData`]: the bytes as of the file's last fsync plus the writes and
//! size changes since, so an fsync replays only what changed. Size changes (truncate, fallocate)
//! are journaled metadata: once committed they survive a cut even without a file fsync.

use std::collections::{btree_map::Entry, BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

use fuser::{FileAttr, FileType, INodeNo};

pub type Ino = u64;
/// Errors are errno values.
pub type Res<T> = Result<T, i32>;
/// A directory entry: inode, type and name.
pub type DirEntry = (Ino, FileType, OsString);

pub const ROOT: Ino = 1;
const MAX_FILE_SIZE: u64 = 1 << 34;
const DIR: FileType = FileType::Directory;
const FILE: FileType = FileType::RegularFile;

/// What a power cut threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files and directories whose creation was never committed.
    pub lost_inodes: u64,
    /// Surviving files whose contents were rolled back to their last fsync.
    pub reverted_files: u64,
    /// Bytes written but never fsynced.
    pub discarded_bytes: u64,
    /// Namespace and metadata changes made since the last journal commit.
    pub discarded_namespace_ops: u64,
}

/// Metadata of an inode; `attr.size` and a directory's `attr.nlink` are computed on demand.
#[derive(Clone, Debug)]
struct Node {
    attr: FileAttr,
    /// Parent of a directory (unused for files).
    parent: Ino,
    entries: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Op {
    Write(u64, Vec<u8>),
    /// A size change; `true` once a journal commit made it durable.
    SetLen(u64, bool),
}

/// `current` is what reads see, `durable` what the last fsync stored; replaying `pending` on
/// `durable` yields `current`.
#[derive(Debug, Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Op>,
    pending_bytes: u64,
}

fn apply(buf: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(off, data) => {
            let (off, end) = (*off as usize, *off as usize + data.len());
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[off..end].copy_from_slice(data);
        }
        Op::SetLen(len, _) => buf.resize(*len as usize, 0),
    }
}

impl FileData {
    fn push(&mut self, op: Op) {
        apply(&mut self.current, &op);
        match (self.pending.last_mut(), op) {
            (Some(Op::Write(o, d)), Op::Write(off, data)) if *o + d.len() as u64 == off => {
                d.extend_from_slice(&data)
            }
            (_, op) => self.pending.push(op),
        }
    }

    fn sync(&mut self) {
        for op in self.pending.drain(..) {
            apply(&mut self.durable, &op);
        }
        self.pending_bytes = 0;
    }

    /// After a cut: the last fsynced bytes with the committed size changes applied.
    fn recover(&mut self) {
        for op in self.pending.drain(..) {
            if let Op::SetLen(_, true) = op {
                apply(&mut self.durable, &op);
            }
        }
        self.current = self.durable.clone();
        self.pending_bytes = 0;
    }
}

#[derive(Debug)]
pub struct State {
    nodes: HashMap<Ino, Node>,
    durable: HashMap<Ino, Node>,
    files: HashMap<Ino, FileData>,
    open: HashMap<Ino, u32>,
    next_ino: Ino,
    ns_ops: u64,
}

impl State {
    /// An empty filesystem whose root directory has the given owner and permissions.
    pub fn new(uid: u32, gid: u32, perm: u16) -> Self {
        let nodes = HashMap::from([(ROOT, Node::new(ROOT, DIR, perm, uid, gid, ROOT))]);
        let (durable, files, open) = (nodes.clone(), HashMap::new(), HashMap::new());
        State {
            nodes,
            durable,
            files,
            open,
            next_ino: 2,
            ns_ops: 0,
        }
    }

    fn node(&mut self, ino: Ino) -> Res<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&mut self, ino: Ino) -> Res<&mut BTreeMap<OsString, Ino>> {
        let node = self.node(ino)?;
        match node.attr.kind {
            DIR => Ok(&mut node.entries),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn file(&mut self, ino: Ino) -> Res<&mut FileData> {
        match self.node(ino)?.attr.kind {
            DIR => Err(libc::EISDIR),
            _ => self.files.get_mut(&ino).ok_or(libc::EIO),
        }
    }

    fn child(&mut self, parent: Ino, name: &OsStr) -> Res<Ino> {
        self.dir(parent)?.get(name).copied().ok_or(libc::ENOENT)
    }

    fn kind(&self, ino: Ino) -> Option<FileType> {
        self.nodes.get(&ino).map(|n| n.attr.kind)
    }

    /// Updates `ino`'s change (and modification) time.
    fn touch(&mut self, ino: Ino, modified: bool) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.attr.ctime = SystemTime::now();
            if modified {
                node.attr.mtime = node.attr.ctime;
            }
        }
    }

    pub fn attr(&self, ino: Ino) -> Res<FileAttr> {
        let node = self.nodes.get(&ino).ok_or(libc::ENOENT)?;
        let mut attr = node.attr;
        if attr.kind == DIR {
            let subdirs = node
                .entries
                .values()
                .filter(|i| self.kind(**i) == Some(DIR));
            (attr.size, attr.nlink) = (4096, 2 + subdirs.count() as u32);
        } else {
            attr.size = self.files.get(&ino).map_or(0, |f| f.current.len() as u64);
        }
        attr.blocks = attr.size.div_ceil(512);
        Ok(attr)
    }

    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> Res<FileAttr> {
        let ino = self.child(parent, name)?;
        self.attr(ino)
    }

    /// Adds `name` → `ino` in `parent`, which must not have that name yet.
    fn add_entry(&mut self, parent: Ino, name: &OsStr, ino: Ino) -> Res<()> {
        if name.len() > 255 {
            return Err(libc::ENAMETOOLONG);
        }
        match self.dir(parent)?.entry(name.to_owned()) {
            Entry::Occupied(_) => return Err(libc::EEXIST),
            Entry::Vacant(entry) => entry.insert(ino),
        };
        self.touch(parent, true);
        self.ns_ops += 1;
        Ok(())
    }

    /// Creates a file or directory (mknod, create, mkdir).
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: FileType,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Res<FileAttr> {
        let ino = self.next_ino;
        self.add_entry(parent, name, ino)?;
        self.next_ino += 1;
        self.nodes
            .insert(ino, Node::new(ino, kind, perm, uid, gid, parent));
        if kind == FILE {
            self.files.insert(ino, FileData::default());
        }
        self.attr(ino)
    }

    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Res<FileAttr> {
        match self.node(ino)?.attr {
            FileAttr { kind: DIR, .. } => return Err(libc::EPERM),
            FileAttr { nlink: 0, .. } => return Err(libc::ENOENT),
            _ => self.add_entry(parent, name, ino)?,
        }
        self.node(ino)?.attr.nlink += 1;
        self.touch(ino, false);
        self.attr(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Res<()> {
        let ino = self.child(parent, name)?;
        if self.kind(ino) == Some(DIR) {
            return Err(libc::EISDIR);
        }
        self.dir(parent)?.remove(name);
        self.touch(parent, true);
        self.ns_ops += 1;
        self.drop_link(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Res<()> {
        let ino = self.child(parent, name)?;
        if !self.dir(ino)?.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.dir(parent)?.remove(name);
        self.nodes.remove(&ino);
        self.touch(parent, true);
        self.ns_ops += 1;
        Ok(())
    }

    /// Removes one name of a file, and the file itself once it has no name and is not open.
    fn drop_link(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.attr.nlink = node.attr.nlink.saturating_sub(1);
            node.attr.ctime = SystemTime::now();
        }
        self.collect(ino);
    }

    fn collect(&mut self, ino: Ino) {
        let unused = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.attr.kind == FILE && n.attr.nlink == 0);
        if unused && !self.open.contains_key(&ino) {
            self.nodes.remove(&ino);
            if !self.durable.contains_key(&ino) {
                self.files.remove(&ino);
            }
        }
    }

    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        to: Ino,
        to_name: &OsStr,
        noreplace: bool,
    ) -> Res<()> {
        let src = self.child(parent, name)?;
        let target = self.dir(to)?.get(to_name).copied();
        let kind = self.kind(src);
        if let Some(dst) = target {
            match (kind, self.kind(dst)) {
                _ if noreplace => return Err(libc::EEXIST),
                _ if dst == src => return Ok(()),
                (Some(DIR), Some(FILE)) => return Err(libc::ENOTDIR),
                (Some(FILE), Some(DIR)) => return Err(libc::EISDIR),
                (_, Some(DIR)) if !self.dir(dst)?.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
        }
        let mut at = to;
        while kind == Some(DIR) && at != ROOT {
            if at == src {
                return Err(libc::EINVAL);
            }
            at = self.node(at)?.parent;
        }
        self.dir(parent)?.remove(name);
        self.dir(to)?.insert(to_name.to_owned(), src);
        self.node(src)?.parent = to;
        self.touch(src, false);
        self.touch(parent, true);
        self.touch(to, true);
        self.ns_ops += 1;
        match target.map(|dst| (dst, self.kind(dst))) {
            Some((dst, Some(DIR))) => drop(self.nodes.remove(&dst)),
            Some((dst, _)) => self.drop_link(dst),
            None => {}
        }
        Ok(())
    }

    /// Changes the size of a file (a journaled metadata change).
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Res<()> {
        if size > MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        let file = self.file(ino)?;
        if size != file.current.len() as u64 {
            file.push(Op::SetLen(size, false));
            self.touch(ino, true);
            self.ns_ops += 1;
        }
        Ok(())
    }

    /// chmod, chown and utimes.
    pub fn set_meta(
        &mut self,
        ino: Ino,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        times: [Option<SystemTime>; 2],
    ) -> Res<FileAttr> {
        let attr = &mut self.node(ino)?.attr;
        attr.perm = mode.map_or(attr.perm, |m| (m & 0o7777) as u16);
        (attr.uid, attr.gid) = (uid.unwrap_or(attr.uid), gid.unwrap_or(attr.gid));
        (attr.atime, attr.mtime) = (
            times[0].unwrap_or(attr.atime),
            times[1].unwrap_or(attr.mtime),
        );
        self.touch(ino, false);
        self.ns_ops += 1;
        self.attr(ino)
    }

    pub fn read(&mut self, ino: Ino, off: u64, size: u32) -> Res<&[u8]> {
        let data = &self.file(ino)?.current;
        let start = off.min(data.len() as u64) as usize;
        Ok(&data[start..start.saturating_add(size as usize).min(data.len())])
    }

    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Res<u32> {
        let len = u32::try_from(data.len()).map_err(|_| libc::EINVAL)?;
        if off
            .checked_add(len.into())
            .is_none_or(|end| end > MAX_FILE_SIZE)
        {
            return Err(libc::EFBIG);
        }
        let file = self.file(ino)?;
        file.push(Op::Write(off, data.to_vec()));
        file.pending_bytes += u64::from(len);
        let attr = &mut self.node(ino)?.attr;
        (attr.mtime, attr.ctime) = (SystemTime::now(), SystemTime::now());
        Ok(len)
    }

    /// Mode 0 extends the file; `FALLOC_FL_KEEP_SIZE` has nothing to reserve in memory.
    pub fn fallocate(&mut self, ino: Ino, off: u64, len: u64, mode: i32) -> Res<()> {
        let size = self.file(ino)?.current.len() as u64;
        match (mode, off.checked_add(len)) {
            (_, None) => Err(libc::EFBIG),
            (0, Some(end)) if end > size => self.truncate(ino, end),
            (0 | libc::FALLOC_FL_KEEP_SIZE, _) => Ok(()),
            _ => Err(libc::EOPNOTSUPP),
        }
    }

    pub fn open(&mut self, ino: Ino) -> Res<()> {
        self.node(ino)?;
        *self.open.entry(ino).or_insert(0) += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) {
        if let Some(count) = self.open.get_mut(&ino) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&ino);
                self.collect(ino);
            }
        }
    }

    /// The entries of a directory, including `.` and `..`.
    pub fn list(&mut self, ino: Ino) -> Res<Vec<DirEntry>> {
        let parent = self.node(ino)?.parent;
        let mut out = vec![(ino, DIR, ".".into()), (parent, DIR, "..".into())];
        for (name, child) in self.dir(ino)?.clone() {
            out.push((child, self.kind(child).unwrap_or(FILE), name));
        }
        Ok(out)
    }

    /// fsync or fsyncdir of `ino`: commits the journal and makes the file's contents durable.
    pub fn fsync(&mut self, ino: Ino) -> Res<()> {
        self.node(ino)?;
        self.commit();
        if let Some(file) = self.files.get_mut(&ino) {
            file.sync();
        }
        Ok(())
    }

    /// Journal commit: the durable namespace and metadata become the current ones.
    pub fn commit(&mut self) {
        if self.ns_ops == 0 {
            return;
        }
        let live = self
            .nodes
            .iter()
            .filter(|(_, n)| n.attr.kind == DIR || n.attr.nlink > 0);
        self.durable = live.map(|(i, n)| (*i, n.clone())).collect();
        let nodes = &self.nodes;
        self.files.retain(|ino, _| nodes.contains_key(ino));
        for op in self.files.values_mut().flat_map(|f| f.pending.iter_mut()) {
            if let Op::SetLen(_, committed) = op {
                *committed = true;
            }
        }
        self.ns_ops = 0;
    }

    /// Bytes written but not yet fsynced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files.values().map(|f| f.pending_bytes).sum()
    }

    /// Simulated power loss: everything not durable is discarded.
    pub fn power_cut(&mut self) -> CutReport {
        let durable = &self.durable;
        let reverted = self
            .files
            .iter()
            .filter(|(i, f)| durable.contains_key(i) && !f.pending.is_empty());
        let report = CutReport {
            lost_inodes: self
                .nodes
                .keys()
                .filter(|i| !durable.contains_key(i))
                .count() as u64,
            reverted_files: reverted.count() as u64,
            discarded_bytes: self.unsynced_bytes(),
            discarded_namespace_ops: self.ns_ops,
        };
        self.nodes = self.durable.clone();
        self.files.retain(|ino, _| durable.contains_key(ino));
        self.files.values_mut().for_each(FileData::recover);
        self.open.clear();
        self.ns_ops = 0;
        report
    }
}

impl Node {
    fn new(ino: Ino, kind: FileType, perm: u16, uid: u32, gid: u32, parent: Ino) -> Self {
        let now = SystemTime::now();
        let attr = FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm,
            nlink: 1,
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        let entries = BTreeMap::new();
        Node {
            attr,
            parent,
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_file(st: &mut State, dir: Ino, name: &str, data: &[u8]) -> Ino {
        let ino = st
            .create(dir, name.as_ref(), FILE, 0o644, 0, 0)
            .expect("create")
            .ino
            .0;
        st.write(ino, 0, data).expect("write");
        ino
    }

    fn content(st: &mut State, dir: Ino, name: &str) -> Option<Vec<u8>> {
        let ino = st.lookup(dir, name.as_ref()).ok()?.ino.0;
        Some(st.read(ino, 0, u32::MAX).ok()?.to_vec())
    }

    fn rename(st: &mut State, from: &str, to: &str) -> Res<()> {
        st.rename(ROOT, from.as_ref(), ROOT, to.as_ref(), false)
    }

    #[test]
    fn fsync_commits_the_namespace_but_only_its_own_data() {
        let mut st = State::new(0, 0, 0o755);
        let a = new_file(&mut st, ROOT, "a", b"aaa");
        new_file(&mut st, ROOT, "b", b"bbb");
        st.fsync(a).unwrap();
        new_file(&mut st, ROOT, "c", b"ccc");
        assert_eq!(st.unsynced_bytes(), 6);
        let report = st.power_cut();
        let (lost, reverted) = (report.lost_inodes, report.reverted_files);
        assert_eq!((lost, reverted, report.discarded_bytes), (1, 1, 6));
        assert_eq!(content(&mut st, ROOT, "a").unwrap(), b"aaa");
        assert_eq!(
            content(&mut st, ROOT, "b").unwrap(),
            b"",
            "b was never fsynced"
        );
        assert!(
            content(&mut st, ROOT, "c").is_none(),
            "c was never committed"
        );
        new_file(&mut st, ROOT, "d", b"ddd");
        st.power_cut();
        assert!(content(&mut st, ROOT, "d").is_none());
    }

    #[test]
    fn rename_needs_a_later_commit_and_replaces_targets() {
        let mut st = State::new(0, 0, 0o755);
        let a = new_file(&mut st, ROOT, "a", b"new");
        let b = new_file(&mut st, ROOT, "b", b"old");
        st.fsync(a).unwrap();
        st.fsync(b).unwrap();
        rename(&mut st, "a", "b").unwrap();
        st.power_cut();
        assert_eq!(content(&mut st, ROOT, "a").unwrap(), b"new");
        assert_eq!(content(&mut st, ROOT, "b").unwrap(), b"old");
        assert_eq!(
            st.rename(ROOT, "a".as_ref(), ROOT, "b".as_ref(), true),
            Err(libc::EEXIST)
        );
        rename(&mut st, "a", "b").unwrap();
        st.fsync(ROOT).unwrap();
        st.power_cut();
        assert!(content(&mut st, ROOT, "a").is_none());
        assert_eq!(content(&mut st, ROOT, "b").unwrap(), b"new");
        let d = st
            .create(ROOT, "d".as_ref(), DIR, 0o755, 0, 0)
            .unwrap()
            .ino
            .0;
        st.create(d, "e".as_ref(), DIR, 0o755, 0, 0).unwrap();
        assert_eq!(
            st.rename(ROOT, "d".as_ref(), d, "x".as_ref(), false),
            Err(libc::EINVAL)
        );
        assert_eq!(rename(&mut st, "b", "d"), Err(libc::EISDIR));
        assert_eq!(st.rmdir(ROOT, "d".as_ref()), Err(libc::ENOTEMPTY));
    }

    #[test]
    fn appends_sync_incrementally() {
        let mut st = State::new(0, 0, 0o755);
        let log = new_file(&mut st, ROOT, "log", b"one,");
        st.write(log, 4, b"two,").unwrap();
        assert_eq!(
            st.files[&log].pending.len(),
            1,
            "contiguous appends coalesce"
        );
        st.fsync(log).unwrap();
        st.write(log, 8, b"three,").unwrap();
        assert_eq!(st.unsynced_bytes(), 6);
        st.fsync(log).unwrap();
        assert_eq!(st.files[&log].durable, b"one,two,three,");
        st.write(log, 14, b"four").unwrap();
        assert_eq!(st.power_cut().discarded_bytes, 4);
        assert_eq!(content(&mut st, ROOT, "log").unwrap(), b"one,two,three,");
    }

    #[test]
    fn hard_links_and_open_unlinked_files() {
        let mut st = State::new(0, 0, 0o755);
        let sst = new_file(&mut st, ROOT, "1.sst", b"table");
        st.fsync(sst).unwrap();
        let ckpt = st
            .create(ROOT, "ckpt".as_ref(), DIR, 0o755, 0, 0)
            .unwrap()
            .ino
            .0;
        assert_eq!(st.link(sst, ckpt, "1.sst".as_ref()).unwrap().nlink, 2);
        st.open(sst).unwrap();
        st.unlink(ROOT, "1.sst".as_ref()).unwrap();
        st.unlink(ckpt, "1.sst".as_ref()).unwrap();
        assert_eq!(
            st.read(sst, 0, 10).unwrap(),
            b"table",
            "open file stays readable"
        );
        st.release(sst);
        assert!(st.attr(sst).is_err());
        st.power_cut();
        assert_eq!(content(&mut st, ROOT, "1.sst").unwrap(), b"table");
        assert!(st.attr(ckpt).is_err(), "mkdir was never committed");
        let ckpt = st
            .create(ROOT, "ckpt".as_ref(), DIR, 0o755, 0, 0)
            .unwrap()
            .ino
            .0;
        st.link(sst, ckpt, "1.sst".as_ref()).unwrap();
        st.unlink(ROOT, "1.sst".as_ref()).unwrap();
        st.fsync(ckpt).unwrap();
        st.power_cut();
        assert!(content(&mut st, ROOT, "1.sst").is_none());
        assert_eq!(content(&mut st, ckpt, "1.sst").unwrap(), b"table");
        assert_eq!(st.lookup(ckpt, "1.sst".as_ref()).unwrap().nlink, 1);
    }

    #[test]
    fn committed_size_changes_survive_without_file_fsync() {
        let mut st = State::new(0, 0, 0o755);
        let a = new_file(&mut st, ROOT, "a", b"0123456789");
        st.fsync(a).unwrap();
        st.write(a, 0, b"XX").unwrap();
        st.truncate(a, 4).unwrap();
        st.fsync(ROOT).unwrap();
        st.power_cut();
        assert_eq!(content(&mut st, ROOT, "a").unwrap(), b"0123");
        st.truncate(a, 2).unwrap();
        st.fallocate(a, 0, 6, 0).unwrap();
        assert_eq!(st.attr(a).unwrap().size, 6);
        st.power_cut();
        assert_eq!(
            content(&mut st, ROOT, "a").unwrap(),
            b"0123",
            "uncommitted truncate undone"
        );
        st.truncate(a, 2).unwrap();
        st.write(a, 2, b"ab").unwrap();
        st.fsync(a).unwrap();
        st.power_cut();
        assert_eq!(content(&mut st, ROOT, "a").unwrap(), b"01ab");
    }
}
