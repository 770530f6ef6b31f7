//! Single sign-on against the real server and a loopback OpenID provider that checks
//! its requests like a real one. Every refusal is checked the same way: the callback
//! sends the browser back to the sign-in page, the session it answers with opens no
//! console page, and no stored session holds a signed-in user.

mod support;

use domain::crypto::MasterKey;
use domain::sso::SsoConfig;
use domain::testing::TestDb;
use domain::users::{self, Role};
use reqwest::{Response, Url};
use serde_json::{json, Value};
use support::oidc::{FakeOidc, Signing};
use support::TestServer;

/// The email the fake provider puts in its ID tokens unless told otherwise.
const EMAIL: &str = "someone@example.com";
const PASSWORD: &str = "a long enough password";
const PENDING_COOKIE: &str = "passhook_sso";
const SESSION_COOKIE: &str = "passhook_session";

/// A server per backend that signs in with `fake`, with an account for [`EMAIL`].
async fn servers(fake: &FakeOidc) -> Vec<TestServer> {
    servers_with(fake, |_| {}).await
}

async fn servers_with(fake: &FakeOidc, adjust: impl Fn(&mut SsoConfig)) -> Vec<TestServer> {
    let mut servers = Vec::new();
    for db in TestDb::all().await {
        servers.push(server_on(fake, db, MasterKey::generate(), &adjust).await);
    }
    servers
}

