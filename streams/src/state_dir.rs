//! An application's directory under `state.dir` (Kafka Streams' `StateDirectory`): the
//! persistent stores' files live in it, one instance at a time holds it (a `.lock` file), and it
//! keeps the instance's process id (`kafka-streams-process-metadata`) across restarts.
//!
//! A stable process id matters under `exactly_once_v2`: the transactional ids are
//! `<application.id>-<process id>-<thread>`, so a restarted instance's producers fence the
//! crashed one's and abort its open transactions at once, instead of waiting for their timeout.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Result, StreamsError};

/// The name Kafka Streams gives the file holding the process id.
const PROCESS_FILE: &str = "kafka-streams-process-metadata";

/// An application's state directory, locked for this instance until dropped.
#[derive(Debug)]
pub struct AppStateDir {
    path: PathBuf,
    /// Held open: the advisory lock lasts as long as the file stays open.
    _lock: File,
}

impl AppStateDir {
    /// Creates (if needed) and locks `<state_dir>/<application_id>`; refused while another
    /// instance, in this process or another, holds it.
    pub fn lock(state_dir: &Path, application_id: &str) -> Result<AppStateDir> {
        let path = state_dir.join(application_id);
        let io = |action: &str, err: std::io::Error| {
            StreamsError::StateStore(format!("cannot {action} {}: {err}", path.display()))
        };
        std::fs::create_dir_all(&path).map_err(|e| io("create the state directory", e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(".lock"))
            .map_err(|e| io("open the lock file in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StreamsError::StateStore(format!(
                    "unable to initialize state: the state directory {} is in use by another instance of {application_id} (two instances cannot share a state.dir)",
                    path.display()
                )))
            }
            Err(TryLockError::Error(err)) => return Err(io("lock", err)),
        }
        Ok(AppStateDir { path, _lock: lock })
    }

    /// The process id kept in the directory, or a new one written there (a missing or
    /// unreadable file gets a new id, as a first start does).
    pub fn process_id(&self) -> Result<String> {
        let file = self.path.join(PROCESS_FILE);
        if let Ok(text) = std::fs::read_to_string(&file) {
            let kept = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|json| json.get("processId")?.as_str().map(str::to_string))
                .filter(|id| !id.is_empty());
            match kept {
                Some(id) => return Ok(id),
                None => {
                    tracing::warn!(file = %file.display(), "unreadable process metadata: a new process id replaces it")
                }
            }
        }
        let id = new_process_id();
        let json = serde_json::json!({ "processId": id }).to_string();
        // Written whole then renamed, so a crash never leaves half a file.
        let tmp = self.path.join(format!("{PROCESS_FILE}.tmp"));
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| {
                StreamsError::StateStore(format!("cannot write {}: {e}", file.display()))
            })?;
        Ok(id)
    }
}

/// An id for an instance, different from any other's: the time and the OS process id, as hex.
pub fn new_process_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_id_survives_a_restart_and_the_directory_takes_one_instance() {
        let dir = tempfile::tempdir().unwrap();
        let first = AppStateDir::lock(dir.path(), "app").unwrap();
        let id = first.process_id().unwrap();
        assert_eq!(first.process_id().unwrap(), id);
        let err = AppStateDir::lock(dir.path(), "app").unwrap_err();
        assert!(
            err.to_string().contains("in use by another instance"),
            "{err}"
        );
        // Another application beside it has a directory of its own.
        let other = AppStateDir::lock(dir.path(), "other").unwrap();
        assert_ne!(other.process_id().unwrap(), id);
        drop(first);
        let again = AppStateDir::lock(dir.path(), "app").unwrap();
        assert_eq!(again.process_id().unwrap(), id);
    }

    #[test]
    fn an_unreadable_process_file_gets_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let state = AppStateDir::lock(dir.path(), "app").unwrap();
        std::fs::write(dir.path().join("app").join(PROCESS_FILE), "{not json").unwrap();
        let id = state.process_id().unwrap();
        assert!(!id.is_empty());
        assert_eq!(state.process_id().unwrap(), id);
    }
}
