//! Domain behaviour against real databases: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set (`make test` sets it).

use domain::api_keys::{self, Denied, Scope};
use domain::key_cache::KeyCache;
use domain::passes::{self, Cause, Identifiers, NewPass, PassFilter};
use domain::testing::TestDb;
use domain::users::{self, Role};
use domain::{tenants, DomainError};
use serde_json::{json, Value};

fn new_pass(email: &str, custom_id: &str, data: Value) -> NewPass {
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), email.into());
    identifiers.insert("customId".into(), custom_id.into());
    NewPass {
        pass_type: "loyalty".into(),
        identifiers,
        additional_data: data.as_object().unwrap().clone(),
        ..Default::default()
    }
}

fn by(name: &str, value: &str) -> PassFilter {
    PassFilter {
        identifiers: vec![(name.into(), value.into())],
        ..Default::default()
    }
}

#[tokio::test]
async fn passes_are_created_read_and_patched_with_version_rules() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        let pass = passes::create(
            db,
            "acme",
            new_pass("Ann@Example.com", "C1", json!({"points": 1})),
        )
        .await
        .unwrap();
        assert_eq!(pass.version, 1);
        assert_eq!(passes::get(db, "acme", &pass.id).await.unwrap(), pass);

        let cause = Cause::new("api", Some("key_test"));
        let same = passes::patch(
            db,
            "acme",
            &pass.id,
            json!({"points": 1}).as_object().unwrap(),
            &cause,
        )
        .await
        .unwrap();
        assert_eq!(
            same.pass.version,
            1,
            "{:?}: no change, no new version",
            t.backend()
        );
        assert!(same.changes.is_empty());

        let changed = passes::patch(
            db,
            "acme",
            &pass.id,
            json!({"points": 5, "tier": "gold"}).as_object().unwrap(),
            &cause,
        )
        .await
        .unwrap();
        assert_eq!(changed.pass.version, 2);
        assert_eq!(
            changed.pass.additional_data,
            *json!({"points": 5, "tier": "gold"}).as_object().unwrap()
        );

        let removed = passes::patch(
            db,
            "acme",
            &pass.id,
            json!({"tier": null}).as_object().unwrap(),
            &cause,
        )
        .await
        .unwrap();
        assert_eq!(removed.pass.version, 3);
        assert_eq!(
            removed.pass.additional_data,
            *json!({"points": 5}).as_object().unwrap()
        );
        assert_eq!(
            passes::get(db, "acme", &pass.id).await.unwrap(),
            removed.pass
        );

        let history = passes::versions(db, "acme", &pass.id).await.unwrap();
        assert_eq!(
            history.iter().map(|v| v.version).collect::<Vec<_>>(),
            [3, 2]
        );
        assert_eq!(history[0].changes[0].key, "tier");
        assert_eq!(history[0].cause.actor.as_deref(), Some("key_test"));
    }
}

#[tokio::test]
async fn invalid_patches_and_unknown_passes_are_refused() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        let pass = passes::create(db, "acme", new_pass("a@b.c", "C1", json!({})))
            .await
            .unwrap();
        let cause = Cause::new("api", None);
        let err = passes::patch(
            db,
            "acme",
            &pass.id,
            json!({"x": [1]}).as_object().unwrap(),
            &cause,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(ref f) if f[0].field == "additionalData.x"));
        let err = passes::patch(
            db,
            "acme",
            "pass_nope",
            json!({"x": 1}).as_object().unwrap(),
            &cause,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DomainError::NotFound("pass")));
    }
}

#[tokio::test]
async fn concurrent_patches_never_lose_an_update() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        let pass = passes::create(db, "acme", new_pass("a@b.c", "C1", json!({})))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (db, id) = (db.clone(), pass.id.clone());
                tokio::spawn(async move {
                    let change = json!({ format!("k{i}"): i });
                    passes::patch(
                        &db,
                        "acme",
                        &id,
                        change.as_object().unwrap(),
                        &Cause::new("api", None),
                    )
                    .await
                    .unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let now = passes::get(db, "acme", &pass.id).await.unwrap();
        assert_eq!(now.version, 9, "{:?}", t.backend());
        assert_eq!(now.additional_data.len(), 8);
    }
}

#[tokio::test]
async fn identifiers_match_by_the_contract_rules_and_stay_in_their_tenant() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        tenants::create(db, "other", "Other").await.unwrap();
        let ann = passes::create(db, "acme", new_pass("  Ann@Example.COM", "C-1", json!({})))
            .await
            .unwrap();
        passes::create(db, "acme", new_pass("bob@example.com", "C-2", json!({})))
            .await
            .unwrap();
        passes::create(db, "other", new_pass("ann@example.com", "C-1", json!({})))
            .await
            .unwrap();

        let found = passes::search(db, "acme", &by("email", "ann@example.com "), None, 50)
            .await
            .unwrap();
        assert_eq!(
            found.items.iter().map(|p| &p.id).collect::<Vec<_>>(),
            [&ann.id]
        );
        let found = passes::search(db, "acme", &by("customId", "C-1"), None, 50)
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1);
        let found = passes::search(db, "acme", &by("customId", "c-1"), None, 50)
            .await
            .unwrap();
        assert!(found.items.is_empty(), "other identifiers match exactly");

        let typed = PassFilter {
            pass_type: Some("coupon".into()),
            ..by("customId", "C-1")
        };
        assert!(passes::search(db, "acme", &typed, None, 50)
            .await
            .unwrap()
            .items
            .is_empty());
        let err = passes::get(db, "other", &ann.id).await.unwrap_err();
        assert!(
            matches!(err, DomainError::NotFound(_)),
            "no pass leaks across tenants"
        );
    }
}