async fn server_on(
    fake: &FakeOidc,
    db: TestDb,
    key: MasterKey,
    adjust: impl Fn(&mut SsoConfig),
) -> TestServer {
    let fresh = db.db.clone();
    let s = TestServer::start_with(db, key, |config| {
        let mut sso = fake.config(&config.public_url);
        adjust(&mut sso);
        config.sso = Some(sso);
    })
    .await;
    if !domain::tenants::exists(&fresh, "acme").await.unwrap() {
        s.tenant("acme").await;
        users::upsert(&fresh, "acme", EMAIL, Role::Admin, PASSWORD)
            .await
            .unwrap();
    }
    s
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("a Location from {} ({})", response.url(), response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The whole `Set-Cookie` value for cookie `name`, if the response sets it.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// `name=value` of a `Set-Cookie` value, as a browser sends it back.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

/// A sign-in as far as the provider's redirect back: what the browser then holds.
struct Attempt {
    /// `passhook_sso=…`
    cookie: String,
    callback: Url,
}

/// Starts a sign-in (`next` as it appears in the query string) and lets the fake
/// provider send the browser back.
async fn begin(s: &TestServer, next: &str) -> Attempt {
    let response = s
        .http
        .get(s.url(&format!("/auth/sso/start?next={next}")))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection(),
        "start: {}",
        response.status()
    );
    let cookie = pair(&set_cookie(&response, PENDING_COOKIE).expect("a pending sign-in cookie"));
    let at_provider = s.http.get(location(&response)).send().await.unwrap();
    assert!(
        at_provider.status().is_redirection(),
        "the fake provider refused the authorization request: {}",
        at_provider.text().await.unwrap()
    );
    let callback = Url::parse(&location(&at_provider)).unwrap();
    assert!(callback.as_str().starts_with(&s.url("/auth/sso/callback")));
    Attempt { cookie, callback }
}

async fn call_back(s: &TestServer, cookie: &str, callback: &Url) -> Response {
    s.http
        .get(callback.clone())
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Stored sessions that hold a signed-in user.
async fn signed_in_sessions(s: &TestServer) -> i64 {
    let (n,): (i64,) =
        domain::sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE data LIKE '%\"user_id\"%'")
            .fetch_one(s.db.db.reader())
            .await
            .unwrap();
    n
}

async fn all_sessions(s: &TestServer) -> i64 {
    let (n,): (i64,) = domain::sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(s.db.db.reader())
        .await
        .unwrap();
    n
}

/// Whether this `passhook_session=…` (or none) opens a console page.
async fn opens_the_console(s: &TestServer, session: Option<&str>) -> bool {
    let mut request = s.http.get(s.url("/"));
    if let Some(cookie) = session {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    if response.status().is_redirection() {
        assert!(location(&response).starts_with("/login"));
        return false;
    }
    assert!(
        response.status().is_success(),
        "console page: {}",
        response.status()
    );
    true
}

/// The callback refused: back to the sign-in page with an error, the pending cookie
/// cleared, and no session signed in (`signed_in_before` were, and still are).
async fn assert_refused(s: &TestServer, response: Response, signed_in_before: i64) {
    assert!(
        response.status().is_redirection(),
        "callback: {}",
        response.status()
    );
    let to = location(&response);
    assert!(to.starts_with("/login?error=sso-"), "refused to {to}");
    let cleared = set_cookie(&response, PENDING_COOKIE).expect("the pending cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let session = set_cookie(&response, SESSION_COOKIE).map(|c| pair(&c));
    assert!(!opens_the_console(s, session.as_deref()).await);
    assert_eq!(signed_in_sessions(s).await, signed_in_before);
}

/// The provider issued an ID token with these `claims` changes and `signing`; the
/// server must refuse it, for a reason of its own (the provider accepted the code).
async fn token_refused(claims: Value, signing: Signing) {
    let fake = FakeOidc::start().await;
    fake.set_claims(claims);
    fake.set_signing(signing);
    let servers = servers(&fake).await;
    for (i, s) in servers.iter().enumerate() {
        let attempt = begin(s, "%2F").await;
        let response = call_back(s, &attempt.cookie, &attempt.callback).await;
        assert_refused(s, response, 0).await;
        assert_eq!(fake.tokens_issued(), i + 1, "{:?}", fake.refusals());
    }
}

#[tokio::test]
async fn a_good_id_token_signs_in_and_lands_on_next() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let attempt = begin(&s, "%2Fpasses%3Fq%3Da").await;
        let grant = fake.grants().pop().unwrap();
        assert_eq!(grant.params["code_challenge_method"], "S256");
        let response = call_back(&s, &attempt.cookie, &attempt.callback).await;
        assert_eq!(response.status(), 303, "{:?}", fake.refusals());
        assert_eq!(location(&response), "/passes?q=a");
        let cleared = set_cookie(&response, PENDING_COOKIE).expect("the pending cookie is cleared");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let session = pair(&set_cookie(&response, SESSION_COOKIE).expect("a session"));
        assert!(opens_the_console(&s, Some(&session)).await);
        assert_eq!(signed_in_sessions(&s).await, 1);
    }
    assert!(fake.refusals().is_empty(), "{:?}", fake.refusals());
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let attempt = begin(&s, "%2F").await;
        let mut forged = attempt.callback.clone();
        let code = forged
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        forged
            .query_pairs_mut()
            .clear()
            .append_pair("code", &code)
            .append_pair("state", "another-state");
        let response = call_back(&s, &attempt.cookie, &forged).await;
        assert_refused(&s, response, 0).await;
        // A callback without the pending cookie is refused too.
        let response = call_back(&s, "", &attempt.callback).await;
        assert_refused(&s, response, 0).await;
    }
    assert_eq!(fake.tokens_issued(), 0, "the code was never redeemed");
}

/// A completed callback replayed (its cookie and URL captured), on the same server
/// and on a replica sharing the database: refused, even by a provider lax enough to
/// redeem a code twice.
#[tokio::test]
async fn a_replayed_callback_signs_nobody_in() {
    let fake = FakeOidc::start().await;
    fake.state
        .reusable_codes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for (i, s) in servers(&fake).await.into_iter().enumerate() {
        let attempt = begin(&s, "%2F").await;
        let response = call_back(&s, &attempt.cookie, &attempt.callback).await;
        assert_eq!(location(&response), "/", "{:?}", fake.refusals());
        assert_eq!(signed_in_sessions(&s).await, 1);

        let replay = call_back(&s, &attempt.cookie, &attempt.callback).await;
        assert_refused(&s, replay, 1).await;

        let replica = server_on(
            &fake,
            TestDb::attach(&s.db.url).await,
            s.key.clone(),
            |_| {},
        )
        .await;
        let replay = call_back(&replica, &attempt.cookie, &attempt.callback).await;
        assert_refused(&replica, replay, 1).await;
        assert_eq!(
            fake.tokens_issued(),
            i + 1,
            "replays never reach the provider"
        );
        replica.stop().await;
    }
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    token_refused(json!({"nonce": "not-this-sign-in"}), Signing::Rs256).await;
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    token_refused(json!({"email_verified": false}), Signing::Rs256).await;
}

#[tokio::test]
async fn an_email_not_said_to_be_verified_is_refused() {
    token_refused(json!({"email_verified": null}), Signing::Rs256).await;
}

/// `PASSHOOK_OIDC_TRUST_UNVERIFIED_EMAIL`: a token without the claim signs in, one
/// that says false still does not.
#[tokio::test]
async fn a_trusted_provider_may_omit_email_verified_but_not_deny_it() {
    let fake = FakeOidc::start().await;
    for s in servers_with(&fake, |sso| sso.trust_unverified_email = true).await {
        fake.set_claims(json!({"email_verified": false}));
        let attempt = begin(&s, "%2F").await;
        let response = call_back(&s, &attempt.cookie, &attempt.callback).await;
        assert_refused(&s, response, 0).await;

        fake.set_claims(json!({"email_verified": null}));
        let attempt = begin(&s, "%2F").await;
        let response = call_back(&s, &attempt.cookie, &attempt.callback).await;
        assert_eq!(location(&response), "/");
        assert_eq!(signed_in_sessions(&s).await, 1);
    }
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let now = chrono::Utc::now().timestamp();
    token_refused(json!({"iat": now - 900, "exp": now - 600}), Signing::Rs256).await;
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    token_refused(json!({"aud": "another-client"}), Signing::Rs256).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    token_refused(json!({"iss": "https://other-idp.example"}), Signing::Rs256).await;
}

#[tokio::test]
async fn an_unsigned_id_token_is_refused() {
    token_refused(json!({}), Signing::None).await;
}

#[tokio::test]
async fn an_hs256_id_token_keyed_with_the_client_secret_is_refused() {
    token_refused(json!({}), Signing::Hs256ClientSecret).await;
}

#[tokio::test]
async fn an_id_token_signed_with_a_key_outside_the_jwks_is_refused() {
    token_refused(json!({}), Signing::Rs256UnknownKey).await;
}

/// Anonymous visitors of `/auth/sso/start` cost no session row: the pending sign-in
/// is a cookie, scoped to `/auth/sso`, `HttpOnly`, `SameSite=Lax`, short-lived.
#[tokio::test]
async fn starting_a_sign_in_stores_no_session() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let before = all_sessions(&s).await;
        let mut answers = Vec::new();
        for _ in 0..50 {
            let response = s
                .http
                .get(s.url("/auth/sso/start?next=%2Fpasses"))
                .send()
                .await
                .unwrap();
            answers.push((
                response.status(),
                set_cookie(&response, SESSION_COOKIE),
                set_cookie(&response, PENDING_COOKIE),
            ));
        }
        assert_eq!(
            all_sessions(&s).await,
            before,
            "sessions stored by 50 starts"
        );
        for (status, session, pending) in answers {
            assert_eq!(status, 303);
            assert_eq!(session, None);
            let cookie = pending.expect("a pending cookie");
            for attribute in ["HttpOnly", "SameSite=Lax", "Path=/auth/sso", "Max-Age=600"] {
                assert!(cookie.contains(attribute), "{attribute} in {cookie}");
            }
            assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
            // Sealed: neither the verifier nor the page to land on can be read.
            assert!(!pair(&cookie).contains("passes"), "{cookie}");
        }
        assert_eq!(before, 0);
    }
}

