//! Group commit of inbound events on both backends.

use domain::events::{Inbound, Ingested};
use domain::ingest::Ingestor;
use domain::jobs::NewJob;
use domain::tenants;
use domain::testing::TestDb;
use serde_json::json;

fn inbound(key: &str) -> Inbound {
    Inbound {
        tenant_id: "acme".into(),
        source: "actito",
        kind: "custom-action.updatePass".into(),
        headers: json!({}),
        body: "{}".into(),
        dedupe_key: Some(key.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn concurrent_events_are_stored_once_each_with_their_jobs() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let ingestor = Ingestor::start(t.db.clone());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let ingestor = ingestor.clone();
                // Every key twice, sent concurrently: one of each pair is a duplicate.
                let key = format!("k{}", i / 2);
                tokio::spawn(async move {
                    let job = NewJob::raw("acme", "test.kind", json!({ "n": i }));
                    ingestor
                        .ingest(inbound(&key), Some(json!({"first": i})), vec![job])
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut new = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Ingested::New { .. }) {
                new += 1;
            }
        }
        assert_eq!(new, 100, "{:?}", t.backend());
        let (events, jobs): (i64, i64) = domain::sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM inbound_events), (SELECT COUNT(*) FROM jobs)",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!((events, jobs), (100, 100), "a duplicate enqueues nothing");
    }
}

#[tokio::test]
async fn a_dedupe_key_older_than_the_window_is_free_again() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let ingestor = Ingestor::start(t.db.clone());
        let job = || vec![NewJob::raw("acme", "test.kind", json!({}))];
        let first = ingestor.ingest(inbound("k"), None, job()).await.unwrap();
        let again = ingestor.ingest(inbound("k"), None, job()).await.unwrap();
        assert!(
            matches!(again, Ingested::Duplicate { ref event_id, .. } if event_id == first.event_id())
        );
        // A day and a bit later, the same key is a new event.
        let old = domain::clock::now_ms() - domain::events::DEDUPE_WINDOW_MS - 1_000;
        domain::sqlx::query("UPDATE inbound_events SET received_at = $1")
            .bind(old)
            .execute(t.db.writer())
            .await
            .unwrap();
        let later = ingestor.ingest(inbound("k"), None, job()).await.unwrap();
        assert!(
            matches!(later, Ingested::New { ref event_id } if event_id != first.event_id()),
            "{:?}",
            t.backend()
        );
        let (events, jobs): (i64, i64) = domain::sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM inbound_events), (SELECT COUNT(*) FROM jobs)",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!((events, jobs), (2, 2));
    }
}
