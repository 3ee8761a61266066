//! Flushes of one file shared by everyone who wrote to it.
//!
//! An `fdatasync` puts on disk every write to the file that finished before it began. Writers
//! that each need their own bytes on disk therefore number their writes as they finish, and a
//! writer whose number a flush that began later already covers returns without one of its
//! own: under load a handful of flushes serve many writers (a quarter fewer at 8 clients of
//! `sheaf bench store`, more with more; README). Two files use it: a proof segment, whose
//! appenders are submitters flushing their blobs ([`crate::blobs`]), and the SQLite WAL, whose
//! writes are the group committer's commits ([`crate::group_commit`]).
//!
//! A flush that fails ends the file's use: Linux reports a failed writeback to one `fdatasync`
//! and may let the next succeed with the bytes lost, so every later flush fails too (writes a
//! flush covered before stay reported on disk).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A file whose writers share their flushes.
pub(crate) struct SharedFlush {
    file: File,
    /// Writes finished so far; each takes the next number once its bytes are in the file.
    written: AtomicU64,
    /// Writes known flushed: all those numbered up to this. Held by the one flushing.
    flushed: Mutex<u64>,
    /// Whether a flush of the file failed.
    failed: AtomicBool,
}

impl SharedFlush {
    pub(crate) fn new(file: File) -> Self {
        SharedFlush {
            file,
            written: AtomicU64::new(0),
            flushed: Mutex::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// Writes `bytes` at `offset` and returns once they are on disk, by a flush of its own or
    /// one that began after they were written.
    pub(crate) fn write_durably(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mine = self.write(bytes, offset)?;
        self.flush_through(mine).map(|_| ())
    }

    /// Writes `bytes` at `offset`; returns the write's number.
    pub(crate) fn write(&self, bytes: &[u8], offset: u64) -> io::Result<u64> {
        self.file.write_all_at(bytes, offset)?;
        Ok(self.wrote())
    }

    /// Numbers a write to the file that just finished, by whatever means (SQLite's own
    /// `write`s of a commit's WAL frames): a flush that begins after this call covers it.
    pub(crate) fn wrote(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once write `mine` is on disk; whether it flushed the file itself (`false`: a
    /// flush that began after that write covered it).
    pub(crate) fn flush_through(&self, mine: u64) -> io::Result<bool> {
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        if *flushed >= mine {
            return Ok(false);
        }
        if self.failed() {
            return Err(io::Error::other(
                "an earlier flush of this file failed, so its writes may be lost",
            ));
        }
        // Every write numbered up to `through` finished before this flush begins.
        let through = self.written.load(Ordering::Acquire);
        if let Err(e) = self.file.sync_data() {
            self.failed.store(true, Ordering::Release);
            return Err(e);
        }
        *flushed = through;
        Ok(true)
    }

    /// Whether a flush of the file failed: nothing more goes into it.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Writes numbered and not yet known flushed.
    #[cfg(test)]
    pub(crate) fn unflushed(&self) -> u64 {
        let flushed = *self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        self.written.load(Ordering::Acquire) - flushed
    }

    /// Marks the file as failed, as a failed flush would.
    #[cfg(test)]
    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush covers every write finished before it began: the later write's flush makes
    /// the earlier one's unnecessary, and a write after it needs a flush of its own.
    #[test]
    fn one_flush_covers_the_writes_finished_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let file = SharedFlush::new(File::create(&path).unwrap());
        let first = file.write(&[1; 10], 0).unwrap();
        let second = file.write(&[2; 10], 10).unwrap();
        assert!(file.flush_through(second).unwrap(), "nothing flushed yet");
        assert!(
            !file.flush_through(first).unwrap(),
            "covered by the flush for the second"
        );
        assert!(!file.flush_through(second).unwrap(), "flushed already");
        let third = file.write(&[3; 10], 20).unwrap();
        assert!(
            file.flush_through(third).unwrap(),
            "written after the last flush"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [[1; 10], [2; 10], [3; 10]].concat()
        );
    }

    /// A failed flush fails every later flush of the file, covered or not (the kernel reports
    /// a lost writeback once). `/dev/null` takes writes and refuses `fdatasync`.
    #[test]
    fn a_failed_flush_fails_every_later_one() {
        let file = SharedFlush::new(File::options().write(true).open("/dev/null").unwrap());
        let first = file.write(&[1; 10], 0).unwrap();
        let second = file.write(&[2; 10], 10).unwrap();
        assert!(file.flush_through(second).is_err());
        assert!(file.failed());
        assert!(
            file.flush_through(first).is_err(),
            "a write the failed flush was to cover is not reported on disk"
        );

        // A write flushed before the failure stays on disk; one after it does not.
        let dir = tempfile::tempdir().unwrap();
        let file = SharedFlush::new(File::create(dir.path().join("segment")).unwrap());
        let flushed = file.write(&[1; 10], 0).unwrap();
        assert!(file.flush_through(flushed).unwrap());
        let unflushed = file.wrote();
        file.fail();
        assert!(!file.flush_through(flushed).unwrap());
        assert!(file.flush_through(unflushed).is_err());
    }
}
