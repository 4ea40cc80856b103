//! What a server says of itself in `hello` (which needs no privileges): whether it is a
//! mongos, its replica set and members, its process's identity, its last majority write.
//! One reading of the reply for every caller.
use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson, Document, Timestamp};
use mongodb::Client;

pub struct Hello(Document);

/// What kind of deployment answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Mongos,
    ReplicaSet(String),
    Standalone,
}

impl Hello {
    pub async fn ask(client: &Client) -> Result<Hello> {
        client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await
            .map(Hello)
            .context("running hello")
    }

    pub fn kind(&self) -> Kind {
        if self.0.get_str("msg") == Ok("isdbgrid") {
            Kind::Mongos
        } else if let Ok(set) = self.0.get_str("setName") {
            Kind::ReplicaSet(set.to_string())
        } else {
            Kind::Standalone
        }
    }

    /// The replica set's members as it names them (empty for a standalone or a mongos).
    pub fn hosts(&self) -> Vec<String> {
        self.0
            .get_array("hosts")
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The server process's identity, new at every start (`topologyVersion.processId`).
    pub fn process_id(&self) -> Option<Bson> {
        self.0
            .get_document("topologyVersion")
            .ok()?
            .get("processId")
            .cloned()
    }

    /// The newest majority-committed write (replica set members only).
    pub fn majority_time(&self) -> Option<Timestamp> {
        self.0
            .get_document("lastWrite")
            .and_then(|w| w.get_document("majorityOpTime"))
            .and_then(|o| o.get_timestamp("ts"))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_and_fields_are_read_from_the_reply() {
        let h = Hello(doc! { "msg": "isdbgrid" });
        assert_eq!(h.kind(), Kind::Mongos);
        assert!(h.hosts().is_empty() && h.process_id().is_none());
        let ts = Timestamp {
            time: 7,
            increment: 1,
        };
        let h = Hello(doc! {
            "setName": "rs0",
            "hosts": ["a:1", "b:2"],
            "topologyVersion": { "processId": 5, "counter": 0 },
            "lastWrite": { "majorityOpTime": { "ts": ts, "t": 1 } },
        });
        assert_eq!(h.kind(), Kind::ReplicaSet("rs0".into()));
        assert_eq!(h.hosts(), ["a:1", "b:2"]);
        assert_eq!(h.process_id(), Some(Bson::Int32(5)));
        assert_eq!(h.majority_time(), Some(ts));
        assert_eq!(Hello(doc! {}).kind(), Kind::Standalone);
    }
}
