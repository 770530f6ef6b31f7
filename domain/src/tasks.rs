//! Every kind of work the job queue carries, as one typed [`Task`] with a struct per
//! kind, and how a task's job is queued (its ordering key, attempts and delay).
//!
//! The queue ([`crate::jobs`]) stores a task as its kind and its JSON payload, in the
//! columns it always had: jobs queued by an earlier release read as the same tasks.
//! Only this module turns a kind into a string and back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DomainError;
use crate::jobs::NewJob;

/// The kinds of task, as the queue stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    CustomAction,
    Profile,
    SfmcExecute,
    ActitoCallback,
    WalletRefresh,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::CustomAction,
        Kind::Profile,
        Kind::SfmcExecute,
        Kind::ActitoCallback,
        Kind::WalletRefresh,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::CustomAction => "actito.custom_action",
            Kind::Profile => "actito.profile",
            Kind::SfmcExecute => "sfmc.execute",
            Kind::ActitoCallback => "actito.callback",
            Kind::WalletRefresh => "wallet.refresh",
        }
    }

    /// Whether consecutive jobs of this kind and one ordering key may be applied as
    /// one run (they change passes of one tenant in order; see
    /// [`crate::processing::run_in_order`]).
    pub const fn runs_together(self) -> bool {
        matches!(self, Kind::CustomAction | Kind::SfmcExecute)
    }
}

impl TryFrom<&str> for Kind {
    type Error = DomainError;

    fn try_from(kind: &str) -> Result<Self, DomainError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| DomainError::Internal(format!("no task of kind {kind}")))
    }
}

/// A unit of work for the workers.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    CustomAction(CustomAction),
    Profile(Profile),
    SfmcExecute(SfmcExecute),
    ActitoCallback(ActitoCallback),
    WalletRefresh(WalletRefresh),
}

/// Apply an Actito custom-action envelope (ONE_BY_ONE or BULK). Its items are the
/// stored event's body, so the job carries nothing else.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomAction {}

/// Read an Actito profile and apply it to its customer and passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub profile_id: String,
}

/// Apply an SFMC Journey Builder push update to the passes it matched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfmcExecute {
    pub pass_ids: Vec<String>,
    #[serde(default)]
    pub additional_data: Map<String, Value>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub journey_id: Option<String>,
    #[serde(default)]
    pub activity_id: Option<String>,
    #[serde(default)]
    pub definition_instance_id: Option<String>,
    #[serde(default)]
    pub key_value: Option<String>,
}

/// Call an Actito notifyOK/notifyKO link, recorded as `delivery_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActitoCallback {
    pub delivery_id: String,
    pub url: String,
}

/// Deliver a pass's owed refresh to its Apple devices and Google object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletRefresh {
    pub pass_id: String,
}

/// Changes to a pass within this window go out as one wallet refresh.
pub const COALESCE_MS: i64 = 1_000;

/// Jobs that change one tenant's passes run in the order received.
pub fn tenant_order(tenant_id: &str) -> String {
    format!("tenant:{tenant_id}")
}

/// One profile's reads run in order (a CREATE before the UPDATE that follows it).
pub fn profile_order(tenant_id: &str, profile_id: &str) -> String {
    format!("profile:{tenant_id}:{profile_id}")
}

/// One refresh per pass at a time.
pub fn refresh_order(tenant_id: &str, pass_id: &str) -> String {
    format!("pass:{tenant_id}:{pass_id}")
}

impl Task {
    pub fn kind(&self) -> Kind {
        match self {
            Task::CustomAction(_) => Kind::CustomAction,
            Task::Profile(_) => Kind::Profile,
            Task::SfmcExecute(_) => Kind::SfmcExecute,
            Task::ActitoCallback(_) => Kind::ActitoCallback,
            Task::WalletRefresh(_) => Kind::WalletRefresh,
        }
    }

    /// The payload the queue stores.
    pub fn payload(&self) -> Value {
        let value = match self {
            Task::CustomAction(t) => serde_json::to_value(t),
            Task::Profile(t) => serde_json::to_value(t),
            Task::SfmcExecute(t) => serde_json::to_value(t),
            Task::ActitoCallback(t) => serde_json::to_value(t),
            Task::WalletRefresh(t) => serde_json::to_value(t),
        };
        value.expect("tasks are plain data")
    }

