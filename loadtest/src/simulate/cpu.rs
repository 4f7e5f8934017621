//! Lambda's CPU as an invocation gets it: a function has CPU in proportion to its memory, one vCPU at
//! 1,769 MB (the worker runs on one thread, so more than one vCPU does not help it), and each
//! delivery costs the worker some CPU (building, signing and sending a request, reading its answer:
//! `worker_cpu` measures it). Each invocation's posts take their CPU one after another on that share
//! of a core, while their network waits overlap: past some rate, the CPU sets the pace, not the
//! account.
//!
//! The invocation a post belongs to is the one whose future polls it: [`TimedFunction`] runs each
//! invocation inside [`Cpu::scope`], and the endpoint charges [`charge`] before it answers.
//!
//! [`TimedFunction`]: super::observed::TimedFunction

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use shared::sync::lock;
use tokio::time::Instant;

/// Memory at which Lambda gives a function one full vCPU.
pub const FULL_VCPU_MB: f64 = 1_769.0;

/// What each delivery costs, at what share of a core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuModel {
    /// The worker's CPU per delivery at one full core.
    pub per_delivery: Duration,
    /// The fraction of a core an invocation gets: its memory ÷ 1,769 MB, at most 1.
    pub share: f64,
}

impl CpuModel {
    pub fn for_memory(memory_mb: u32, per_delivery: Duration) -> Self {
        Self { per_delivery, share: (f64::from(memory_mb) / FULL_VCPU_MB).clamp(0.01, 1.0) }
    }

    /// The wall time one delivery's CPU takes on this share.
    pub fn wall_per_delivery(&self) -> Duration {
        self.per_delivery.div_f64(self.share)
    }
}

/// One invocation's CPU: when it is next free.
#[derive(Debug)]
pub struct Cpu {
    free_at: Mutex<Instant>,
}

tokio::task_local! {
    static INVOCATION: Arc<Cpu>;
}

impl Cpu {
    /// Runs `future` as one invocation with a CPU of its own.
    pub async fn scope<F: std::future::Future>(future: F) -> F::Output {
        INVOCATION.scope(Arc::new(Cpu { free_at: Mutex::new(Instant::now()) }), future).await
    }
}

/// Waits for the current invocation's CPU to do one delivery's work; nothing outside an invocation
/// or without a model.
pub async fn charge(model: Option<CpuModel>) {
    let Some(model) = model else { return };
    let Ok(cpu) = INVOCATION.try_with(Arc::clone) else { return };
    let done = {
        let mut free_at = lock(&cpu.free_at);
        *free_at = (*free_at).max(Instant::now()) + model.wall_per_delivery();
        *free_at
    };
    tokio::time::sleep_until(done).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_has_a_share_of_a_core_in_proportion_to_its_memory_and_one_core_at_most() {
        let us = Duration::from_micros(30);
        assert_eq!(CpuModel::for_memory(1_769, us).wall_per_delivery(), us);
        let half = CpuModel::for_memory(884, us).wall_per_delivery().as_secs_f64();
        assert!((half - 60e-6).abs() < 1e-7, "{half}");
        assert_eq!(CpuModel::for_memory(3_538, us).share, 1.0, "one thread uses one core");
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocations_deliveries_take_their_cpu_one_after_another_and_two_invocations_in_parallel() {
        let model = Some(CpuModel { per_delivery: Duration::from_millis(1), share: 0.5 });
        let began = Instant::now();
        Cpu::scope(async { futures::future::join_all((0..10).map(|_| charge(model))).await }).await;
        assert_eq!(began.elapsed(), Duration::from_millis(20), "ten deliveries at 2 ms each, in a row");
        let began = Instant::now();
        let one = Cpu::scope(async { futures::future::join_all((0..10).map(|_| charge(model))).await });
        let two = Cpu::scope(async { futures::future::join_all((0..10).map(|_| charge(model))).await });
        futures::future::join(one, two).await;
        assert_eq!(began.elapsed(), Duration::from_millis(20), "each invocation has its own share");
        charge(model).await;
    }
}
