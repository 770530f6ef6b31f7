//! The management API and operations endpoints, against the real server.

mod support;

use domain::api_keys::Scope;
use serde_json::{json, Value};
use support::{problem, TestServer};

#[tokio::test]
async fn operations_endpoints_answer() {
    for s in TestServer::all().await {
        let health = s.http.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert!(health.headers().contains_key("x-request-id"));
        assert_eq!(
            s.http.get(s.url("/readyz")).send().await.unwrap().status(),
            200
        );

        let metrics = s.get_text("/metrics").await;
        assert!(
            metrics.contains(
                r#"passhook_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{metrics}"
        );
        // The job queue as stored: two jobs of one order, the second waiting.
        s.tenant("acme").await;
        let ordered =
            domain::jobs::NewJob::raw("acme", "test.kind", json!({})).ordered_by("k".into());
        let mut conn = s.db.db.writer().acquire().await.unwrap();
        domain::jobs::enqueue(&mut conn, &[ordered.clone(), ordered])
            .await
            .unwrap();
        drop(conn);
        let metrics = s.get_text("/metrics").await;
        for line in [
            r#"passhook_jobs{kind="test.kind",status="queued"} 1"#,
            r#"passhook_jobs{kind="test.kind",status="waiting"} 1"#,
            r#"passhook_jobs{kind="actito.callback",status="queued"} 0"#,
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }
        assert!(
            metrics.contains("passhook_jobs_oldest_due_seconds "),
            "{metrics}"
        );

        let doc: Value = s
            .http
            .get(s.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in ["/api/{tenantId}/passes", "/api/{tenantId}/passes/{passId}"] {
            assert!(doc["paths"][path].is_object(), "{path} documented");
        }
        assert!(doc["paths"]["/api/{tenantId}/passes/{passId}"]["patch"].is_object());
        s.stop().await;
    }
}

#[tokio::test]
async fn keys_are_checked_for_tenant_and_scope() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        s.tenant("other").await;
        let reader = s.key("acme", &[Scope::PassesRead]).await;
        let foreign = s
            .key("other", &[Scope::PassesRead, Scope::PassesWrite])
            .await;
        let path = s.url("/api/acme/passes");

        let body = problem(s.http.get(&path).send().await.unwrap(), 401).await;
        assert_eq!(body["code"], "UNAUTHENTICATED");
        let unknown = s
            .http
            .get(&path)
            .header("X-API-KEY", "phk_nope")
            .send()
            .await
            .unwrap();
        problem(unknown, 401).await;
        let other = s
            .http
            .get(&path)
            .header("X-API-KEY", &foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(other, 403).await["code"], "FORBIDDEN_TENANT");
        let scope = s
            .http
            .post(&path)
            .header("X-API-KEY", &reader)
            .json(&json!({"passType": "loyalty", "identifiers": {"email": "a@b.c"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(scope, 403).await["code"], "FORBIDDEN_SCOPE");

        let ok = s
            .http
            .get(&path)
            .header("X-API-KEY", &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let bearer = s.http.get(&path).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(bearer.status(), 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn passes_are_created_found_and_patched() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s
            .key("acme", &[Scope::PassesRead, Scope::PassesWrite])
            .await;
        let created = s
            .http
            .post(s.url("/api/acme/passes"))
            .header("X-API-KEY", &key)
            .json(&json!({
                "passType": "loyalty",
                "identifiers": {"email": "Ann@Example.com", "customId": "C-1"},
                "additionalData": {"points": 10, "vip": false},
                "metadata": {"source": "test"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let pass: Value = created.json().await.unwrap();
        let id = pass["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("pass_"));
        assert_eq!(pass["version"], 1);
        for field in [
            "createdAt",
            "updatedAt",
            "metadata",
            "identifiers",
            "additionalData",
            "passType",
        ] {
            assert!(!pass[field].is_null(), "{field}");
        }

        let got: Value = s
            .http
            .get(s.url(&format!("/api/acme/passes/{id}")))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got, pass);

        let found: Value = s
            .http
            .get(s.url("/api/acme/passes?identifier.email=%20ann@EXAMPLE.com&passType=loyalty"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found["items"][0]["id"], id.as_str());
        assert!(found["next"].is_null());
        let none: Value = s
            .http
            .get(s.url("/api/acme/passes?identifier.customId=c-1"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(none["items"], json!([]));

        let patch = |body: Value| {
            s.http
                .patch(s.url(&format!("/api/acme/passes/{id}")))
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
        };
        let same: Value = patch(json!({"additionalData": {"points": 10}}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(same["version"], 1, "no change, no new version");
        let changed: Value = patch(json!({"additionalData": {"points": 20, "vip": null}}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(changed["version"], 2);
        assert_eq!(changed["additionalData"], json!({"points": 20}));

        let missing = s
            .http
            .get(s.url("/api/acme/passes/pass_missing"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap();
        problem(missing, 404).await;
        let invalid = patch(json!({"additionalData": {"points": {"nested": 1}}}))
            .await
            .unwrap();
        let body = problem(invalid, 400).await;
        assert_eq!(body["errors"][0]["field"], "additionalData.points");
        s.stop().await;
    }
}

#[tokio::test]
async fn search_pages_through_every_pass() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s
            .key("acme", &[Scope::PassesRead, Scope::PassesWrite])
            .await;
        for i in 0..5 {
            let body = json!({"passType": "loyalty", "identifiers": {"customId": format!("C{i}")}});
            let r = s
                .http
                .post(s.url("/api/acme/passes"))
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let mut url = s.url("/api/acme/passes?limit=2");
        let mut ids = Vec::new();
        loop {
            let page: Value = s
                .http
                .get(&url)
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string()),
            );
            match page["next"].as_str() {
                Some(next) => url = s.url(&format!("/api/acme/passes?limit=2&cursor={next}")),
                None => break,
            }
        }
        assert_eq!(ids.len(), 5);
        let bad = s
            .http
            .get(s.url("/api/acme/passes?cursor=garbage"))
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap();
        problem(bad, 400).await;
        s.stop().await;
    }
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_problems() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::PassesWrite]).await;
        let path = s.url("/api/acme/passes");
        let send = |body: Vec<u8>| {
            s.http
                .post(&path)
                .header("X-API-KEY", &key)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };

        let body = problem(send(b"{not json".to_vec()).await.unwrap(), 400).await;
        assert_eq!(body["code"], "MALFORMED_BODY");
        problem(
            send(br#"{"passType": 5, "identifiers": {}}"#.to_vec())
                .await
                .unwrap(),
            400,
        )
        .await;

        let big = format!(
            r#"{{"passType":"x","identifiers":{{"a":"b"}},"metadata":{{"blob":"{}"}}}}"#,
            "x".repeat(6 * 1024 * 1024)
        );
        let body = problem(send(big.into_bytes()).await.unwrap(), 413).await;
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");

        problem(
            s.http
                .get(s.url("/api/acme/nothing-here"))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        problem(
            s.http
                .delete(s.url("/api/acme/passes"))
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap(),
            405,
        )
        .await;
        s.stop().await;
    }
}

#[tokio::test]
async fn console_pages_need_a_session_and_refuse_cross_origin_posts() {
    for s in TestServer::all().await {
        let page = s.http.get(s.url("/passes?q=ann")).send().await.unwrap();
        assert_eq!(page.status(), 303);
        assert_eq!(page.headers()["location"], "/login?next=/passes%3Fq%3Dann");

        let login = s.http.get(s.url("/login")).send().await.unwrap();
        assert_eq!(login.status(), 200);
        let html = login.text().await.unwrap();
        assert!(html.contains("Sign in to the console"));

        let cross = s
            .http
            .post(s.url("/console/fn/logout"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403);
        s.stop().await;
    }
}
