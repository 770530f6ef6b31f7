//! What the console relies on, on both backends: key rotation and usage, the
//! settings history, people and roles, sign-in throttling.

use domain::actito::settings::{self as actito, ActitoSettingsInput};
use domain::api_keys::{self, Scope};
use domain::history::{self, Area, MASK};
use domain::key_cache::KeyCache;
use domain::sfmc::settings::{self as sfmc, SfmcSettingsInput, SigningKeyInput};
use domain::testing::TestDb;
use domain::throttle::{self, Admission, Subjects};
use domain::users::{self, Role};
use domain::{tenants, DomainError};

#[tokio::test]
async fn a_rotated_key_works_until_its_grace_period_ends() {
    for t in TestDb::all().await {
        let db = &t.db;
        let keys = KeyCache::default();
        tenants::create(db, "acme", "Acme").await.unwrap();
        let (old, old_key) = api_keys::create(
            db,
            "acme",
            "actito",
            &[Scope::ActitoListenerWrite],
            Some("a@x.io"),
        )
        .await
        .unwrap();
        let (new, new_key) = api_keys::rotate(db, &keys, "acme", &old.id, 60_000, Some("a@x.io"))
            .await
            .unwrap();
        assert_eq!((new.name.as_str(), &new.scopes), ("actito", &old.scopes));
        assert!(
            api_keys::identify(db, &keys, &old_key)
                .await
                .unwrap()
                .is_some(),
            "old key in its grace period"
        );
        assert!(api_keys::identify(db, &keys, &new_key)
            .await
            .unwrap()
            .is_some());

        // End the grace period now, as another replica would see it: only the new key
        // works once this process's cached identity has lapsed.
        domain::sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
            .bind(&old.id)
            .execute(db.writer())
            .await
            .unwrap();
        tokio::time::sleep(domain::key_cache::TTL).await;
        assert!(api_keys::identify(db, &keys, &old_key)
            .await
            .unwrap()
            .is_none());
        assert!(
            api_keys::rotate(db, &keys, "acme", &old.id, 0, None)
                .await
                .is_err(),
            "an expired key cannot be rotated"
        );

        // Without a grace period the old key stops at once.
        let (_, newest_key) = api_keys::rotate(db, &keys, "acme", &new.id, 0, None)
            .await
            .unwrap();
        assert!(api_keys::identify(db, &keys, &new_key)
            .await
            .unwrap()
            .is_none());
        assert!(api_keys::identify(db, &keys, &newest_key)
            .await
            .unwrap()
            .is_some());
        assert!(
            api_keys::rotate(db, &keys, "acme", &new.id, api_keys::MAX_GRACE_MS + 1, None)
                .await
                .is_err()
        );

        let summaries: Vec<String> = history::list(db, "acme", Some(Area::ApiKeys), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.summary)
            .collect();
        assert_eq!(summaries.len(), 3, "{summaries:?}");
        assert!(
            summaries[2].starts_with("Created API key “actito”"),
            "{summaries:?}"
        );
        assert!(summaries[0].starts_with("Rotated API key"), "{summaries:?}");
    }
}

#[tokio::test]
async fn key_use_is_noted_with_time_and_address() {
    for t in TestDb::all().await {
        let db = &t.db;
        let keys = KeyCache::default();
        tenants::create(db, "acme", "Acme").await.unwrap();
        let (info, key) = api_keys::create(db, "acme", "k", &[Scope::PassesRead], None)
            .await
            .unwrap();
        let who = api_keys::identify(db, &keys, &key).await.unwrap().unwrap();
        assert!(who.use_note_due(domain::clock::now_ms()));
        api_keys::note_use(db, &keys, &info.id, Some("203.0.113.7"))
            .await
            .unwrap();
        let who = api_keys::identify(db, &keys, &key).await.unwrap().unwrap();
        assert!(
            !who.use_note_due(domain::clock::now_ms()),
            "noted at most once a minute"
        );
        let listed = &api_keys::list(db, "acme").await.unwrap()[0];
        assert_eq!(listed.last_used_ip.as_deref(), Some("203.0.113.7"));
        assert!(listed.last_used_at.is_some());
    }
}

