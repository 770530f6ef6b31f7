//! Accounts across tenants, through the real server: a tenant admin can't take over
//! another tenant's person, sign-in guessing gets exactly its limit, every failed
//! sign-in costs the same work, and sign-in never redirects off the site.

mod support;

use domain::testing::TestDb;
use domain::users::{self, Role};
use serde_json::Value;
use support::{session_cookie, TestServer};

/// Tests here count password verifications, a process-wide number: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const VICTIM: &str = "boss@bravo-staff.test";
const VICTIM_PASSWORD: &str = "bravo boss's own password";
const ATTACKER: &str = "admin@alpha-staff.test";
const ATTACKER_PASSWORD: &str = "alpha admin's password";

async fn login(s: &TestServer, email: &str, password: &str, next: &str) -> reqwest::Response {
    s.http
        .post(s.url("/console/fn/login"))
        .form(&[("email", email), ("password", password), ("next", next)])
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The signed-in person's email for this cookie, or `None` when the session is void.
async fn whoami(s: &TestServer, cookie: &str) -> Option<String> {
    let info: Value = s
        .http
        .post(s.url("/console/fn/get_session_info"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info["email"].as_str().map(str::to_string)
}

async fn console_fn(s: &TestServer, cookie: &str, name: &str, form: &[(&str, &str)]) -> Value {
    let response = s
        .http
        .post(s.url(&format!("/console/fn/{name}")))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{name}");
    response.json().await.unwrap()
}

async fn two_tenants(s: &TestServer) {
    domain::tenants::create(&s.db.db, "alpha", "Alpha")
        .await
        .unwrap();
    domain::tenants::create(&s.db.db, "bravo", "Bravo")
        .await
        .unwrap();
    users::upsert(&s.db.db, "alpha", ATTACKER, Role::Admin, ATTACKER_PASSWORD)
        .await
        .unwrap();
    users::upsert(&s.db.db, "bravo", VICTIM, Role::Admin, VICTIM_PASSWORD)
        .await
        .unwrap();
}

/// Alpha's admin "adds" bravo's admin with a password of their choosing. Before the
/// fix that replaced the victim's password everywhere; now the account only joins
/// alpha, and nothing else of it changes.
#[tokio::test]
async fn adding_another_tenants_person_takes_nothing_over() {
    let _serial = SERIAL.lock().await;
    for db in TestDb::all().await {
        let s = TestServer::start(db).await;
        two_tenants(&s).await;
        let victim_session = s.sign_in(VICTIM, VICTIM_PASSWORD).await.unwrap();
        let attacker = s.sign_in(ATTACKER, ATTACKER_PASSWORD).await.unwrap();

        let added = console_fn(
            &s,
            &attacker,
            "add_person",
            &[
                ("email", VICTIM),
                ("role", "admin"),
                ("password", "attacker chosen password"),
            ],
        )
        .await;
        assert_eq!(added["Done"]["email"], VICTIM, "{added}");
        assert!(
            added["Done"]["setup_link"].is_null(),
            "no set-up link for an existing account: {added}"
        );

        assert!(
            s.sign_in(VICTIM, "attacker chosen password")
                .await
                .is_none(),
            "the attacker's password does not open the victim's account"
        );
        assert_eq!(
            whoami(&s, &victim_session).await.as_deref(),
            Some(VICTIM),
            "the victim's session goes on"
        );
        let victim = s.sign_in(VICTIM, VICTIM_PASSWORD).await;
        assert!(victim.is_some(), "the victim's own password still works");
        let user = users::find_by_email(&s.db.db, VICTIM)
            .await
            .unwrap()
            .unwrap();
        let roles: Vec<_> = users::memberships(&s.db.db, &user.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.tenant_id, m.role))
            .collect();
        assert_eq!(
            roles,
            [("alpha".into(), Role::Admin), ("bravo".into(), Role::Admin)]
        );
        let history = domain::history::list(&s.db.db, "alpha", None, 10)
            .await
            .unwrap();
        assert!(
            history
                .iter()
                .any(|e| e.summary.contains(VICTIM) && e.actor == ATTACKER),
            "alpha's settings history records the addition"
        );

        // A new person gets a link and chooses their own password with it, once.
        let added = console_fn(
            &s,
            &attacker,
            "add_person",
            &[("email", "new@alpha-staff.test"), ("role", "marketer")],
        )
        .await;
        let link = added["Done"]["setup_link"].as_str().unwrap().to_string();
        let token = link.split("token=").nth(1).unwrap();
        let set = s
            .http
            .post(s.url("/console/fn/set_up_password"))
            .form(&[("token", token), ("password", "the new person's own")])
            .send()
            .await
            .unwrap();
        let cookie = session_cookie(&set).expect("signed in with the link");
        assert_eq!(
            whoami(&s, &cookie).await.as_deref(),
            Some("new@alpha-staff.test")
        );
        let again: Value = s
            .http
            .post(s.url("/console/fn/set_up_password"))
            .form(&[("token", token), ("password", "someone else's now")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(again["Invalid"].is_array(), "a used link: {again}");
        assert!(s
            .sign_in("new@alpha-staff.test", "the new person's own")
            .await
            .is_some());
        s.stop().await;
    }
}

/// 40 wrong passwords at once, then the right one: exactly the limit's worth of
/// passwords were checked, and the right one is refused until the lock ends.
#[tokio::test]
async fn a_burst_of_guesses_gets_exactly_the_limit() {
    let _serial = SERIAL.lock().await;
    for db in TestDb::all().await {
        let s = TestServer::start(db).await;
        two_tenants(&s).await;
        let before = users::verifications();
        let guesses: Vec<_> = (0..40)
            .map(|n| {
                let (http, url) = (s.http.clone(), s.url("/console/fn/login"));
                tokio::spawn(async move {
                    let guess = format!("wrong guess number {n}");
                    http.post(url)
                        .form(&[("email", VICTIM), ("password", guess.as_str())])
                        .send()
                        .await
                        .unwrap()
                })
            })
            .collect();
        for guess in guesses {
            let response = guess.await.unwrap();
            assert!(session_cookie(&response).is_none());
        }
        assert_eq!(
            users::verifications() - before,
            domain::throttle::MAX_PER_ACCOUNT as u64,
            "passwords checked in the burst ({:?})",
            s.backend()
        );
        let right = login(&s, VICTIM, VICTIM_PASSWORD, "/").await;
        assert!(session_cookie(&right).is_none());
        assert!(
            location(&right).contains("error=locked"),
            "{}",
            location(&right)
        );
        s.stop().await;
    }
}

/// Every kind of failed sign-in does the same work (one password verification), so
/// its timing does not tell unknown, SSO-only, disabled and real accounts apart.
#[tokio::test]
async fn every_failed_sign_in_costs_one_verification() {
    let _serial = SERIAL.lock().await;
    for db in TestDb::all().await {
        let s = TestServer::start(db).await;
        two_tenants(&s).await;
        let dbh = &s.db.db;
        users::add_member(dbh, "bravo", "sso-only@bravo-staff.test", Role::Marketer)
            .await
            .unwrap();
        let gone = users::upsert(
            dbh,
            "bravo",
            "gone@bravo-staff.test",
            Role::Marketer,
            "gone's password",
        )
        .await
        .unwrap();
        domain::sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
            .bind(&gone.id)
            .execute(dbh.writer())
            .await
            .unwrap();
        for (email, password) in [
            ("nobody@bravo-staff.test", "any password at all"),
            ("sso-only@bravo-staff.test", "any password at all"),
            ("gone@bravo-staff.test", "gone's password"),
            (VICTIM, "a wrong password"),
        ] {
            let before = users::verifications();
            let response = login(&s, email, password, "/").await;
            assert!(location(&response).contains("error=invalid"), "{email}");
            assert_eq!(users::verifications() - before, 1, "{email}");
        }
        s.stop().await;
    }
}

/// `next` after a password sign-in stays on this site, whatever it holds.
#[tokio::test]
async fn sign_in_never_redirects_off_the_site() {
    let _serial = SERIAL.lock().await;
    let s = TestServer::start(TestDb::sqlite().await).await;
    two_tenants(&s).await;
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/ /evil.example",
        "/passes\r\nSet-Cookie: x=y",
    ] {
        let response = login(&s, VICTIM, VICTIM_PASSWORD, next).await;
        assert!(
            response.status().is_redirection() || response.status() == 200,
            "{next:?}: {}",
            response.status()
        );
        assert_eq!(location(&response), "/", "{next:?}");
    }
    let response = login(&s, VICTIM, VICTIM_PASSWORD, "/passes?q=a").await;
    assert_eq!(location(&response), "/passes?q=a");
    s.stop().await;
}
