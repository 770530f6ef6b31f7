//! What the stores of sealed secrets (integration settings, wallet credentials) take.

use crate::crypto::MasterKey;
use crate::db::Db;

/// The database and the key that seals secrets in it, borrowed together.
///
/// One parameter rather than two because a sealed secret needs both (the row and the
/// key that opens it) and every caller has them side by side in [`crate::Core`]. Not
/// `Core` itself: stores taking it made `Core` and the clients it holds import the
/// stores that configure them, and each other.
#[derive(Clone, Copy, Debug)]
pub struct Vault<'a> {
    pub db: &'a Db,
    pub master_key: &'a MasterKey,
}
