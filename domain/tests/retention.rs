//! Retention: purge of old event contents and daily counts, on both backends.

use domain::clock::now_ms;
use domain::events::{self, Inbound, Ingested, Rejection};
use domain::retention;
use domain::sqlx;
use domain::tenants;
use domain::testing::TestDb;
use serde_json::json;

const DAY: i64 = 24 * 3600 * 1000;

fn inbound(tenant: &str, n: i64) -> Inbound {
    Inbound {
        tenant_id: tenant.into(),
        source: "actito",
        kind: "custom-action.updatePass".into(),
        headers: json!({"content-type": "application/json"}),
        body: format!("{{\"n\":{n}}}"),
        ..Default::default()
    }
}

/// Stores an accepted event received `age_days` ago.
async fn event(db: &domain::db::Db, tenant: &str, n: i64, age_days: i64) -> String {
    let Ingested::New { event_id } =
        events::ingest(db, &inbound(tenant, n), Some(&json!({"ok": true})), vec![])
            .await
            .unwrap()
    else {
        panic!("a new event")
    };
    sqlx::query("UPDATE inbound_events SET received_at = $1 WHERE id = $2")
        .bind(now_ms() - age_days * DAY)
        .bind(&event_id)
        .execute(db.writer())
        .await
        .unwrap();
    event_id
}

async fn contents(db: &domain::db::Db, id: &str) -> (Option<String>, String, Option<String>) {
    sqlx::query_as("SELECT body, headers, response FROM inbound_events WHERE id = $1")
        .bind(id)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn old_events_lose_their_contents_and_are_counted_once() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        tenants::create(db, "keep", "Keeps longer").await.unwrap();
        assert_eq!(retention::get_days(db, "acme").await.unwrap(), 30);
        retention::set_days(db, "keep", 90, "admin@keep.test")
            .await
            .unwrap();
        assert!(retention::set_days(db, "keep", 0, "x").await.is_err());
        assert!(retention::set_days(db, "keep", 3651, "x").await.is_err());
        assert_eq!(retention::get_days(db, "keep").await.unwrap(), 90);
        let history = domain::history::list(db, "keep", Some(domain::history::Area::Retention), 10)
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].changes[0].after.as_deref(), Some("90"));

        let old: Vec<String> = aged_events(db, "acme", &[40, 40, 31]).await;
        let fresh = event(db, "acme", 9, 29).await;
        let kept_longer = event(db, "keep", 10, 40).await;
        events::reject(
            db,
            &Rejection {
                tenant_id: "acme".into(),
                source: "actito",
                kind: "custom-action.updatePass".into(),
                code: "UNAUTHENTICATED".into(),
                headers: json!({}),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE inbound_events SET received_at = $1 WHERE status = 'rejected'")
            .bind(now_ms() - 40 * DAY)
            .execute(db.writer())
            .await
            .unwrap();
        // Old attempts of a delivery and a job.
        let mut conn = db.writer().acquire().await.unwrap();
        let delivery = domain::deliveries::create(
            &mut conn,
            "acme",
            domain::deliveries::Channel::ActitoCallback,
            None,
            None,
            "https://x",
        )
        .await
        .unwrap();
        drop(conn);
        for (id, age) in [("dat_old", 40), ("dat_new", 1)] {
            sqlx::query("INSERT INTO delivery_attempts (id, delivery_id, attempted_at, latency_ms) VALUES ($1, $2, $3, 5)")
                .bind(id)
                .bind(&delivery)
                .bind(now_ms() - age * DAY)
                .execute(db.writer())
                .await
                .unwrap();
            sqlx::query("INSERT INTO job_attempts (id, job_id, tenant_id, attempt, worker, started_at) VALUES ($1, 'job_x', 'acme', 1, 'w', $2)")
                .bind(id.replace("dat", "jat"))
                .bind(now_ms() - age * DAY)
                .execute(db.writer())
                .await
                .unwrap();
        }

        let report = retention::purge(db, now_ms()).await.unwrap();
        assert_eq!(report.events, 4, "{:?}", t.backend());
        assert_eq!((report.delivery_attempts, report.job_attempts), (1, 1));
        for id in &old {
            assert_eq!(contents(db, id).await, (None, "{}".into(), None));
            // The row itself stays, for audit listings and links.
            assert_eq!(
                events::get(db, "acme", id).await.unwrap().status,
                "accepted"
            );
        }
        assert_eq!(contents(db, &fresh).await.0.as_deref(), Some("{\"n\":9}"));
        assert!(contents(db, &fresh).await.2.is_some());
        assert_eq!(
            contents(db, &kept_longer).await.0.as_deref(),
            Some("{\"n\":10}")
        );

        // Twice: nothing more is purged or counted.
        let again = retention::purge(db, now_ms()).await.unwrap();
        assert_eq!(
            (again.events, again.delivery_attempts, again.job_attempts),
            (0, 0, 0)
        );
        let counts = retention::daily_counts(db, "acme").await.unwrap();
        let total: i64 = counts.iter().map(|c| c.count).sum();
        assert_eq!(total, 4);
        let accepted: i64 = counts
            .iter()
            .filter(|c| c.status == "accepted" && c.source == "actito")
            .map(|c| c.count)
            .sum();
        assert_eq!(accepted, 3);
        let day_40 = chrono::DateTime::from_timestamp_millis(now_ms() - 40 * DAY)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        assert!(
            counts
                .iter()
                .any(|c| c.day == day_40 && c.status == "rejected" && c.count == 1),
            "{counts:?}"
        );
        assert!(retention::daily_counts(db, "keep")
            .await
            .unwrap()
            .is_empty());
        let (attempts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM delivery_attempts")
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert_eq!(attempts, 1);
    }
}

async fn aged_events(db: &domain::db::Db, tenant: &str, ages: &[i64]) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, age) in ages.iter().enumerate() {
        ids.push(event(db, tenant, n as i64, *age).await);
    }
    ids
}
