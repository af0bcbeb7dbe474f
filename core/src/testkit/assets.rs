//! Contract suites for [`AssetRepository`] and [`BlobStore`]: every adapter
//! runs these on a fresh, empty store.

use std::sync::Arc;

use chrono::DateTime;

use super::licensing::Spawn;
use crate::assets::{Asset, AssetRepository, BlobStore, FileName, ScanStatus, sha256_hex};
use crate::error::Error;
use crate::ids::{AssetId, ProductId};

fn asset(product_id: ProductId, name: &str, version: u32) -> Asset {
    let bytes = format!("{name} v{version}");
    Asset {
        id: AssetId::new(),
        product_id,
        file_name: FileName::parse(name).expect("valid name"),
        mime: "application/zip".into(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes.as_bytes()),
        version,
        is_preview: false,
        scan: ScanStatus::Pending,
        created_at: DateTime::from_timestamp(1_700_000_000, 0).expect("in range"),
    }
}

/// Insert, uniqueness of (product, file name, version), versions, listing, scans.
pub async fn asset_repository_contract(repo: &dyn AssetRepository) {
    let product = ProductId::new();
    let name = FileName::parse("agent.zip").unwrap();
    assert_eq!(repo.next_version(product, &name).await.unwrap(), 1, "the first version is 1");
    let v1 = asset(product, "agent.zip", 1);
    repo.insert(&v1, &[]).await.expect("insert");
    assert_eq!(repo.get(v1.id).await.unwrap(), Some(v1.clone()));
    assert_eq!(repo.get(AssetId::new()).await.unwrap(), None);
    assert_eq!(repo.next_version(product, &name).await.unwrap(), 2, "next_version follows the highest stored");
    let other_name = FileName::parse("README.md").unwrap();
    assert_eq!(repo.next_version(product, &other_name).await.unwrap(), 1, "versions are per file name");
    assert_eq!(repo.next_version(ProductId::new(), &name).await.unwrap(), 1, "versions are per product");

    let dup = asset(product, "agent.zip", 1);
    let err = repo.insert(&dup, &[]).await.expect_err("same (product, file_name, version)");
    assert!(matches!(err, Error::Conflict { .. }), "must be Conflict, got {err:?}");
    assert_eq!(repo.get(dup.id).await.unwrap(), None, "a refused insert stores nothing");
    let mut same_id = asset(product, "other.zip", 1);
    same_id.id = v1.id;
    assert!(matches!(repo.insert(&same_id, &[]).await, Err(Error::Conflict { .. })), "duplicate id must be Conflict");

    let v2 = asset(product, "agent.zip", 2);
    let readme = asset(product, "README.md", 1);
    repo.insert(&v2, &[]).await.unwrap();
    repo.insert(&readme, &[]).await.unwrap();
    repo.insert(&asset(ProductId::new(), "agent.zip", 1), &[]).await.unwrap();
    let listed: Vec<AssetId> = repo.list_for_product(product).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, [readme.id, v1.id, v2.id], "ordered by file name, then version");

    repo.set_scan(v1.id, ScanStatus::Clean).await.unwrap();
    assert_eq!(repo.get(v1.id).await.unwrap().unwrap().scan, ScanStatus::Clean);
    assert_eq!(repo.get(v2.id).await.unwrap().unwrap().scan, ScanStatus::Pending, "set_scan touches one asset");
    let err = repo.set_scan(AssetId::new(), ScanStatus::Clean).await.expect_err("unknown asset");
    assert!(matches!(err, Error::NotFound { entity: "asset" }), "got {err:?}");
}

/// Concurrent inserts of the same version: exactly one wins.
pub async fn concurrent_same_version_inserts_store_one(repo: Arc<dyn AssetRepository>, spawn: Spawn<'_>) {
    let product = ProductId::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    for _ in 0..16 {
        let (repo, tx, barrier) = (repo.clone(), tx.clone(), barrier.clone());
        spawn(Box::pin(async move {
            barrier.wait().await;
            let _ = tx.send(repo.insert(&asset(product, "race.zip", 1), &[]).await);
        }));
    }
    drop(tx);
    let mut results = Vec::new();
    while let Some(r) = rx.recv().await {
        results.push(r);
    }
    assert_eq!(results.len(), 16, "every task reports");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "exactly one wins: {results:?}");
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(Error::Conflict { .. }))));
    assert_eq!(repo.list_for_product(product).await.unwrap().len(), 1);
}

/// Put, get, overwrite, delete (idempotent).
pub async fn blob_store_contract(blobs: &dyn BlobStore) {
    assert_eq!(blobs.get("assets/a/b").await.unwrap(), None, "absent keys are None");
    blobs.put("assets/a/b", b"first".to_vec()).await.unwrap();
    blobs.put("assets/a/c", Vec::new()).await.unwrap();
    assert_eq!(blobs.get("assets/a/b").await.unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(blobs.get("assets/a/c").await.unwrap().as_deref(), Some(&b""[..]), "empty blobs exist");
    blobs.put("assets/a/b", b"second".to_vec()).await.unwrap();
    assert_eq!(blobs.get("assets/a/b").await.unwrap().as_deref(), Some(&b"second"[..]), "put replaces");
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    blobs.put("assets/big", big.clone()).await.unwrap();
    assert_eq!(blobs.get("assets/big").await.unwrap(), Some(big), "bytes round-trip exactly");
    blobs.delete("assets/a/b").await.unwrap();
    assert_eq!(blobs.get("assets/a/b").await.unwrap(), None);
    blobs.delete("assets/a/b").await.expect("deleting an absent key succeeds");
    assert!(blobs.get("assets/a/c").await.unwrap().is_some(), "delete touches one key");
}
