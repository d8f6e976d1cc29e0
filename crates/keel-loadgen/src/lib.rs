//! `keel-loadgen`: a load generator for any FHIR R4 base URL.
//!
//! It runs the same workload against Keel or any other FHIR R4 server, so that the figures in
//! Keel's benchmarks can be compared side by side. It speaks plain HTTP/1.1 (no TLS) over
//! keep-alive connections and is built to be cheap per request, because on the benchmark machine
//! it shares two cores with the server under test.
//!
//! # Commands
//!
//! ```text
//! keel-loadgen read   --base URL --type Patient [--connections 32] [--duration 20s] [--warmup 3s]
//!                     [--ids-from-search | --ids-file FILE] [--max-ids 10000] [--order random|round-robin]
//!                     [--pid PID] [--json]
//! keel-loadgen search --base URL --query TEMPLATE [--query TEMPLATE ...] [--connections 32]
//!                     [--duration 20s] [--warmup 3s] [--pid PID] [--json]
//! keel-loadgen import --base URL [--connections 4] [--pid PID] [--json] FILES...
//! ```
//!
//! * **read** first discovers up to `--max-ids` ids of the type with
//!   `GET {base}/{type}?_count=1000&_elements=id`, following `next` links (at most `--max-pages`
//!   pages; a server may ignore `_elements`). Then each of exactly `--connections` keep-alive
//!   connections is driven by one task that sends `GET {base}/{type}/{id}` back to back, picking
//!   ids at random from a seeded generator (`--seed`, so runs are repeatable) or round-robin.
//! * **search** sends query templates relative to the base, round-robin over the `--query` flags,
//!   and reports each template separately and in total. In a template, `{Type}` (for example
//!   `{Patient}`) is replaced by a random id of that type, discovered as for `read`, and
//!   `{Type.path.to.field}` (for example `{Patient.name.family}`) by the value at that dotted JSON
//!   path (the first element of any array on the way) in one resource of a sample fetched with
//!   `GET {base}/{Type}?_count=500`. All placeholders of one type in one request come from the
//!   same resource, so `Patient?name={Patient.name.family}&birthdate={Patient.birthDate}` finds
//!   the patient it was made from. Substituted values are FHIR-escaped (`\`, `,`, `$`, `|`) and then
//!   percent-encoded; the literal text of a template is sent as written except that characters not
//!   allowed in a URL (such as `|`, spaces and non-ASCII) are percent-encoded. Before the run,
//!   `--pool` concrete requests per template are generated; each request then picks one of them at
//!   random, so nothing is formatted in the hot loop.
//! * **import** POSTs each Bundle file (`.json`, `.json.bz2`, `.json.xz`; directories are
//!   searched) to the base URL as a transaction or batch, over `--connections` connections, and
//!   reports resources per second (Bundle entries). Files are read and decompressed before the
//!   clock starts. Synthea's `hospitalInformation*` and `practitionerInformation*` files are sent
//!   first, one at a time, because the patient Bundles refer to them.
//!
//! # Figures
//!
//! Requests, errors (non-2xx responses, transport errors and timeouts), throughput in requests per
//! second over the measured window (after `--warmup`), and latency percentiles p50, p90, p99,
//! p99.9 and max in milliseconds from an HDR histogram of the successful (2xx) requests. With
//! `--pid PID` the resident memory of that process (VmRSS in `/proc/PID/status`) is sampled every
//! 250 ms and its peak reported, with the process's CPU use in the measured window; the load
//! generator's own CPU use is reported too. `--json` prints one JSON object with every figure
//! instead of a table.
//!
//! # Bounds and safety
//!
//! Every run stops by itself: `read` and `search` after `--warmup` plus `--duration` (default
//! 10 s), with each request bounded by `--timeout`; `import` after its files. Only the given base
//! URL is ever contacted (paging links are followed on the same connection target). In this
//! project's benchmarks the base URL must be a loopback address (`127.0.0.0/8`, `localhost`,
//! `[::1]`): any other host is refused unless `--allow-remote` is passed.
//!
//! Exit status: 0 when every request succeeded, 1 when some failed, 2 when the run could not be
//! made (bad arguments, no server, nothing discovered).

pub mod cli;
pub mod client;
pub mod discover;
pub mod duration;
pub mod import;
pub mod load;
pub mod procfs;
pub mod report;
pub mod rng;
pub mod target;
pub mod template;