/// A pending cookie altered by the browser is refused like a missing one.
#[tokio::test]
async fn a_tampered_pending_cookie_is_refused() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let attempt = begin(&s, "%2F").await;
        let (name, value) = attempt.cookie.split_once('=').unwrap();
        let mut bytes = value.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        let response = call_back(&s, &tampered, &attempt.callback).await;
        assert_refused(&s, response, 0).await;
    }
    assert_eq!(fake.tokens_issued(), 0);
}

/// Where a browser goes with this `Location`: it drops tabs and newlines and reads
/// `\` as `/` (the WHATWG URL parser, as `Url::join` implements it).
fn resolved(s: &TestServer, location: &str) -> Url {
    Url::parse(&s.url("/")).unwrap().join(location).unwrap()
}

/// `next` with control characters, spaces or backslashes never leads off-site and
/// never breaks the callback.
#[tokio::test]
async fn next_paths_never_leave_the_origin() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let origin = Url::parse(&s.url("/")).unwrap().origin();
        let mut signed_in = 0;
        for next in [
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0D%0A/evil.example",
            "%2F%09%2Fevil.example",
            "/%20/evil.example",
            "/%5Cevil.example",
            "%5C%5Cevil.example",
            "//evil.example",
            "https://evil.example/",
            "/%E2%80%A8/evil.example",
            "/%C3%A9",
        ] {
            let attempt = begin(&s, next).await;
            let response = call_back(&s, &attempt.cookie, &attempt.callback).await;
            assert_eq!(response.status(), 303, "next={next}");
            let to = location(&response);
            assert_eq!(
                resolved(&s, &to).origin(),
                origin,
                "next={next} went to {to}"
            );
            assert_eq!(to, "/", "next={next}");
            signed_in += 1;
            assert_eq!(signed_in_sessions(&s).await, signed_in);
        }
    }
}

