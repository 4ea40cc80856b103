//! `<coll>.metadata.json`: collection options, indexes, UUID, name and type in
//! canonical Extended JSON, field for field as mongodump 100.x writes it.

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

use crate::mongo::namespaces::CollectionInfo;

pub fn render(info: &CollectionInfo) -> Vec<u8> {
    let mut m = Map::new();
    // mongodump omits empty options.
    if !info.options.is_empty() {
        m.insert("options".into(), canonical(&info.options));
    }
    m.insert(
        "indexes".into(),
        Value::Array(info.indexes.iter().map(canonical).collect()),
    );
    if let Some(u) = &info.uuid {
        m.insert("uuid".into(), Value::String(u.clone()));
    }
    m.insert("collectionName".into(), Value::String(info.ns.coll.clone()));
    m.insert("type".into(), Value::String(info.kind.as_str().into()));
    serde_json::to_vec(&Value::Object(m)).expect("JSON values always serialize")
}

fn canonical(d: &Document) -> Value {
    Bson::Document(d.clone()).into_canonical_extjson()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::namespaces::Kind;
    use crate::namespace::Namespace;
    use mongodb::bson::doc;

    #[test]
    fn matches_mongodump_for_a_validated_collection() {
        // The fixture's kyc.metadata.json, byte for byte.
        let expected = r#"{"options":{"validator":{"$jsonSchema":{"bsonType":"object","required":["user_id","level"],"properties":{"level":{"bsonType":"int","minimum":{"$numberInt":"0"}}}}}},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"638d9079e4a84aafb2f44f612e15b96e","collectionName":"kyc","type":"collection"}"#;
        let info = CollectionInfo {
            ns: Namespace::new("predixi", "kyc"),
            kind: Kind::Collection,
            options: doc! { "validator": { "$jsonSchema": { "bsonType": "object", "required": ["user_id", "level"],
            "properties": { "level": { "bsonType": "int", "minimum": 0 } } } } },
            uuid: Some("638d9079e4a84aafb2f44f612e15b96e".into()),
            indexes: vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }],
            estimated_count: 0,
            estimated_bytes: 0,
            natural_scan: false,
        };
        assert_eq!(String::from_utf8(render(&info)).unwrap(), expected);
    }

    #[test]
    fn views_have_no_uuid_and_no_indexes() {
        let expected = r#"{"options":{"viewOn":"markets","pipeline":[{"$match":{"status":"open"}}]},"indexes":[],"collectionName":"active_markets","type":"view"}"#;
        let info = CollectionInfo {
            ns: Namespace::new("predixi", "active_markets"),
            kind: Kind::View,
            options: doc! { "viewOn": "markets", "pipeline": [ { "$match": { "status": "open" } } ] },
            uuid: None,
            indexes: vec![],
            estimated_count: 0,
            estimated_bytes: 0,
            natural_scan: false,
        };
        assert_eq!(String::from_utf8(render(&info)).unwrap(), expected);
    }
}