#[tokio::test]
async fn search_pages_with_a_cursor_and_the_console_pages_by_number() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        for i in 0..7 {
            passes::create(
                db,
                "acme",
                new_pass(&format!("p{i}@x.io"), &format!("C{i}"), json!({})),
            )
            .await
            .unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = passes::search(db, "acme", &PassFilter::default(), cursor.as_deref(), 3)
                .await
                .unwrap();
            seen.extend(page.items.into_iter().map(|p| p.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 7, "no pass twice across pages");

        let text = PassFilter {
            text: Some("P3@X".into()),
            ..Default::default()
        };
        let (items, total) = passes::list_page(db, "acme", &text, 0, 10).await.unwrap();
        assert_eq!((items.len(), total), (1, 1));
        let (items, total) = passes::list_page(db, "acme", &PassFilter::default(), 5, 5)
            .await
            .unwrap();
        assert_eq!((items.len(), total), (2, 7));
    }
}

#[tokio::test]
async fn api_keys_are_hashed_scoped_and_revocable() {
    for t in TestDb::all().await {
        let db = &t.db;
        let keys = KeyCache::default();
        tenants::create(db, "acme", "Acme").await.unwrap();
        let (info, key) =
            api_keys::create(db, "acme", "listener", &[Scope::ActitoListenerWrite], None)
                .await
                .unwrap();
        let (hash,): (String,) = sqlx::query_as("SELECT key_hash FROM api_keys WHERE id = $1")
            .bind(&info.id)
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert!(
            !hash.contains(&key) && hash.len() == 64,
            "only a hash is stored"
        );

        let who = api_keys::identify(db, &keys, &key)
            .await
            .unwrap()
            .expect("key is known");
        assert_eq!(who.authorize("acme", Scope::ActitoListenerWrite), Ok(()));
        assert_eq!(
            who.authorize("acme", Scope::PassesRead),
            Err(Denied::MissingScope)
        );
        assert_eq!(
            who.authorize("other", Scope::ActitoListenerWrite),
            Err(Denied::OtherTenant)
        );
        assert!(api_keys::identify(db, &keys, "phk_unknown")
            .await
            .unwrap()
            .is_none());

        assert!(api_keys::revoke(db, &keys, "other", &info.id, None)
            .await
            .is_err());
        api_keys::revoke(db, &keys, "acme", &info.id, None)
            .await
            .unwrap();
        assert!(api_keys::identify(db, &keys, &key).await.unwrap().is_none());
        assert!(api_keys::list(db, "acme").await.unwrap()[0]
            .revoked_at
            .is_some());
    }
}

#[tokio::test]
async fn logins_check_passwords_and_list_memberships() {
    for t in TestDb::all().await {
        let db = &t.db;
        tenants::create(db, "acme", "Acme").await.unwrap();
        tenants::create(db, "beta", "Beta").await.unwrap();
        users::upsert(db, "acme", "Admin@Acme.io", Role::Admin, "long enough pw")
            .await
            .unwrap();
        let user = users::upsert(
            db,
            "beta",
            "admin@acme.io",
            Role::Marketer,
            "long enough pw",
        )
        .await
        .unwrap();
        assert!(users::verify_login(db, "admin@acme.io", "long enough pw")
            .await
            .unwrap()
            .is_some());
        assert!(users::verify_login(db, "admin@acme.io", "wrong password")
            .await
            .unwrap()
            .is_none());
        assert!(users::verify_login(db, "nobody@acme.io", "long enough pw")
            .await
            .unwrap()
            .is_none());
        let roles: Vec<_> = users::memberships(db, &user.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.tenant_id, m.role))
            .collect();
        assert_eq!(
            roles,
            [
                ("acme".into(), Role::Admin),
                ("beta".into(), Role::Marketer)
            ]
        );
        assert!(users::upsert(db, "acme", "x@y.z", Role::Admin, "short")
            .await
            .is_err());
    }
}

#[tokio::test]
async fn demo_seed_is_idempotent() {
    for t in TestDb::all().await {
        let core = domain::Core::new(t.db.clone(), domain::crypto::MasterKey::generate());
        let first = domain::demo::seed(&core, "demo password 1").await.unwrap();
        let second = domain::demo::seed(&core, "demo password 2").await.unwrap();
        assert_eq!(first.passes, 12);
        assert_eq!(second.passes, 12);
        assert_ne!(first.api_key, second.api_key);
        assert!(
            users::verify_login(&t.db, &second.admin_email, "demo password 2")
                .await
                .unwrap()
                .is_some()
        );
    }
}
