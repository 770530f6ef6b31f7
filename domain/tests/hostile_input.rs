//! Property tests of the parsers that face the internet: Actito envelopes, SFMC
//! `inArguments` and SFMC's JWTs. Whatever arrives, they answer (never panic), and
//! what is invalid is refused; a token signed with an active key is accepted.
//!
//! Inputs are arbitrary bytes, and arbitrary JSON shapes grown from the real Actito
//! samples (`fixtures/actito/`) and a Journey Builder `execute` payload, with
//! fields replaced, removed or added.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::actito::envelope::{self, EnvelopeError};
use domain::sfmc::activity;
use domain::sfmc::jwt::{self, JwtError, SigningKey};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sha2::Sha256;

const SAMPLES: [&str; 9] = [
    "custom-action-trigger-bulk.json",
    "custom-action-trigger-one-by-one.json",
    "custom-table-create-bulk.json",
    "custom-table-update-one-by-one.json",
    "etl-finished-bulk.json",
    "etl-finished-one-by-one.json",
    "export-finished-one-by-one.json",
    "profile-create-bulk.json",
    "profile-create-one-by-one.json",
];

fn sample(name: &str) -> Value {
    let path = format!("{}/../fixtures/actito/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A Journey Builder `execute` call's claims, as SFMC sends them.
fn execute_claims() -> Value {
    json!({
        "inArguments": [
            {"email": "ann@example.com", "customId": "C-1"},
            {"identifiers": {"loyaltyId": "L-1"}, "identifiers.memberNo": "M-7"},
            {"additionalData": "{\"points\": 10}", "additionalData.tier": "gold", "passType": "loyalty"},
            {"message": "You have 10 points", "passId": "pass_01hzzzzzzzzzzzzzzzzzzzzzzz"}
        ],
        "outArguments": [],
        "activityObjectID": "a1b2c3",
        "journeyId": "journey-1",
        "activityId": "activity-1",
        "definitionInstanceId": "instance-1",
        "activityInstanceId": "ai-1",
        "keyValue": "contact-1",
        "mode": 0
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        // A failure is reported with its input; no files are written beside the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, small.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        // Strings that look like what the parsers look for.
        prop_oneof![
            Just(""),
            Just("   "),
            Just("PROFILE_TABLE"),
            Just("CREATE"),
            Just("UPDATE"),
            Just("{\"a\": 1}"),
            Just("[1]"),
            Just("{"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Keys the parsers care about, and others.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id".to_string()),
        Just("data".to_string()),
        Just("tableType".to_string()),
        Just("operation".to_string()),
        Just("profileId".to_string()),
        Just("_links".to_string()),
        Just("actionParameters.passId".to_string()),
        Just("actionParameters.message".to_string()),
        Just("profileAttributes.emailAddress".to_string()),
        Just("inArguments".to_string()),
        Just("identifiers".to_string()),
        Just("identifiers.".to_string()),
        Just("additionalData".to_string()),
        Just("additionalData.points".to_string()),
        Just("passId".to_string()),
        Just("email".to_string()),
        "[a-zA-Z._]{0,10}",
    ]
}

/// Every place in `value` (as a list of steps) where a mutation can happen.
fn places(value: &Value, here: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let mut next = here.clone();
                next.push(Step::Key(k.clone()));
                places(v, next, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut next = here.clone();
                next.push(Step::Index(i));
                places(v, next, out);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Mutation {
    Replace(Value),
    Remove,
    Insert(String, Value),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        arb_json().prop_map(Mutation::Replace),
        Just(Mutation::Remove),
        (arb_key(), arb_json()).prop_map(|(k, v)| Mutation::Insert(k, v)),
    ]
}

/// Applies `mutation` at the place chosen by `choice`.
fn mutate(value: &mut Value, choice: usize, mutation: &Mutation) {
    let mut all = Vec::new();
    places(value, Vec::new(), &mut all);
    let path = &all[choice % all.len()];
    let (last, parents) = match path.split_last() {
        Some((last, parents)) => (Some(last), parents),
        None => (None, &path[..]),
    };
    let mut parent = &mut *value;
    for step in parents {
        parent = match step {
            Step::Key(k) => parent.get_mut(k.as_str()).unwrap(),
            Step::Index(i) => parent.get_mut(*i).unwrap(),
        };
    }
    match (mutation, last) {
        (Mutation::Replace(new), None) => *parent = new.clone(),
        (Mutation::Replace(new), Some(Step::Key(k))) => parent[k.as_str()] = new.clone(),
        (Mutation::Replace(new), Some(Step::Index(i))) => parent[*i] = new.clone(),
        (Mutation::Remove, Some(Step::Key(k))) => {
            parent.as_object_mut().unwrap().remove(k);
        }
        (Mutation::Remove, Some(Step::Index(i))) => {
            parent.as_array_mut().unwrap().remove(*i);
        }
        (Mutation::Remove, None) => *parent = Value::Null,
        (Mutation::Insert(k, v), _) => {
            let target = match last {
                None => parent,
                Some(Step::Key(key)) => &mut parent[key.as_str()],
                Some(Step::Index(i)) => &mut parent[*i],
            };
            if let Value::Object(map) = target {
                map.insert(k.clone(), v.clone());
            } else if let Value::Array(items) = target {
                items.push(v.clone());
            }
        }
    }
}

fn arb_mutations() -> impl Strategy<Value = Vec<(usize, Mutation)>> {
    prop::collection::vec((any::<usize>(), arb_mutation()), 1..4)
}

/// Runs every Actito parser on `body` and checks what holds of their answers.
fn check_envelope(body: &[u8], event_type: &str) -> Result<(), TestCaseError> {
    let read = envelope::custom_actions(body);
    let Ok(parsed) = envelope::parse(body) else {
        // The two readers agree on what is not an envelope.
        prop_assert!(
            matches!(&read, Err(r) if matches!(r.error, EnvelopeError::Malformed(_))),
            "{:?}",
            read
        );
        return Ok(());
    };
    prop_assert!(!parsed.id.trim().is_empty());
    prop_assert!(!parsed.items.is_empty());
    prop_assert!(!parsed.top.contains_key("data"));
    if let Err(refused) = &read {
        prop_assert!(
            !matches!(refused.error, EnvelopeError::Malformed(_)),
            "{:?}",
            refused
        );
    }
    if let Ok(read) = read {
        prop_assert_eq!(&read.id, &parsed.id);
        prop_assert_eq!(read.bulk, parsed.bulk);
        prop_assert_eq!(read.items.len(), parsed.items.len());
        for item in &read.items {
            let changes = item.changes();
            for reserved in ["passId", "passType", "message"] {
                prop_assert!(!changes.contains_key(reserved));
            }
            for value in changes.values() {
                prop_assert!(!value.is_array() && !value.is_object());
            }
            let _ = (item.pass_id(), item.pass_type(), item.message());
        }
    }
    if let Ok(event) = envelope::profile_event(&parsed, event_type) {
        prop_assert_eq!(event.profile_ids.len(), parsed.items.len());
        prop_assert_eq!(event.operation.as_str(), event_type);
        // A profile-table event says so, or says nothing (the seed's schema lists
        // only eventType and operation).
        let table_type = parsed.top.get("tableType").filter(|t| !t.is_null());
        prop_assert!(
            table_type.is_none_or(|t| t == "PROFILE_TABLE"),
            "{table_type:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn actito_parsers_answer_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_envelope(&body, "CREATE")?;
    }

    #[test]
    fn actito_parsers_answer_mutated_samples(
        which in 0..SAMPLES.len(),
        mutations in arb_mutations(),
        event_type in prop_oneof![Just("CREATE".to_string()), Just("UPDATE".to_string()), ".{0,6}"],
    ) {
        let mut value = sample(SAMPLES[which]);
        for (choice, mutation) in &mutations {
            mutate(&mut value, *choice, mutation);
        }
        let body = serde_json::to_vec(&value).unwrap();
        check_envelope(&body, &event_type)?;
    }

    #[test]
    fn actito_refuses_what_is_not_an_envelope(value in arb_json()) {
        // Not an object, or an object without a usable id or data: an error.
        let usable_id = value.get("id").is_some_and(|id| match id {
            Value::String(s) => !s.trim().is_empty(),
            Value::Number(_) => true,
            _ => false,
        });
        let usable_data = match value.get("data") {
            Some(Value::Object(_)) => true,
            Some(Value::Array(items)) => !items.is_empty() && items.iter().all(Value::is_object),
            _ => false,
        };
        let parsed = envelope::parse(&serde_json::to_vec(&value).unwrap());
        if value.is_object() && usable_id && usable_data {
            prop_assert!(parsed.is_ok());
        } else {
            prop_assert!(matches!(parsed, Err(EnvelopeError::Malformed(_))), "{:?}", parsed);
        }
    }

    #[test]
    fn actito_items_of_the_wrong_kind_are_refused(which in 0..SAMPLES.len()) {
        // Samples that are not custom-action triggers never pass as one.
        let parsed = envelope::parse(&serde_json::to_vec(&sample(SAMPLES[which])).unwrap()).unwrap();
        let is_trigger = SAMPLES[which].starts_with("custom-action-trigger");
        let body = serde_json::to_vec(&sample(SAMPLES[which])).unwrap();
        prop_assert_eq!(envelope::custom_actions(&body).is_ok(), is_trigger);
        let is_profile = SAMPLES[which].starts_with("profile-");
        prop_assert_eq!(envelope::profile_event(&parsed, "CREATE").is_ok(), is_profile);
    }

    #[test]
    fn sfmc_arguments_answer_mutated_calls(mutations in arb_mutations()) {
        let mut claims = execute_claims();
        for (choice, mutation) in &mutations {
            mutate(&mut claims, *choice, mutation);
        }
        let _ = activity::JourneyContext::from_claims(&claims);
        match activity::merged_arguments(&claims) {
            Ok(args) => {
                if let Ok(update) = activity::push_update(&args) {
                    for value in update.additional_data.values() {
                        prop_assert!(!value.is_array() && !value.is_object());
                    }
                    let mut sorted = update.identifiers.clone();
                    sorted.sort();
                    sorted.dedup();
                    prop_assert_eq!(&sorted, &update.identifiers);
                    for (name, value) in &update.identifiers {
                        prop_assert!(!name.is_empty() || !value.is_empty());
                    }
                }
            }
            Err(_) => {
                let ok_shape = match claims.get("inArguments") {
                    None | Some(Value::Null) => true,
                    Some(Value::Array(items)) => items.iter().all(Value::is_object),
                    Some(_) => false,
                };
                prop_assert!(!ok_shape, "a well-shaped inArguments was refused");
            }
        }
    }

    #[test]
    fn sfmc_arguments_answer_any_json(claims in arb_json(), args in prop::collection::vec((arb_key(), arb_json()), 0..6)) {
        let _ = activity::JourneyContext::from_claims(&claims);
        if let Ok(merged) = activity::merged_arguments(&claims) {
            let _ = activity::push_update(&merged);
        }
        let args: Map<String, Value> = args.into_iter().collect();
        let _ = activity::push_update(&args);
    }

    #[test]
    fn sfmc_salts_answer_any_text(text in ".{0,40}") {
        if let Ok(bytes) = jwt::secret_bytes(&text) {
            prop_assert!(bytes.len() >= jwt::MIN_SECRET_BYTES);
        }
    }
}

fn keys() -> Vec<SigningKey> {
    vec![
        SigningKey {
            id: "old".into(),
            secret: b"old-signing-secret".to_vec(),
        },
        SigningKey {
            id: "new".into(),
            secret: jwt::secret_bytes("0x6a6f75726e65792d7369676e696e672d736563726574").unwrap(),
        },
    ]
}

/// A compact JWT with exactly this header, signed HS256 with `secret`.
fn raw_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn arb_claims() -> impl Strategy<Value = Value> {
    arb_mutations().prop_map(|mutations| {
        let mut claims = execute_claims();
        for (choice, mutation) in &mutations {
            mutate(&mut claims, *choice, mutation);
        }
        // Claims are an object; `exp` is left to the properties that want it.
        let mut object = match claims {
            Value::Object(map) => map,
            other => Map::from_iter([("inArguments".to_string(), other)]),
        };
        object.remove("exp");
        object.remove("nbf");
        Value::Object(object)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jwt_refuses_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(jwt::verify(&text, &keys()).is_err());
    }

    #[test]
    fn jwt_refuses_dotted_garbage(parts in prop::collection::vec("[A-Za-z0-9_=+/-]{0,40}", 0..5)) {
        prop_assert!(jwt::verify(&parts.join("."), &keys()).is_err());
    }

    #[test]
    fn jwt_signed_with_an_active_key_verifies(claims in arb_claims(), which in 0..2usize, ttl in 60i64..100_000) {
        let keys = keys();
        let mut claims = claims;
        if ttl % 2 == 0 {
            claims["exp"] = json!(chrono::Utc::now().timestamp() + ttl);
        }
        let token = jwt::sign(&claims, &keys[which]);
        let (id, verified) = jwt::verify(&token, &keys).unwrap();
        prop_assert_eq!(id, keys[which].id.clone());
        // The claims as JSON text reads them back (serde_json reads some floats' last
        // digit differently from what it wrote).
        let reread: Value = serde_json::from_str(&claims.to_string()).unwrap();
        prop_assert_eq!(verified, reread);
    }

    #[test]
    fn jwt_refuses_other_algorithms(alg in prop_oneof![
        Just("none".to_string()), Just("None".to_string()), Just("HS384".to_string()),
        Just("HS512".to_string()), Just("RS256".to_string()), Just("ES256".to_string()),
        Just("hs256".to_string()), Just("HS256 ".to_string()), Just(String::new()), ".{0,8}",
    ], claims in arb_claims()) {
        let keys = keys();
        let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims, &keys[1].secret);
        let result = jwt::verify(&token, &keys);
        if alg == "HS256" {
            prop_assert!(result.is_ok());
        } else {
            prop_assert_eq!(result, Err(JwtError::WrongAlgorithm));
        }
    }

    #[test]
    fn jwt_refuses_odd_headers(header in arb_json(), claims in arb_claims()) {
        // Whatever the header holds, only `"alg": "HS256"` can verify.
        let keys = keys();
        let token = raw_token(&header, &claims, &keys[0].secret);
        let result = jwt::verify(&token, &keys);
        if header.get("alg") != Some(&json!("HS256")) {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn jwt_refuses_tokens_signed_with_another_key(claims in arb_claims(), secret in prop::collection::vec(any::<u8>(), 1..40)) {
        let keys = keys();
        prop_assume!(keys.iter().all(|k| k.secret != secret));
        let token = raw_token(&json!({"alg": "HS256", "typ": "JWT"}), &claims, &secret);
        prop_assert_eq!(jwt::verify(&token, &keys), Err(JwtError::BadSignature));
        prop_assert_eq!(jwt::verify(&token, &[]), Err(JwtError::NoKeys));
    }

    #[test]
    fn jwt_refuses_truncated_tokens(claims in arb_claims(), cut in any::<prop::sample::Index>()) {
        let keys = keys();
        let token = jwt::sign(&claims, &keys[0]);
        let cut = cut.index(token.len());
        prop_assert!(jwt::verify(&token[..cut], &keys).is_err());
    }

    #[test]
    fn jwt_refuses_garbled_tokens(
        claims in arb_claims(),
        at in any::<prop::sample::Index>(),
        with in prop::sample::select("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>()),
    ) {
        let keys = keys();
        let token = jwt::sign(&claims, &keys[1]);
        let at = at.index(token.len());
        let mut garbled: Vec<char> = token.chars().collect();
        prop_assume!(garbled[at] != with);
        garbled[at] = with;
        let garbled: String = garbled.into_iter().collect();
        // Whitespace at either end is trimmed, as a body's trailing newline would be.
        prop_assume!(garbled.trim() != token);
        prop_assert!(jwt::verify(&garbled, &keys).is_err(), "{}", garbled);
    }

    #[test]
    fn jwt_refuses_expired_tokens(claims in arb_claims(), age in 31i64..10_000_000) {
        let keys = keys();
        let mut claims = claims;
        claims["exp"] = json!(chrono::Utc::now().timestamp() - age);
        let token = jwt::sign(&claims, &keys[0]);
        prop_assert_eq!(jwt::verify(&token, &keys), Err(JwtError::Expired));
    }
}
