//! Keel's record store. The embedded SQLite backend (the default) and the PostgreSQL backend
//! (several nodes on one database) implement the core's store contract; search requests
//! compile to SQL over index tables filled from the R4 SearchParameters.

mod audit;
mod jobs;
mod pending_index;
pub mod postgresql;
mod query;
mod schema;
pub mod sqlite;

pub use postgresql::PostgresStore;
pub use sqlite::{Durability, SqliteStore};
