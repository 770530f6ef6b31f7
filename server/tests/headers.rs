//! Security headers: the console's Content Security Policy and its per-request nonce,
//! framing rules, and the headers every answer carries.

mod support;

use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::users::{self, Role};
use support::TestServer;

const PASSWORD: &str = "headers-test-password";
const ACTIVITY: &str = "/api/acme/webhooks/listeners/sfmc/actions/pushupdate/";

async fn admin_cookie(s: &TestServer) -> String {
    users::upsert(&s.db.db, "acme", "admin@acme.test", Role::Admin, PASSWORD)
        .await
        .unwrap();
    s.sign_in("admin@acme.test", PASSWORD)
        .await
        .expect("a session cookie")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// The nonce the policy names for scripts.
fn script_nonce(policy: &str) -> String {
    let scripts = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .expect("a script-src directive");
    assert!(
        !scripts.contains("'unsafe-inline'") && !scripts.contains("'unsafe-eval'"),
        "{scripts}"
    );
    scripts
        .split_whitespace()
        .find_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
        .expect("a nonce in script-src")
        .to_string()
}

/// Every `<script …>` start tag of the page.
fn script_tags(html: &str) -> Vec<&str> {
    html.match_indices("<script")
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap() + 1])
        .collect()
}

/// Loads an HTML page and checks its policy against its scripts; returns the nonce.
async fn html_page(s: &TestServer, path: &str, cookie: Option<&str>) -> String {
    let mut request = s.http.get(s.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/html"),
        "{path}"
    );
    let policy = header(&response, "content-security-policy").expect("a policy");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("object-src 'none'"), "{policy}");
    assert!(policy.contains("base-uri 'none'"), "{policy}");
    assert_eq!(
        header(&response, "x-frame-options").as_deref(),
        Some("DENY")
    );
    assert_eq!(
        header(&response, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(&response, "referrer-policy").as_deref(),
        Some("same-origin")
    );
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let nonce = script_nonce(&policy);
    assert!(nonce.len() >= 22, "128 bits at least: {nonce}");
    let html = response.text().await.unwrap();
    let tags = script_tags(&html);
    assert!(!tags.is_empty(), "{path} has its hydration script");
    for tag in tags {
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "{path}: {tag} lacks the nonce {nonce}"
        );
    }
    nonce
}

#[tokio::test]
async fn console_pages_carry_a_fresh_nonce_on_every_script() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let cookie = admin_cookie(&s).await;
        let login = html_page(&s, "/login", None).await;
        let again = html_page(&s, "/login", None).await;
        assert_ne!(login, again, "a new nonce per answer");
        for path in [
            "/",
            "/passes",
            "/audit",
            "/integrations/sfmc",
            "/api-keys",
            "/no-such-page",
        ] {
            html_page(&s, path, Some(&cookie)).await;
        }
        assert!(s
            .http
            .get(s.url("/"))
            .send()
            .await
            .unwrap()
            .headers()
            .get("strict-transport-security")
            .is_none());
        s.stop().await;
    }
}

#[tokio::test]
async fn only_the_sfmc_activity_page_may_be_framed_by_sfmc() {
    let s = TestServer::start(TestDb::sqlite().await).await;
    s.tenant("acme").await;
    let page = s.http.get(s.url(ACTIVITY)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = header(&page, "content-security-policy").unwrap();
    assert!(
        policy.ends_with(
            "frame-ancestors https://*.exacttarget.com https://*.marketingcloudapps.com"
        ),
        "{policy}"
    );
    let scripts = policy
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!scripts.contains("unsafe-inline"), "{policy}");
    assert!(header(&page, "x-frame-options").is_none());
    assert_eq!(
        header(&page, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // Its own scripts are files, not inline: the policy lets them run.
    let html = page.text().await.unwrap();
    for tag in script_tags(&html) {
        assert!(tag.contains("src="), "{tag}");
    }

    // Answers that are not HTML get the plain headers, and the API keeps its caching.
    let api = s.http.get(s.url("/api/acme/passes")).send().await.unwrap();
    assert_eq!(api.status(), 401);
    assert_eq!(
        header(&api, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(header(&api, "content-security-policy").is_none());
    assert!(header(&api, "cache-control").is_none());
    // Server functions answer with no-store.
    let function = s
        .http
        .post(s.url("/console/fn/key_page"))
        .send()
        .await
        .unwrap();
    assert_eq!(function.status(), 401);
    assert_eq!(
        header(&function, "cache-control").as_deref(),
        Some("no-store")
    );
    s.stop().await;
}

#[tokio::test]
async fn https_deployments_get_strict_transport_security() {
    let s = TestServer::start_with(TestDb::sqlite().await, MasterKey::generate(), |c| {
        c.public_url = "https://passhook.example.com".into();
    })
    .await;
    for path in ["/login", "/healthz", "/api/openapi.json"] {
        let response = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            header(&response, "strict-transport-security").as_deref(),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    s.stop().await;
}
