//! The live feed on both backends: subscribers receive what is published, and a
//! resuming client gets its tenant's missed events in order from the ring.

use std::time::Duration;

use domain::live::{LiveEvent, LiveKind};
use domain::testing::TestDb;

fn pass_event(tenant: &str, version: i64) -> LiveEvent {
    LiveEvent::new(
        tenant,
        LiveKind::Pass {
            pass_id: "pass_1".into(),
            version,
            event_id: None,
            significant: false,
        },
    )
}

/// Published events come back to subscribers and, for a resuming client, from the
/// ring in the order they happened, only its tenant's.
#[tokio::test]
async fn the_live_ring_resumes_in_order_on_both_backends() {
    for t in TestDb::all().await {
        let db = &t.db;
        let mut receiver = db.subscribe();
        assert!(
            db.live_ready(Duration::from_secs(5)).await,
            "{:?}",
            t.backend()
        );
        let published: Vec<LiveEvent> = (0..20)
            .map(|v| pass_event(if v % 4 == 0 { "other" } else { "acme" }, v))
            .collect();
        db.publish_all(published.clone());
        let mut received = Vec::new();
        while received.len() < published.len() {
            let event = tokio::time::timeout(Duration::from_secs(2), receiver.recv())
                .await
                .expect("published events arrive")
                .unwrap();
            received.push(event);
        }
        assert_eq!(received, published, "{:?}", t.backend());
        let resumed = db.live_since("acme", &published[5].id);
        let versions: Vec<i64> = resumed
            .iter()
            .map(|e| match e.kind {
                LiveKind::Pass { version, .. } => version,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(versions, vec![6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]);
        assert!(db.live_since("acme", &published[19].id).is_empty());
    }
}
