//! A small deterministic random number generator (SplitMix64): repeatable runs from `--seed`.

/// SplitMix64: fast, good enough to spread requests over ids, and deterministic per seed.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A generator for stream `stream` of `seed` (for example one per connection).
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut base =
            SplitMix64(seed ^ 0x5851_F42D_4C95_7F2D_u64.wrapping_mul(stream.wrapping_add(1)));
        SplitMix64(base.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), without modulo bias worth speaking of for our sizes.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = SplitMix64::for_stream(42, 3);
        let mut b = SplitMix64::for_stream(42, 3);
        let mut c = SplitMix64::for_stream(42, 4);
        let xs: Vec<usize> = (0..100).map(|_| a.below(7)).collect();
        let ys: Vec<usize> = (0..100).map(|_| b.below(7)).collect();
        let zs: Vec<usize> = (0..100).map(|_| c.below(7)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&x| x < 7));
        for v in 0..7 {
            assert!(xs.contains(&v), "value {v} never drawn");
        }
    }
}
