//! Watching a process through `/proc`: resident memory (sampled every 250 ms for its peak) and
//! CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// How often the resident memory is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// VmRSS of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU time of a process (all its threads) in seconds, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in ticks.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first here; 14 is index 11
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Samples a process's VmRSS every 250 ms on a thread of its own and keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    pub start_kib: u64,
}

impl RssSampler {
    /// Starts sampling `pid`; fails if the process cannot be read.
    pub fn start(pid: u32) -> Result<RssSampler, String> {
        let pid = pid.to_string();
        let start_kib = rss_kib(&pid).ok_or_else(|| {
            format!("cannot read the resident memory of process {pid} (/proc/{pid}/status)")
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(start_kib));
        let thread = {
            let stop = stop.clone();
            let peak = peak_kib.clone();
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(kib) = rss_kib(&pid) {
                            peak.fetch_max(kib, Ordering::Relaxed);
                        }
                        std::thread::park_timeout(SAMPLE_INTERVAL);
                    }
                })
                .map_err(|e| format!("cannot start the memory sampler: {e}"))?
        };
        Ok(RssSampler {
            stop,
            peak_kib,
            thread: Some(thread),
            start_kib,
        })
    }

    /// Stops sampling (after one last sample) and returns the peak in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.peak_kib.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            parse_vm_rss("Name:\tkeel\nVmPeak:\t  9 kB\nVmRSS:\t   45120 kB\nThreads: 3\n"),
            Some(45120)
        );
        assert_eq!(parse_vm_rss("Name:\tkeel\n"), None);
        let stat = "1234 (keel (serve) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(290));
    }

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let sampler = RssSampler::start(me).expect("own process");
        assert!(sampler.start_kib > 0);
        let peak = sampler.finish();
        assert!(peak > 0);
        assert!(cpu_seconds(&me.to_string()).is_some());
        assert!(RssSampler::start(u32::MAX).is_err());
    }
}
