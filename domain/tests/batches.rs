//! Many updates applied together (a BULK chunk, a run of custom actions) give the
//! same passes, versions and owed refreshes as one by one, on both backends.

use domain::passes::apply;
use domain::passes::{self, Cause, Data, Identifiers, NewPass, Update};
use domain::tenants;
use domain::testing::TestDb;
use serde_json::{json, Value};

async fn new_pass(t: &TestDb, id: &str) {
    let new = NewPass {
        id: Some(id.into()),
        pass_type: "loyalty".into(),
        identifiers: Identifiers::from([("customId".to_string(), id.to_string())]),
        ..Default::default()
    };
    passes::create(&t.db, "acme", new).await.unwrap();
}

fn data(value: Value) -> Data {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn updates_of_one_batch_apply_in_order_and_owe_one_refresh_per_pass() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        new_pass(&t, "p1").await;
        new_pass(&t, "p2").await;
        let cause = Cause::new("actito", None);
        let (one, five, two) = (
            data(json!({"points": 1})),
            data(json!({"points": 5})),
            data(json!({"points": 2})),
        );
        let gold = data(json!({"tier": "gold"}));
        let update = |changes, message| Update {
            changes,
            cause: &cause,
            message,
        };
        let batch = [
            ("p1", update(&one, None)),
            ("p2", update(&five, None)),
            ("p1", update(&two, Some("Hi"))),
            ("p1", update(&two, None)),
            ("gone", update(&one, None)),
            ("p1", update(&gold, None)),
        ];
        let mut conn = t.db.writer().acquire().await.unwrap();
        let results = apply::apply_all(&mut conn, "acme", &batch).await.unwrap();
        drop(conn);

        let seen: Vec<Option<(i64, usize, bool)>> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|p| (p.pass.version, p.changes.len(), p.significant))
            })
            .collect();
        assert_eq!(
            seen,
            [
                Some((2, 1, false)),
                Some((2, 1, false)),
                Some((3, 1, true)),
                Some((3, 0, false)),
                None,
                Some((4, 1, false)),
            ],
            "each update sees the ones before it; an unchanged one makes no version"
        );
        let p1 = passes::get(&t.db, "acme", "p1").await.unwrap();
        assert_eq!(p1.version, 4);
        assert_eq!(
            Value::Object(p1.additional_data),
            json!({"points": 2, "tier": "gold"})
        );
        let versions = passes::versions(&t.db, "acme", "p1").await.unwrap();
        let history: Vec<(i64, String, Option<Value>, Option<String>)> = versions
            .iter()
            .map(|v| {
                let c = &v.changes[0];
                (v.version, c.key.clone(), c.after.clone(), v.message.clone())
            })
            .collect();
        assert_eq!(
            history,
            [
                (4, "tier".into(), Some(json!("gold")), None),
                (3, "points".into(), Some(json!(2)), Some("Hi".into())),
                (2, "points".into(), Some(json!(1)), None),
            ]
        );

        let owed: Vec<(String, i64, i64, Option<String>)> = domain::sqlx::query_as(
            "SELECT pass_id, version, significant, message FROM wallet_refreshes ORDER BY pass_id",
        )
        .fetch_all(t.db.reader())
        .await
        .unwrap();
        assert_eq!(
            owed,
            [
                ("p1".to_string(), 4, 3, Some("Hi".to_string())),
                ("p2".to_string(), 2, 0, None),
            ],
            "one owed refresh per pass: the newest version, the last significant one"
        );
        let (jobs,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'wallet.refresh' AND status = 'queued'",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(jobs, 2, "one refresh job per pass");
    }
}

#[tokio::test]
async fn attempts_recorded_together_count_each_one_even_for_the_same_delivery() {
    use domain::deliveries::{self, Attempt, DeliveryStatus};
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut conn = t.db.writer().acquire().await.unwrap();
        let channel = deliveries::Channel::ActitoCallback;
        let a = deliveries::create(&mut conn, "acme", channel, None, None, "http://a.test")
            .await
            .unwrap();
        let b = deliveries::create(&mut conn, "acme", channel, None, None, "http://b.test")
            .await
            .unwrap();
        let attempt = |code: u16, new_status| Attempt {
            status_code: Some(code),
            latency_ms: 3,
            error: (code >= 500).then(|| format!("HTTP {code}")),
            new_status,
        };
        let (failed, ok) = (
            attempt(503, DeliveryStatus::Retrying),
            attempt(200, DeliveryStatus::Delivered),
        );
        let batch = [(a.as_str(), &failed), (b.as_str(), &ok), (a.as_str(), &ok)];
        let live = deliveries::record_attempts_in(&mut conn, &batch)
            .await
            .unwrap();
        drop(conn);

        assert_eq!(live.len(), 3, "one live event per attempt");
        for (id, status, attempts, rows) in [(&a, "delivered", 2, 2), (&b, "delivered", 1, 1)] {
            let (s, n, e): (String, i64, Option<String>) = domain::sqlx::query_as(
                "SELECT status, attempts, last_error FROM deliveries WHERE id = $1",
            )
            .bind(id)
            .fetch_one(t.db.reader())
            .await
            .unwrap();
            assert_eq!((s.as_str(), n, e), (status, attempts, None), "{id}");
            let (count,): (i64,) = domain::sqlx::query_as(
                "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = $1",
            )
            .bind(id)
            .fetch_one(t.db.reader())
            .await
            .unwrap();
            assert_eq!(count, rows, "{id}");
        }
    }
}