fn actito_input(entity: &str, api_key: Option<&str>) -> ActitoSettingsInput {
    ActitoSettingsInput {
        entity: entity.into(),
        api_key: api_key.map(str::to_string),
        profile_table_id: "7".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn integration_changes_are_recorded_without_secrets() {
    for t in TestDb::all().await {
        let core = t.core();
        tenants::create(&core.db, "acme", "Acme").await.unwrap();
        actito::put(
            core.vault(),
            core.outbound.private_hosts(),
            "acme",
            actito_input("acme", Some("first-secret-key")),
            "admin@acme.io",
        )
        .await
        .unwrap();
        actito::put(
            core.vault(),
            core.outbound.private_hosts(),
            "acme",
            actito_input("acme-eu", None),
            "admin@acme.io",
        )
        .await
        .unwrap();
        actito::put(
            core.vault(),
            core.outbound.private_hosts(),
            "acme",
            actito_input("acme-eu", None),
            "admin@acme.io",
        )
        .await
        .unwrap();
        actito::put(
            core.vault(),
            core.outbound.private_hosts(),
            "acme",
            actito_input("acme-eu", Some("second-secret-key")),
            "ops@acme.io",
        )
        .await
        .unwrap();

        let entries = history::list(&core.db, "acme", Some(Area::Actito), 10)
            .await
            .unwrap();
        assert_eq!(
            entries.len(),
            3,
            "saving unchanged settings records nothing"
        );
        assert_eq!(entries[0].actor, "ops@acme.io");
        let key_change = entries[0]
            .changes
            .iter()
            .find(|c| c.field == "apiKey")
            .unwrap();
        assert_eq!(
            (key_change.before.as_deref(), key_change.after.as_deref()),
            (Some(MASK), Some(MASK))
        );
        assert_eq!(entries[1].changes.len(), 1);
        assert_eq!(entries[1].changes[0].field, "entity");
        assert_eq!(entries[1].changes[0].after.as_deref(), Some("acme-eu"));
        assert_eq!(entries[2].summary, "Connected Actito");
        let all = serde_json::to_string(&history::list(&core.db, "acme", None, 50).await.unwrap())
            .unwrap();
        assert!(
            !all.contains("secret-key"),
            "no secret in the history: {all}"
        );

        let key = |id: &str, secret: Option<&str>| SigningKeyInput {
            id: id.into(),
            secret: secret.map(str::to_string),
        };
        let keys = |k: Vec<SigningKeyInput>| SfmcSettingsInput {
            signing_keys: k,
            customer_key: None,
            when_no_pass: None,
        };
        sfmc::put(
            core.vault(),
            "acme",
            keys(vec![key("one", Some("salt-one-of-16-bytes"))]),
            "a",
        )
        .await
        .unwrap();
        sfmc::put(
            core.vault(),
            "acme",
            keys(vec![
                key("one", None),
                key("two", Some("salt-two-of-16-bytes")),
            ]),
            "a",
        )
        .await
        .unwrap();
        sfmc::put(core.vault(), "acme", keys(vec![key("two", None)]), "a")
            .await
            .unwrap();
        let entries = history::list(&core.db, "acme", Some(Area::Sfmc), 10)
            .await
            .unwrap();
        let fields: Vec<(String, Option<String>, Option<String>)> = entries
            .iter()
            .flat_map(|e| {
                e.changes
                    .iter()
                    .map(|c| (c.field.clone(), c.before.clone(), c.after.clone()))
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                ("signing key one".into(), Some(MASK.into()), None),
                ("signing key two".into(), None, Some(MASK.into())),
                ("signing key one".into(), None, Some(MASK.into())),
            ]
        );
    }
}

#[tokio::test]
async fn admins_manage_people_but_a_tenant_keeps_an_admin() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        let admin = users::upsert(db, "acme", "admin@acme.io", Role::Admin, "long enough pw")
            .await
            .unwrap();
        let added = users::add_member(db, "acme", " Mia@Acme.io ", Role::Marketer)
            .await
            .unwrap();
        assert!(
            matches!(added, users::Added::Invited { .. }),
            "a new account"
        );
        let sso = added.member().clone();
        assert_eq!(
            (sso.email.as_str(), sso.role, sso.has_password),
            ("mia@acme.io", Role::Marketer, false)
        );
        assert!(
            users::verify_login(db, "mia@acme.io", "")
                .await
                .unwrap()
                .is_none(),
            "no password, no local sign-in"
        );

        assert!(matches!(
            users::set_role(db, "acme", &admin.id, Role::Marketer).await,
            Err(DomainError::Conflict(_))
        ));
        assert!(matches!(
            users::set_disabled(db, "acme", &admin.id, true).await,
            Err(DomainError::Conflict(_))
        ));
        users::set_role(db, "acme", &sso.user_id, Role::Admin)
            .await
            .unwrap();
        users::set_disabled(db, "acme", &admin.id, true)
            .await
            .unwrap();
        assert!(
            users::memberships(db, &admin.id).await.unwrap().is_empty(),
            "a disabled member loses the tenant"
        );
        let members = users::members(db, "acme").await.unwrap();
        assert_eq!(members.len(), 2);
        assert!(members.iter().any(|m| m.user_id == admin.id && m.disabled));
    }
}

