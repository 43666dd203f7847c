//! Latency histograms: HdrHistogram in microseconds, 2 significant digits
//! (1% resolution), 1 µs to 60 s, and their compact serialization so that
//! reports from concurrent shares merge exactly.
//!
//! The encoding is HdrHistogram's uncompressed V2 format (cookie
//! `0x1c849313`, the counts array as zig-zag LEB128 varints with runs of
//! zeros folded), in standard base64: any HdrHistogram V2 decoder reads it.
//! It is written here rather than through the crate's `serialization`
//! feature, which pulls in nom and flate2 for the compressed variant.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::Histogram;

/// Highest latency tracked, in µs (the longest request timeout).
const HIGH_US: u64 = 60_000_000;
/// Significant digits kept.
const SIGFIG: u8 = 2;
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const HEADER_BYTES: usize = 40;
/// Longest base64 histogram kept in a report; a longer one is dropped and
/// merges of that stage fall back to conservative percentiles.
pub(crate) const MAX_ENCODED_CHARS: usize = 6144;

// The layout of a (low = 1, sigfig = 2) histogram, as the hdrhistogram
// crate computes it: 256 sub-buckets (2 × 10² rounded up to a power of
// two), unit magnitude 0.
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = 7;
const SUB_BUCKET_HALF_COUNT: u64 = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (SUB_BUCKET_HALF_COUNT << 1) - 1;
const LEADING_ZERO_COUNT_BASE: u32 = 64 - (SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1);

/// A new, empty latency histogram.
pub(crate) fn new() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGH_US, SIGFIG).expect("constant bounds are valid")
}

fn index_for(value: u64) -> usize {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = value >> bucket;
    (((u64::from(bucket) + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket
        - SUB_BUCKET_HALF_COUNT) as usize
}

fn value_for(index: usize) -> u64 {
    let index = index as u64;
    let mut bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let mut sub_bucket = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    if bucket < 0 {
        sub_bucket -= SUB_BUCKET_HALF_COUNT;
        bucket = 0;
    }
    sub_bucket << bucket
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    // LEB128 capped at 9 bytes: the ninth carries the top 8 bits whole.
    for _ in 0..8 {
        if value < 0x80 {
            out.push(value as u8);
            return;
        }
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let b = *bytes.get(*at)?;
        *at += 1;
        if i == 8 {
            return Some(value | (u64::from(b) << 56));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    Some(value)
}

fn zig_zag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn un_zig_zag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// The histogram as base64 V2, or `None` when longer than
/// [`MAX_ENCODED_CHARS`] or empty.
pub(crate) fn encode(h: &Histogram<u64>) -> Option<String> {
    if h.is_empty() {
        return None;
    }
    let mut counts = Vec::new();
    let mut next_index = 0usize;
    for v in h.iter_recorded() {
        let index = index_for(v.value_iterated_to());
        let zeros = index.saturating_sub(next_index);
        match zeros {
            0 => {}
            1 => write_varint(0, &mut counts),
            n => write_varint(zig_zag(-(n as i64)), &mut counts),
        }
        write_varint(zig_zag(v.count_at_value() as i64), &mut counts);
        next_index = index + 1;
    }
    let mut bytes = Vec::with_capacity(HEADER_BYTES + counts.len());
    bytes.extend_from_slice(&V2_COOKIE.to_be_bytes());
    bytes.extend_from_slice(&(counts.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    bytes.extend_from_slice(&u32::from(SIGFIG).to_be_bytes());
    bytes.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible value
    bytes.extend_from_slice(&HIGH_US.to_be_bytes());
    bytes.extend_from_slice(&1.0f64.to_be_bytes()); // integer to double ratio
    bytes.extend_from_slice(&counts);
    let text = STANDARD.encode(bytes);
    (text.len() <= MAX_ENCODED_CHARS).then_some(text)
}

/// Reads a histogram written by [`encode`]; `None` if it is not one.
pub(crate) fn decode(text: &str) -> Option<Histogram<u64>> {
    let bytes = STANDARD.decode(text).ok()?;
    let header = bytes.get(..HEADER_BYTES)?;
    let u32_at = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_be_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    if u32_at(0) != V2_COOKIE
        || u32_at(8) != 0
        || u32_at(12) != u32::from(SIGFIG)
        || u64_at(16) != 1
        || u64_at(24) != HIGH_US
    {
        return None;
    }
    let len = u32_at(4) as usize;
    let counts = bytes.get(HEADER_BYTES..HEADER_BYTES + len)?;
    let mut h = new();
    let (mut at, mut index) = (0usize, 0usize);
    while at < counts.len() {
        let n = un_zig_zag(read_varint(counts, &mut at)?);
        if n < 0 {
            index = index.checked_add(n.unsigned_abs() as usize)?;
        } else {
            if n > 0 {
                h.record_n(value_for(index), n as u64).ok()?;
            }
            index += 1;
        }
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = new();
        for v in [
            1, 2, 3, 127, 128, 255, 256, 257, 1000, 54_321, 999_999, 59_999_999,
        ] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        for v in (100..5_000).step_by(37) {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn the_index_arithmetic_is_the_crates() {
        let h = sample();
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            assert_eq!(
                h.lowest_equivalent(value_for(index_for(value))),
                h.lowest_equivalent(value)
            );
        }
    }

    #[test]
    fn round_trips_exactly() {
        let h = sample();
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        assert!(encode(&new()).is_none());
        assert!(decode("not base64!").is_none());
        assert!(decode(&STANDARD.encode([0u8; 40])).is_none());
    }

    #[test]
    fn any_v2_decoder_reads_it() {
        use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
        let h = sample();
        let bytes = STANDARD.decode(encode(&h).unwrap()).unwrap();
        let theirs: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
        assert_eq!(theirs, h);
        // And ours reads theirs.
        let mut written = Vec::new();
        V2Serializer::new().serialize(&h, &mut written).unwrap();
        assert_eq!(decode(&STANDARD.encode(&written)).unwrap(), h);
    }

    #[test]
    fn a_busy_stage_stays_small_and_a_pathological_one_is_dropped() {
        // Every bucket from 50 µs to 500 ms holds a count.
        let fill = |low: u64, high: u64, count: u64| {
            let mut h = new();
            let mut v = low;
            while v < high {
                h.record_n(v, 1 + v % count).unwrap();
                v = h.next_non_equivalent(v);
            }
            h
        };
        let text = encode(&fill(50, 500_000, 1000)).unwrap();
        assert!(text.len() < MAX_ENCODED_CHARS, "{}", text.len());
        assert!(encode(&fill(1, HIGH_US, 1_000_000)).is_none());
    }
}