    /// The task a stored job holds.
    pub fn read(kind: &str, payload: &Value) -> Result<Task, DomainError> {
        fn typed<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, DomainError> {
            T::deserialize(payload)
                .map_err(|e| DomainError::Internal(format!("unreadable task payload: {e}")))
        }
        Ok(match Kind::try_from(kind)? {
            Kind::CustomAction => Task::CustomAction(typed(payload)?),
            Kind::Profile => Task::Profile(typed(payload)?),
            Kind::SfmcExecute => Task::SfmcExecute(typed(payload)?),
            Kind::ActitoCallback => Task::ActitoCallback(typed(payload)?),
            Kind::WalletRefresh => Task::WalletRefresh(typed(payload)?),
        })
    }

    /// The job that carries this task for `tenant_id`, ordered, retried and delayed as
    /// its kind needs. Jobs of an inbound event get its id when it is stored.
    pub fn job(self, tenant_id: &str) -> NewJob {
        let job = NewJob::new(tenant_id, self.kind().as_str(), self.payload());
        match self {
            Task::CustomAction(_) | Task::SfmcExecute(_) => job.ordered_by(tenant_order(tenant_id)),
            Task::Profile(p) => job.ordered_by(profile_order(tenant_id, &p.profile_id)),
            Task::ActitoCallback(_) => job.attempts(10),
            Task::WalletRefresh(r) => job
                .ordered_by(refresh_order(tenant_id, &r.pass_id))
                .delayed(COALESCE_MS)
                .attempts(10),
        }
    }
}

/// Why a task's attempt failed, as its flow decides.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// Worth another attempt: no sooner than `after` when the peer asked
    /// (`Retry-After`), else after the queue's backoff.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Retrying cannot help (an invalid request, a profile that does not exist).
    Fatal(String),
}

impl Failure {
    pub fn retry(why: impl Into<String>) -> Failure {
        Failure::Retry {
            after: None,
            why: why.into(),
        }
    }
}

impl From<DomainError> for Failure {
    /// An invalid or missing thing stays so; anything else (the database, a peer)
    /// may come back.
    fn from(error: DomainError) -> Failure {
        match &error {
            DomainError::Invalid(fields) if !fields.is_empty() => Failure::Fatal(
                fields
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            DomainError::Invalid(_) | DomainError::NotFound(_) => Failure::Fatal(error.to_string()),
            _ => Failure::retry(error.to_string()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Failure {
        DomainError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::try_from(kind.as_str()).unwrap(), kind);
        }
        assert!(Kind::try_from("actito.unknown").is_err());
    }

    /// Payloads stored by earlier releases (the listeners wrote these shapes) read as
    /// the same tasks, and a task's payload reads back as itself.
    #[test]
    fn payloads_of_queued_jobs_read_as_tasks() {
        let execute = serde_json::json!({
            "passIds": ["pass_1"], "additionalData": {"points": 5}, "message": null,
            "journeyId": "j", "activityId": null, "definitionInstanceId": "d", "keyValue": "k"
        });
        let task = Task::read("sfmc.execute", &execute).unwrap();
        let Task::SfmcExecute(ref e) = task else {
            panic!("{task:?}")
        };
        assert_eq!(e.pass_ids, ["pass_1"]);
        assert_eq!(e.additional_data["points"], 5);
        assert_eq!(Task::read("sfmc.execute", &task.payload()).unwrap(), task);
        let callback = serde_json::json!({"deliveryId": "dlv_1", "url": "https://x/ok"});
        assert!(matches!(
            Task::read("actito.callback", &callback).unwrap(),
            Task::ActitoCallback(ActitoCallback { ref url, .. }) if url == "https://x/ok"
        ));
        assert!(Task::read("actito.custom_action", &serde_json::json!({})).is_ok());
        assert!(Task::read("actito.profile", &serde_json::json!({})).is_err());
    }

    #[test]
    fn jobs_are_ordered_as_their_kind_needs() {
        let profile = Task::Profile(Profile {
            profile_id: "42".into(),
        })
        .job("acme");
        assert_eq!(profile.ordering_key.as_deref(), Some("profile:acme:42"));
        let refresh = Task::WalletRefresh(WalletRefresh {
            pass_id: "p".into(),
        })
        .job("acme");
        assert_eq!(refresh.ordering_key.as_deref(), Some("pass:acme:p"));
        assert_eq!(refresh.delay_ms, COALESCE_MS);
        let callback = Task::ActitoCallback(ActitoCallback {
            delivery_id: "d".into(),
            url: "u".into(),
        })
        .job("acme");
        assert_eq!((callback.ordering_key, callback.max_attempts), (None, 10));
    }
}
