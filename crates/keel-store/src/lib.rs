//! Keel's record store. The embedded SQLite backend implements the core's store contract;
//! search requests compile to SQL over index tables filled from the R4 SearchParameters.

mod audit;
mod pending_index;
mod query;
mod schema;
pub mod sqlite;

pub use sqlite::{Durability, SqliteStore};
