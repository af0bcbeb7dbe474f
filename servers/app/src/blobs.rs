//! Asset bytes in a local directory: the embedded default [`BlobStore`].
//!
//! Keys such as `assets/<product>/<asset>` map to paths below the root;
//! a key that could escape it (`..`, absolute, empty segments) is refused.
//! Writes go to a temporary file that is renamed into place, so a reader
//! never sees half a blob and a crash leaves either the old or the new one.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bazaar_core::assets::BlobStore;
use bazaar_core::{Error, Result};

const WHAT: &str = "blob directory";

/// Blobs as files under one directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Uses (creating if missing) `root`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the directory cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await.map_err(|e| Error::unavailable(WHAT, e))?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let safe = !key.is_empty()
            && !key.contains("//")
            && !key.ends_with('/')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if safe { Ok(self.root.join(rel)) } else { Err(Error::invalid("key", "is not a relative blob key")) }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    /// Writes a temporary file, syncs it and renames it into place, so a
    /// crash leaves the old blob or the new one, never half of one. All of
    /// it is one blocking task: a hop to the blocking pool per file
    /// operation cost more than the operations (bulk uploads were spending
    /// most of their time switching threads).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_synced(&path, &bytes))
            .await
            .map_err(|e| Error::unavailable(WHAT, e))?
            .map_err(|e| Error::unavailable(WHAT, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::unavailable(WHAT, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::unavailable(WHAT, e)),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
        uuid::Uuid::now_v7()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_blob_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path().join("blobs")).await.unwrap();
        bazaar_core::testkit::assets::blob_store_contract(&store).await;
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path().join("blobs")).await.unwrap();
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "a/"] {
            assert_eq!(store.put(bad, b"x".to_vec()).await.unwrap_err().code(), "validation", "{bad:?}");
        }
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn blobs_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        LocalBlobStore::open(dir.path()).await.unwrap().put("assets/p/a", b"bytes".to_vec()).await.unwrap();
        let again = LocalBlobStore::open(dir.path()).await.unwrap();
        assert_eq!(again.get("assets/p/a").await.unwrap().as_deref(), Some(&b"bytes"[..]));
    }
}
