//! The handle every caller holds: the database and the key that seals secrets.

use std::sync::Arc;

use crate::crypto::MasterKey;
use crate::db::Db;

#[derive(Clone, Debug)]
pub struct Core {
    pub db: Db,
    pub master_key: Arc<MasterKey>,
}

impl Core {
    pub fn new(db: Db, master_key: MasterKey) -> Self {
        Core {
            db,
            master_key: Arc::new(master_key),
        }
    }
}