#[tokio::test]
async fn passwords_change_and_sessions_end_everywhere() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        let user = users::upsert(db, "acme", "a@acme.io", Role::Admin, "first password")
            .await
            .unwrap();
        assert_eq!(user.sessions_valid_from, 0);
        assert!(matches!(
            users::change_password(db, &user.id, "wrong password", "second password").await,
            Err(DomainError::Invalid(_))
        ));
        assert!(matches!(
            users::change_password(db, &user.id, "first password", "short").await,
            Err(DomainError::Invalid(_))
        ));
        users::change_password(db, &user.id, "first password", "second password")
            .await
            .unwrap();
        assert!(users::verify_login(db, "a@acme.io", "first password")
            .await
            .unwrap()
            .is_none());
        let again = users::verify_login(db, "a@acme.io", "second password")
            .await
            .unwrap()
            .unwrap();
        assert!(again.sessions_valid_from > 0, "older sessions are void");
        users::sign_out_everywhere(db, &user.id).await.unwrap();
        assert!(
            users::get(db, &user.id)
                .await
                .unwrap()
                .unwrap()
                .sessions_valid_from
                >= again.sessions_valid_from
        );
    }
}

#[tokio::test]
async fn repeated_failures_lock_an_account_for_a_while() {
    for t in TestDb::all().await {
        let db = &t.db;
        let guessed = Subjects::new("Admin@acme.io", Some("198.51.100.1"));
        let other = Subjects::new("other@acme.io", Some("198.51.100.1"));
        for _ in 0..throttle::MAX_PER_ACCOUNT {
            assert!(matches!(
                throttle::admit(db, &guessed).await.unwrap(),
                Admission::Admitted(_)
            ));
        }
        let wait = throttle::admit(db, &Subjects::new("admin@acme.io", None))
            .await
            .unwrap();
        assert!(
            matches!(wait, Admission::Locked { wait_secs } if wait_secs > 800 && wait_secs <= 900),
            "{wait:?}"
        );
        let Admission::Admitted(attempt) = throttle::admit(db, &other).await.unwrap() else {
            panic!("other accounts on the address still may");
        };
        throttle::succeeded(db, &other, attempt).await.unwrap();
        // Thirty successful sign-ins from one address never lock it.
        for _ in 0..throttle::MAX_PER_ADDRESS {
            let Admission::Admitted(attempt) = throttle::admit(db, &other).await.unwrap() else {
                panic!("successes are not failures");
            };
            throttle::succeeded(db, &other, attempt).await.unwrap();
        }
        assert!(
            matches!(
                throttle::admit(db, &guessed).await.unwrap(),
                Admission::Locked { .. }
            ),
            "the guessed account stays locked"
        );
    }
}

