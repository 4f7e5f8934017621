//! A bounded sample of a batch's post latencies, for the `PostLatency` metric: CloudWatch computes
//! its percentiles from at most a hundred values per EMF line.

use shared::metrics::MAX_VALUES as MAX_SAMPLES;

/// A sample of post latencies that stays small however many posts a batch makes: while the buffer
/// is full, every other value is dropped and only every second one from then on is kept, so the
/// sample stays spread over the whole batch. CloudWatch computes percentiles from the values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencySample {
    /// Posts measured.
    pub count: u64,
    pub max_us: u64,
    /// At most [`MAX_SAMPLES`] of the latencies, in microseconds.
    pub samples_us: Vec<u64>,
    /// Keep one value of every `stride`.
    stride: u64,
}

impl LatencySample {
    pub fn record(&mut self, latency_us: u64) {
        self.stride = self.stride.max(1);
        self.max_us = self.max_us.max(latency_us);
        if self.count.is_multiple_of(self.stride) {
            if self.samples_us.len() == MAX_SAMPLES {
                let mut index = 0;
                self.samples_us.retain(|_| {
                    index += 1;
                    index % 2 == 1
                });
                self.stride *= 2;
            }
            if self.count.is_multiple_of(self.stride) {
                self.samples_us.push(latency_us);
            }
        }
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_sample_stays_within_emfs_hundred_values_and_spread_over_the_batch() {
        let mut sample = LatencySample::default();
        for latency in 0..10_000 {
            sample.record(latency);
        }
        assert_eq!((sample.count, sample.max_us), (10_000, 9_999));
        assert!(
            sample.samples_us.len() > 50 && sample.samples_us.len() <= MAX_SAMPLES,
            "{}",
            sample.samples_us.len()
        );
        assert_eq!(sample.samples_us[0], 0);
        assert!(*sample.samples_us.last().expect("a value") > 9_000, "the end of the batch is sampled too");
        assert!(
            sample.samples_us.windows(2).all(|pair| pair[1] - pair[0] == sample.samples_us[1]),
            "evenly spread"
        );
    }
}
