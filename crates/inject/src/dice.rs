//! Randomness behind a trait, so tests roll seeded or scripted dice.
//!
//! The default is a SplitMix64 sequence in one atomic: lock-free under
//! concurrent invocations, a few nanoseconds a roll, and no `rand` dependency.
//! Statistical quality is ample for "fire 20% of the time".

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of uniform numbers in `[0, 1)`.
pub trait Dice: Send + Sync + 'static {
    fn roll(&self) -> f64;
}

/// SplitMix64 over an atomic counter: deterministic for a seed.
#[derive(Debug)]
pub struct SeededDice(AtomicU64);

impl SeededDice {
    pub fn new(seed: u64) -> Self {
        SeededDice(AtomicU64::new(seed))
    }

    /// Seeded from std's per-process random hasher keys (no extra crate).
    pub fn from_entropy() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x7475_7262_756c_656e); // "turbulen"
        SeededDice::new(hasher.finish())
    }
}

impl Dice for SeededDice {
    fn roll(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits: every double in [0, 1) with that spacing.
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Whether a mode with this percentage fires. 0 and 100 are exact and do
/// not roll.
pub(crate) fn fires(percentage: f64, dice: &dyn Dice) -> bool {
    if percentage <= 0.0 {
        false
    } else if percentage >= 100.0 {
        true
    } else {
        dice.roll() * 100.0 < percentage
    }
}

/// A whole number of milliseconds uniformly in `min..=max`.
pub(crate) fn between(min: u64, max: u64, dice: &dyn Dice) -> u64 {
    if max <= min {
        return min;
    }
    let span = (max - min) as f64 + 1.0;
    min.saturating_add((dice.roll() * span) as u64).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_are_in_range_and_reproducible() {
        let (a, b) = (SeededDice::new(7), SeededDice::new(7));
        for _ in 0..10_000 {
            let x = a.roll();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.roll());
        }
    }

    #[test]
    fn rolls_are_roughly_uniform() {
        let dice = SeededDice::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[(dice.roll() * 10.0) as usize] += 1;
        }
        // Each bucket expects 10,000 (sd ~95): within 5%.
        assert!(
            buckets.iter().all(|&n| (9_500..=10_500).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn between_covers_both_bounds_and_nothing_else() {
        let dice = SeededDice::new(3);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let ms = between(100, 104, &dice);
            assert!((100..=104).contains(&ms));
            seen[(ms - 100) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(between(7, 7, &dice), 7);
        assert_eq!(between(9, 3, &dice), 9);
    }
}