/// Behind HTTPS the pending cookie is `Secure`, like the session cookie.
#[tokio::test]
async fn the_pending_cookie_is_secure_when_the_console_is_https() {
    let fake = FakeOidc::start().await;
    let s = TestServer::start_with(TestDb::sqlite().await, MasterKey::generate(), |config| {
        config.public_url = "https://passhook.example".into();
        config.sso = Some(fake.config(&config.public_url));
    })
    .await;
    let response = s.http.get(s.url("/auth/sso/start")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = set_cookie(&response, PENDING_COOKIE).expect("a pending cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let to = location(&response);
    assert!(
        to.contains("redirect_uri=https%3A%2F%2Fpasshook.example%2Fauth%2Fsso%2Fcallback"),
        "{to}"
    );
}

/// The pending sign-in's expiry is sealed inside the cookie: a copy kept past its
/// `Max-Age` is refused, though intact. (The test re-seals the cookie's contents
/// with the server's key, as only the server could.)
#[tokio::test]
async fn a_pending_cookie_kept_past_its_expiry_is_refused() {
    let fake = FakeOidc::start().await;
    for s in servers(&fake).await {
        let attempt = begin(&s, "%2F").await;
        let key = cookie::Key::derive_from(&s.key.derive_key("sso/pending-sign-in-cookie"));
        let reseal = |expires_at: i64| {
            let mut jar = cookie::CookieJar::new();
            jar.add_original(cookie::Cookie::parse(attempt.cookie.clone()).unwrap());
            let opened = jar
                .private(&key)
                .get(PENDING_COOKIE)
                .expect("the server's seal");
            let mut started: Value = serde_json::from_str(opened.value()).unwrap();
            assert!(started["expires_at"].as_i64().unwrap() > domain::clock::now_ms());
            started["expires_at"] = json!(expires_at);
            jar.private_mut(&key)
                .add(cookie::Cookie::new(PENDING_COOKIE, started.to_string()));
            pair(&jar.delta().next().unwrap().to_string())
        };
        let expired = reseal(domain::clock::now_ms() - 1);
        let response = call_back(&s, &expired, &attempt.callback).await;
        assert_refused(&s, response, 0).await;
        assert_eq!(fake.tokens_issued(), 0);

        // The same sign-in, re-sealed with time left, goes through: the refusal was
        // the expiry's.
        let fresh = reseal(domain::clock::now_ms() + 60_000);
        let response = call_back(&s, &fresh, &attempt.callback).await;
        assert_eq!(location(&response), "/", "{:?}", fake.refusals());
        assert_eq!(signed_in_sessions(&s).await, 1);
        fake.state
            .tokens_issued
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The fake provider is as strict as a real one, so the tests above cannot pass by
/// agreeing with a mistake of ours: token requests need the authorization-code
/// grant, client authentication, the authorization request's redirect URI and the
/// PKCE verifier, and a code is redeemed once.
#[tokio::test]
async fn the_fake_provider_refuses_token_requests_a_real_one_would() {
    use base64::Engine;
    use sha2::Digest;
    use support::oidc::{CLIENT_ID, CLIENT_SECRET};

    let fake = FakeOidc::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "a-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/auth/sso/callback";
    let authorize = |challenge: &str| {
        let mut url = Url::parse(&format!("{}/authorize", fake.url)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("scope", "openid email")
            .append_pair("state", "s")
            .append_pair("nonce", "n")
            .append_pair("redirect_uri", redirect)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        url
    };
    let response = http.get(authorize("")).send().await.unwrap();
    assert_eq!(response.status(), 400, "PKCE is required");
    let new_code = || async {
        let response = http.get(authorize(&challenge)).send().await.unwrap();
        let back = Url::parse(&location(&response)).unwrap();
        let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        code.into_owned()
    };
    let token = format!("{}/token", fake.url);
    let send = |form: Vec<(&'static str, String)>, auth: Option<(&str, &str)>| {
        let mut request = http.post(&token).form(&form);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let client = Some((CLIENT_ID, CLIENT_SECRET));
    // (what is wrong, the form's change, the client's credentials, the refusal)
    let cases = [
        (
            "no client authentication",
            None,
            None,
            "client authentication",
        ),
        (
            "a wrong client secret",
            None,
            Some((CLIENT_ID, "guessed")),
            "client authentication",
        ),
        (
            "another client",
            None,
            Some(("other-client", CLIENT_SECRET)),
            "client authentication",
        ),
        (
            "another grant",
            Some(("grant_type", "client_credentials")),
            client,
            "grant_type",
        ),
        (
            "no code verifier",
            Some(("code_verifier", "")),
            client,
            "code_verifier",
        ),
        (
            "a wrong code verifier",
            Some((
                "code_verifier",
                "another-verifier-of-enough-length-0123456789",
            )),
            client,
            "code_verifier does not match",
        ),
        (
            "another redirect URI",
            Some(("redirect_uri", "http://127.0.0.1:9/elsewhere")),
            client,
            "redirect_uri differs",
        ),
        (
            "an unknown code",
            Some(("code", "code-made-up")),
            client,
            "unknown code",
        ),
    ];
    for (what, change, auth, refusal) in cases {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", new_code().await),
            ("redirect_uri", redirect.to_string()),
            ("code_verifier", verifier.to_string()),
        ];
        if let Some((name, value)) = change {
            form.retain(|(k, _)| *k != name);
            if !value.is_empty() {
                form.push((name, value.to_string()));
            }
        }
        let response = send(form, auth).await.unwrap();
        assert!(
            response.status().is_client_error(),
            "{what}: {}",
            response.status()
        );
        let reason = fake.refusals().pop().unwrap();
        assert!(reason.contains(refusal), "{what}: refused for {reason}");
    }
    assert_eq!(fake.tokens_issued(), 0);

    let form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", new_code().await),
        ("redirect_uri", redirect.to_string()),
        ("code_verifier", verifier.to_string()),
    ];
    let first = send(form.clone(), client).await.unwrap();
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert!(body["id_token"].is_string());
    let again = send(form, client).await.unwrap();
    assert_eq!(again.status(), 400, "a code is redeemed once");
    assert!(fake.refusals().pop().unwrap().contains("already used"));
}
