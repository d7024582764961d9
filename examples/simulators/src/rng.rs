//! A tiny deterministic PRNG (SplitMix64).
//!
//! Simulated data and probabilistic faults must replay identically from a seed on every machine, so
//! the generator is defined here rather than borrowed from a crate whose algorithm may change.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` must be non-zero). The modulo bias is irrelevant at the bounds
    /// used here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A value in `[0, 1)` built from the top 53 bits, the precision of an `f64`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn floats_stay_in_unit_interval() {
        let mut rng = SplitMix64::new(7);
        let mean = (0..10_000)
            .map(|_| rng.next_f64())
            .inspect(|x| assert!((0.0..1.0).contains(x)))
            .sum::<f64>()
            / 10_000.0;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
    }
}