/// 40 attempts at once: exactly the limit's worth are admitted (each counted before
/// its password would be checked), on SQLite and on PostgreSQL's many connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_attempts_gets_exactly_the_limit() {
    for t in TestDb::all().await {
        // Every connection of the pool open first, so the attempts really overlap.
        let warm = (0..16).map(|_| {
            let db = t.db.clone();
            tokio::spawn(async move {
                domain::sqlx::query("SELECT 1")
                    .execute(db.writer())
                    .await
                    .unwrap();
            })
        });
        for w in warm.collect::<Vec<_>>() {
            w.await.unwrap();
        }
        let attempts = (0..40)
            .map(|n| {
                let db = t.db.clone();
                // Different addresses: only the account's limit applies.
                let subjects = Subjects::new("burst@acme.io", Some(&format!("198.51.100.{n}")));
                tokio::spawn(async move { throttle::admit(&db, &subjects).await.unwrap() })
            })
            .collect::<Vec<_>>();
        let mut admitted = 0;
        for attempt in attempts {
            if matches!(attempt.await.unwrap(), Admission::Admitted(_)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, throttle::MAX_PER_ACCOUNT, "{:?}", t.db.backend());
    }
}

/// Adding an email that already has an account never touches that account: its
/// password, sessions and other tenants stay; it only joins this tenant.
#[tokio::test]
async fn adding_an_existing_account_only_adds_a_membership() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        tenants::create(db, "evil", "Evil").await.unwrap();
        let victim = users::upsert(db, "acme", "boss@acme.io", Role::Admin, "the boss password")
            .await
            .unwrap();
        users::sign_out_everywhere(db, &victim.id).await.unwrap();
        let before = users::get(db, &victim.id).await.unwrap().unwrap();

        let added = users::add_member(db, "evil", "BOSS@acme.io", Role::Marketer)
            .await
            .unwrap();
        assert!(matches!(added, users::Added::Joined(_)), "{added:?}");
        assert_eq!(users::get(db, &victim.id).await.unwrap(), Some(before));
        assert!(users::verify_login(db, "boss@acme.io", "the boss password")
            .await
            .unwrap()
            .is_some());
        let roles: Vec<_> = users::memberships(db, &victim.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.tenant_id, m.role))
            .collect();
        assert_eq!(
            roles,
            [
                ("acme".into(), Role::Admin),
                ("evil".into(), Role::Marketer)
            ]
        );
        assert!(
            matches!(
                users::add_member(db, "evil", "boss@acme.io", Role::Admin).await,
                Err(DomainError::Conflict(_))
            ),
            "adding again changes nothing"
        );
    }
}

/// A set-up link gives a new account its first password, once; it never works for an
/// account that has a password or that another tenant has added meanwhile.
#[tokio::test]
async fn set_up_links_work_once_and_only_for_their_tenant() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        tenants::create(db, "other", "Other").await.unwrap();
        let token = |added: users::Added| match added {
            users::Added::Invited { setup_token, .. } => setup_token,
            joined => panic!("expected a new account: {joined:?}"),
        };
        let mia = token(
            users::add_member(db, "acme", "mia@acme.io", Role::Marketer)
                .await
                .unwrap(),
        );
        assert!(matches!(
            users::set_up_password(db, &mia, "short").await,
            Err(DomainError::Invalid(_))
        ));
        let user = users::set_up_password(db, &mia, "mia's own password")
            .await
            .unwrap();
        assert!(user.sessions_valid_from > 0);
        assert!(users::verify_login(db, "mia@acme.io", "mia's own password")
            .await
            .unwrap()
            .is_some());
        assert!(
            matches!(
                users::set_up_password(db, &mia, "someone else's password").await,
                Err(DomainError::Conflict(_))
            ),
            "a used link"
        );

        // Acme keeps Noor's link; Other adds Noor too: the link no longer works.
        let noor = token(
            users::add_member(db, "acme", "noor@acme.io", Role::Admin)
                .await
                .unwrap(),
        );
        let joined = users::add_member(db, "other", "noor@acme.io", Role::Admin)
            .await
            .unwrap();
        assert!(matches!(joined, users::Added::Joined(_)));
        assert!(users::setup_link(db, &noor).await.unwrap().is_none());
        assert!(matches!(
            users::set_up_password(db, &noor, "acme's chosen password").await,
            Err(DomainError::Conflict(_))
        ));
        assert!(users::setup_link(db, "not-a-token")
            .await
            .unwrap()
            .is_none());
    }
}
