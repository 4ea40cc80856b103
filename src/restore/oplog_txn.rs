//! Which oplog entries belong to a multi-document transaction, and what each one means for
//! it (mongorestore's rules, common/txn): data entries are held until the transaction
//! commits; a prepared transaction commits only at its `commitTransaction`, an aborted one
//! is forgotten, and one that never finishes within the oplog is never applied.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document};

/// What a transaction entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStep {
    /// Operations held until the commit (a partial or prepared `applyOps`).
    Hold,
    /// Operations (possibly none) that complete the transaction: apply all held ones.
    Commit,
    /// Forget the held operations.
    Abort,
}

/// The transaction an entry belongs to and its step, or None for an ordinary entry.
pub fn classify(entry: &Document) -> Option<(String, TxnStep)> {
    // A vectored insert of a retryable write carries lsid/txnNumber too; it is no transaction.
    if matches!(
        entry.get("multiOpType"),
        Some(Bson::Int32(1) | Bson::Int64(1))
    ) {
        return None;
    }
    if entry.get_str("op").ok() != Some("c") {
        return None;
    }
    let lsid = entry.get_document("lsid").ok()?;
    let txn = entry.get("txnNumber")?;
    let o = entry.get_document("o").ok()?;
    let key = format!("{lsid}/{txn}");
    let flag = |k: &str| o.get_bool(k).unwrap_or(false) || entry.get_bool(k).unwrap_or(false);
    let step = if o.contains_key("commitTransaction") {
        TxnStep::Commit
    } else if o.contains_key("abortTransaction") {
        TxnStep::Abort
    } else if o.contains_key("applyOps") {
        if flag("partialTxn") || flag("prepare") {
            TxnStep::Hold
        } else {
            TxnStep::Commit
        }
    } else {
        return None;
    };
    Some((key, step))
}

/// The operations of the transactions still open.
#[derive(Default)]
pub struct TxnBuffer {
    open: HashMap<String, Vec<Document>>,
    pub committed: u64,
    pub aborted: u64,
}

impl TxnBuffer {
    /// Take one transaction entry; returns the operations to apply now (on commit).
    pub fn take(&mut self, key: String, step: TxnStep, entry: &Document) -> Vec<Document> {
        let ops: Vec<Document> = entry
            .get_document("o")
            .ok()
            .and_then(|o| o.get_array("applyOps").ok())
            .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
            .unwrap_or_default();
        match step {
            TxnStep::Hold => {
                self.open.entry(key).or_default().extend(ops);
                vec![]
            }
            TxnStep::Commit => {
                self.committed += 1;
                let mut held = self.open.remove(&key).unwrap_or_default();
                held.extend(ops);
                held
            }
            TxnStep::Abort => {
                self.aborted += 1;
                self.open.remove(&key);
                vec![]
            }
        }
    }

    /// Transactions begun (or prepared) but neither committed nor aborted in this oplog.
    pub fn unfinished(&self) -> u64 {
        self.open.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn txn(o: Document) -> Document {
        doc! { "op": "c", "ns": "admin.$cmd", "o": o, "lsid": { "id": 1 }, "txnNumber": 1i64 }
    }

    #[test]
    fn prepared_transactions_apply_only_at_commit() {
        let mut b = TxnBuffer::default();
        let prep = txn(
            doc! { "applyOps": [ { "op": "i", "ns": "d.c", "o": { "_id": 1 } } ], "prepare": true },
        );
        let (k, s) = classify(&prep).unwrap();
        assert_eq!(s, TxnStep::Hold);
        assert!(b.take(k, s, &prep).is_empty());
        assert_eq!(b.unfinished(), 1);
        let commit = txn(doc! { "commitTransaction": 1 });
        let (k, s) = classify(&commit).unwrap();
        assert_eq!(b.take(k, s, &commit).len(), 1);
        assert_eq!(b.unfinished(), 0);

        let (k, s) = classify(&prep).unwrap();
        b.take(k, s, &prep);
        let abort = txn(doc! { "abortTransaction": 1 });
        let (k, s) = classify(&abort).unwrap();
        assert!(b.take(k, s, &abort).is_empty());
        assert_eq!((b.unfinished(), b.aborted), (0, 1));
    }

    #[test]
    fn plain_apply_ops_and_retryable_inserts_are_not_transactions() {
        assert!(
            classify(&doc! { "op": "c", "ns": "admin.$cmd", "o": { "applyOps": [] } }).is_none()
        );
        let mut v = txn(doc! { "applyOps": [] });
        v.insert("multiOpType", 1);
        assert!(classify(&v).is_none());
        let unprepared = txn(doc! { "applyOps": [] });
        assert_eq!(classify(&unprepared).unwrap().1, TxnStep::Commit);
    }
}
