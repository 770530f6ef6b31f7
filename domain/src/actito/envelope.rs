//! Actito webhook envelopes: custom-action triggers and data events, ONE_BY_ONE
//! (`data` is an object) or BULK (`data` is an array).

use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::passes::Data;

/// Why an envelope cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON, or not the envelope shape.
    Malformed(String),
    /// A valid Actito envelope of a kind this endpoint does not take.
    Unsupported(String),
    /// Values that cannot go onto a pass.
    Invalid(Vec<FieldError>),
}

/// The envelope around every Actito webhook push.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub bulk: bool,
    pub items: Vec<Map<String, Value>>,
    /// The whole envelope, for data events' top-level members.
    pub top: Map<String, Value>,
}

pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError::Malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(EnvelopeError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    let id = envelope_id(top.get("id"))?;
    let (bulk, items) = match top.remove("data") {
        Some(Value::Object(item)) => (false, vec![item]),
        Some(Value::Array(items)) => {
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(item) => Ok(item),
                    _ => Err(EnvelopeError::Malformed(format!(
                        "data[{i}] must be an object"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err(EnvelopeError::Malformed(
                    "\"data\" is an empty array".into(),
                ));
            }
            (true, items)
        }
        _ => {
            return Err(EnvelopeError::Malformed(
                "\"data\" must be an object (ONE_BY_ONE) or an array (BULK)".into(),
            ))
        }
    };
    Ok(Envelope {
        id,
        bulk,
        items,
        top,
    })
}

/// What kind of Actito push an envelope is, from its members.
fn describe(envelope: &Envelope) -> &'static str {
    let first = envelope.items.first();
    let has_prefix = |prefix: &str| first.is_some_and(|i| i.keys().any(|k| k.starts_with(prefix)));
    if envelope.top.contains_key("tableType") {
        "a data event (profile or custom table)"
    } else if has_prefix("etl.") {
        "an ETL execution trigger"
    } else if has_prefix("export.") {
        "an export execution trigger"
    } else {
        "not a custom-action trigger"
    }
}

/// An item's members of one kind, by name without their prefix, in the order sent (a
/// name sent twice keeps its last value). A list, not a map: an item has a handful,
/// and a BULK has thousands of items.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Members(Vec<(String, Value)>);

impl Members {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn insert(&mut self, name: String, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

/// One profile that reached the custom action, with the action's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomActionItem {
    pub parameters: Members,
    pub profile: Members,
    pub notify_ok: Option<String>,
    pub notify_ko: Option<String>,
}

const RESERVED_PARAMETERS: [&str; 3] = ["passId", "passType", "message"];

impl CustomActionItem {
    fn text(&self, key: &str) -> Option<String> {
        match self.parameters.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn pass_id(&self) -> Option<String> {
        self.text("passId")
    }

    pub fn pass_type(&self) -> Option<String> {
        self.text("passType")
    }

    pub fn message(&self) -> Option<String> {
        self.text("message")
    }

    /// The values to write into `additionalData`: every parameter but the reserved ones.
    pub fn changes(&self) -> Data {
        self.parameters
            .iter()
            .filter(|(k, _)| !RESERVED_PARAMETERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A profile attribute as identifier text.
    pub fn profile_value(&self, attribute: &str) -> Option<String> {
        scalar_text(self.profile.get(attribute)?)
    }
}

pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A custom-action trigger, read straight from its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomActions {
    pub id: String,
    pub bulk: bool,
    pub items: Vec<CustomActionItem>,
}

/// Why a custom-action push is refused, with the notifyKO links of the items that
/// could be read: an envelope refused for what its items hold still tells Actito
/// about each of them (none for a body that cannot be read as an envelope).
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub error: EnvelopeError,
    pub notify_ko: Vec<String>,
}

impl From<EnvelopeError> for Refused {
    fn from(error: EnvelopeError) -> Self {
        Refused {
            error,
            notify_ko: Vec::new(),
        }
    }
}

/// Reads a custom-action trigger; other Actito pushes are `Unsupported`. The items are
/// built as the body is read, with no tree of every value in between: a 10 000-item
/// BULK (8 MB) holds its items and nothing else (see [`trigger`]).
pub fn custom_actions(body: &[u8]) -> Result<CustomActions, Refused> {
    let top: trigger::Top = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError::Malformed(format!("the body is not JSON: {e}")))?;
    let trigger::Top(Some(trigger::Object {
        id,
        data,
        table_type,
    })) = top
    else {
        return Err(EnvelopeError::Malformed("the body must be a JSON object".into()).into());
    };
    let id = envelope_id(id.as_ref())?;
    let (bulk, read) = match data {
        Some(trigger::Data::One(item)) => (false, vec![item]),
        Some(trigger::Data::Many(items)) => {
            if items.is_empty() {
                return Err(EnvelopeError::Malformed("\"data\" is an empty array".into()).into());
            }
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    item.ok_or_else(|| {
                        EnvelopeError::Malformed(format!("data[{i}] must be an object"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            (true, items)
        }
        _ => {
            return Err(EnvelopeError::Malformed(
                "\"data\" must be an object (ONE_BY_ONE) or an array (BULK)".into(),
            )
            .into())
        }
    };
    let refused = |error| Refused {
        notify_ko: read
            .iter()
            .filter_map(|r| r.item.notify_ko.clone())
            .collect(),
        error,
    };
    if table_type || !read.iter().all(|r| r.looks_right) {
        let kind = match read.first().map(|r| r.prefix) {
            _ if table_type => "a data event (profile or custom table)",
            Some(trigger::Prefix::Etl) => "an ETL execution trigger",
            Some(trigger::Prefix::Export) => "an export execution trigger",
            _ => "not a custom-action trigger",
        };
        return Err(refused(EnvelopeError::Unsupported(format!(
            "this endpoint takes Actito custom-action triggers; the body is {kind}"
        ))));
    }
    let errors: Vec<FieldError> = read
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.nested.iter().map(move |name| {
                FieldError::new(
                    format!("data[{i}].actionParameters.{name}"),
                    "must be a string, a number, a boolean or null",
                )
            })
        })
        .collect();
    if !errors.is_empty() {
        return Err(refused(EnvelopeError::Invalid(errors)));
    }
    Ok(CustomActions {
        id,
        bulk,
        items: read.into_iter().map(|r| r.item).collect(),
    })
}

/// The envelope's id: a non-blank string or a number.
fn envelope_id(id: Option<&Value>) -> Result<String, EnvelopeError> {
    match id {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(EnvelopeError::Malformed(
            "the envelope has no \"id\"".into(),
        )),
    }
}

/// serde visitors that read a custom-action trigger as it is parsed. Shape problems
/// (an item that is not an object, a parameter holding an object) are recorded, not
/// raised, so [`custom_actions`] can say which and still collect the notifyKO links.
mod trigger {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use serde_json::Value;

    use super::{CustomActionItem, Members};

    /// The body: `None` when it is not an object.
    pub struct Top(pub Option<Object>);

    pub struct Object {
        pub id: Option<Value>,
        pub data: Option<Data>,
        pub table_type: bool,
    }

    pub enum Data {
        One(Read),
        /// `None` for an element that is not an object.
        Many(Vec<Option<Read>>),
        Other,
    }

    /// Which other Actito trigger an item's members look like.
    #[derive(Clone, Copy)]
    pub enum Prefix {
        Etl,
        Export,
        None,
    }

    pub struct Read {
        pub item: CustomActionItem,
        /// Whether a member is an action parameter or a profile attribute.
        pub looks_right: bool,
        pub prefix: Prefix,
        /// Parameters holding an array or an object.
        pub nested: Vec<String>,
    }

    /// A member name, borrowed from the body when it has no escapes.
    struct Key<'de>(Cow<'de, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_owned())))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    /// Answers `other` for any JSON that is not the shape a visitor looks for.
    macro_rules! otherwise {
        ($other:expr) => {
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok($other)
            }
        };
    }

    /// Skips an array's elements.
    fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    impl<'de> Deserialize<'de> for Top {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct TopVisitor;
            impl<'de> Visitor<'de> for TopVisitor {
                type Value = Top;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an Actito envelope")
                }
                otherwise!(Top(None));
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
                    skip_seq(seq)?;
                    Ok(Top(None))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                    let (mut id, mut data, mut table_type) = (None, None, false);
                    while let Some(Key(key)) = map.next_key()? {
                        match key.as_ref() {
                            "id" => id = Some(map.next_value()?),
                            "data" => data = Some(map.next_value_seed(DataSeed)?),
                            "tableType" => {
                                table_type = true;
                                map.next_value::<IgnoredAny>()?;
                            }
                            _ => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(Top(Some(Object {
                        id,
                        data,
                        table_type,
                    })))
                }
            }
            d.deserialize_any(TopVisitor)
        }
    }

    struct DataSeed;

    impl<'de> DeserializeSeed<'de> for DataSeed {
        type Value = Data;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for DataSeed {
        type Value = Data;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an item or a list of items")
        }
        otherwise!(Data::Other);
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Data, A::Error> {
            Ok(Data::One(read_item(map)?))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element_seed(ItemSeed)? {
                items.push(item);
            }
            Ok(Data::Many(items))
        }
    }

    struct ItemSeed;

    impl<'de> DeserializeSeed<'de> for ItemSeed {
        type Value = Option<Read>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Read>, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for ItemSeed {
        type Value = Option<Read>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an item")
        }
        otherwise!(None);
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Read>, A::Error> {
            skip_seq(seq)?;
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Read>, A::Error> {
            read_item(map).map(Some)
        }
    }

    /// One item: its parameters, profile attributes and links; the rest is skipped.
    fn read_item<'de, A: MapAccess<'de>>(mut map: A) -> Result<Read, A::Error> {
        let (mut parameters, mut profile) = (Members::default(), Members::default());
        let (mut links, mut nested) = (None, Vec::new());
        let (mut looks_right, mut prefix) = (false, Prefix::None);
        while let Some(Key(key)) = map.next_key()? {
            if let Some(name) = key.strip_prefix("actionParameters.") {
                let value: Value = map.next_value()?;
                if value.is_array() || value.is_object() {
                    nested.push(name.to_string());
                }
                parameters.insert(name.to_string(), value);
                looks_right = true;
            } else if let Some(name) = key.strip_prefix("profileAttributes.") {
                profile.insert(name.to_string(), map.next_value()?);
                looks_right = true;
            } else if key == "_links" {
                links = Some(map.next_value::<Value>()?);
            } else {
                if key.starts_with("etl.") {
                    prefix = Prefix::Etl;
                } else if key.starts_with("export.") && !matches!(prefix, Prefix::Etl) {
                    prefix = Prefix::Export;
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        let link = |name: &str| links.as_ref()?[name]["href"].as_str().map(str::to_string);
        Ok(Read {
            item: CustomActionItem {
                parameters,
                profile,
                notify_ok: link("notifyOK"),
                notify_ko: link("notifyKO"),
            },
            looks_right,
            prefix,
            nested,
        })
    }
}

/// A profile-table data event: which profiles were created or updated.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileEvent {
    pub operation: String,
    pub table_id: String,
    pub profile_ids: Vec<String>,
}

/// Reads a profile CREATE/UPDATE data event for the path's `event_type`.
pub fn profile_event(envelope: &Envelope, event_type: &str) -> Result<ProfileEvent, EnvelopeError> {
    let text = |key: &str| {
        envelope
            .top
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    // The seed's schema names only `eventType` and `operation`: an envelope without
    // `tableType` is taken as a profile-table event.
    let typed = match envelope.top.get("tableType") {
        None | Some(Value::Null) => envelope
            .items
            .iter()
            .all(|item| item.contains_key("profileId")),
        Some(table_type) => table_type == "PROFILE_TABLE",
    };
    if !typed {
        return Err(EnvelopeError::Unsupported(format!(
            "this endpoint takes profile-table data events; the body is {}",
            match text("tableType") {
                "CUSTOM_TABLE" => "a custom-table data event",
                _ => describe(envelope),
            }
        )));
    }
    let operation = text("operation");
    if !operation.is_empty() && operation != event_type {
        return Err(EnvelopeError::Unsupported(format!(
            "the body's operation {operation} does not match the {event_type} endpoint"
        )));
    }
    let profile_ids = envelope
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.get("profileId")
                .and_then(scalar_text)
                .ok_or_else(|| EnvelopeError::Malformed(format!("data[{i}] has no profileId")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProfileEvent {
        operation: event_type.to_string(),
        table_id: text("tableId").to_string(),
        profile_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/actito/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn custom_action_samples_parse_one_by_one_and_bulk() {
        let one = custom_actions(&sample("custom-action-trigger-one-by-one.json")).unwrap();
        assert!(!one.bulk);
        let items = one.items;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].parameters.get("campaignId").unwrap(), "987654");
        assert_eq!(
            items[0].profile_value("emailAddress").as_deref(),
            Some("john.smith@actito.com")
        );
        assert!(items[0]
            .notify_ok
            .as_deref()
            .unwrap()
            .starts_with("https://www.actito.com/ca/OK_"));
        assert!(items[0].notify_ko.as_deref().unwrap().contains("/ca/KO_"));
        assert_eq!(items[0].changes().len(), 2);

        let bulk = custom_actions(&sample("custom-action-trigger-bulk.json")).unwrap();
        assert!(bulk.bulk);
        assert_eq!(bulk.id, "201373e4-22f9-4165-b394-6223b692eebc");
        assert_eq!(bulk.items.len(), 2);
    }

    #[test]
    fn other_pushes_are_refused_by_the_custom_action_endpoint() {
        for name in [
            "etl-finished-one-by-one.json",
            "etl-finished-bulk.json",
            "export-finished-one-by-one.json",
            "profile-create-one-by-one.json",
            "custom-table-update-one-by-one.json",
        ] {
            assert!(
                matches!(
                    custom_actions(&sample(name)),
                    Err(Refused {
                        error: EnvelopeError::Unsupported(_),
                        ..
                    })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn profile_events_are_read_and_others_refused() {
        let one = parse(&sample("profile-create-one-by-one.json")).unwrap();
        let event = profile_event(&one, "CREATE").unwrap();
        assert_eq!(event.profile_ids, ["123456"]);
        let bulk = parse(&sample("profile-create-bulk.json")).unwrap();
        assert_eq!(
            profile_event(&bulk, "CREATE").unwrap().profile_ids,
            ["123456", "123457"]
        );
        assert!(matches!(
            profile_event(&one, "UPDATE"),
            Err(EnvelopeError::Unsupported(_))
        ));
        for name in [
            "custom-table-create-bulk.json",
            "etl-finished-one-by-one.json",
            "custom-action-trigger-bulk.json",
        ] {
            let envelope = parse(&sample(name)).unwrap();
            assert!(
                matches!(
                    profile_event(&envelope, "CREATE"),
                    Err(EnvelopeError::Unsupported(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        for body in [
            &b"nope"[..],
            b"[]",
            br#"{"data": {}}"#,
            br#"{"id": "1"}"#,
            br#"{"id": "1", "data": []}"#,
            br#"{"id": "1", "data": [1]}"#,
        ] {
            assert!(
                matches!(parse(body), Err(EnvelopeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
            let refused = custom_actions(body).unwrap_err();
            assert!(
                matches!(refused.error, EnvelopeError::Malformed(_)),
                "{refused:?}"
            );
            assert!(refused.notify_ko.is_empty());
        }
        let nested = custom_actions(
            br#"{"id": "1", "data": [
                {"actionParameters.x": {"a": 1}, "_links": {"notifyKO": {"href": "https://a.test/ca/KO_1"}}},
                {"actionParameters.y": 2, "actionParameters.z": [1],
                 "_links": {"notifyKO": {"href": "https://a.test/ca/KO_2"}}}
            ]}"#,
        )
        .unwrap_err();
        assert_eq!(
            nested.error,
            EnvelopeError::Invalid(vec![
                FieldError::new(
                    "data[0].actionParameters.x",
                    "must be a string, a number, a boolean or null"
                ),
                FieldError::new(
                    "data[1].actionParameters.z",
                    "must be a string, a number, a boolean or null"
                ),
            ])
        );
        assert_eq!(
            nested.notify_ko,
            ["https://a.test/ca/KO_1", "https://a.test/ca/KO_2"]
        );
    }
}
