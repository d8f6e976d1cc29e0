//! The background-job worker of one node: a thread that claims jobs from the store's queue and
//! runs them. Every node on one database runs one; the store's leases decide which node runs
//! which job (see `keel_core::jobs`).

use keel_core::fhir::FhirService;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a node's worker claims jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// The node's name in leases (unique among the nodes on one database).
    pub node: String,
    /// How long a claim holds a job without renewal; a node that dies releases its jobs after it.
    pub lease: Duration,
    /// How long to wait before looking again when the queue is empty.
    pub poll: Duration,
}

/// The running worker; stops (after the job in hand, if any) when dropped.
pub struct JobWorker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JobWorker {
    pub fn spawn(fhir: Arc<FhirService>, config: WorkerConfig) -> std::io::Result<JobWorker> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let lease_millis = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let thread = std::thread::Builder::new()
            .name("keel-jobs".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    match fhir.run_next_export(&config.node, lease_millis) {
                        Ok(Some(job)) => {
                            tracing::info!(target: "keel::jobs", job, node = %config.node, "export job ran");
                        }
                        Ok(None) => sleep_unless_stopped(&stopping, config.poll),
                        Err(e) => {
                            // The job stays claimed until its lease ends; another attempt
                            // (here or on another node) runs it then.
                            tracing::warn!(target: "keel::jobs", error = %e, "background job failed; it is retried once its lease ends");
                            sleep_unless_stopped(&stopping, config.poll);
                        }
                    }
                }
            })?;
        Ok(JobWorker {
            stop,
            thread: Some(thread),
        })
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step.min(total - waited));
        waited += step;
    }
}

impl Drop for JobWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
