//! Which bytes of a block of sixteen are what a scan looks for, as a mask: bit i for byte i.
//!
//! The page reader's scan over each string and number, and the CSV row's, are where those two
//! spend most of their time per byte. SSE2, which every x86_64 CPU has, answers for sixteen bytes
//! in a few instructions; other CPUs get the same masks a byte at a time.

/// Sixteen bytes of text.
pub type Block = [u8; 16];

/// Past the ASCII digits at `at` in `bytes`: sixteen a step while `bytes` has that many left.
#[inline(always)]
pub fn past_digits(bytes: &[u8], mut at: usize) -> usize {
    while let Some(block) = bytes.get(at..at + 16) {
        let found = digits(block.try_into().expect("sixteen bytes"));
        at += found.trailing_ones() as usize;
        if found != 0xffff {
            return at;
        }
    }
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// Where `block` has any of `bytes`.
#[inline(always)]
pub fn any_of<const N: usize>(block: &Block, bytes: [u8; N]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return sse2::any_of(block, bytes);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return bytewise::any_of(block, bytes);
}

/// Where `block` has an ASCII digit.
#[inline(always)]
pub fn digits(block: &Block) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return sse2::digits(block);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return bytewise::digits(block);
}

/// Where `block` has a byte that ends plain ASCII text in a JSON string: `"`, `\`, a control byte
/// (below 0x20) or a byte outside ASCII.
#[inline(always)]
pub fn string_stops(block: &Block) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return sse2::string_stops(block);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return bytewise::string_stops(block);
}

/// The masks with SSE2, which every x86_64 CPU has (it is in the target's baseline, so the build
/// always enables it). Each step inlines into its scan's loop: a function compiled with the
/// feature enabled for itself alone would not, and cost more than the bytes it saves.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use super::Block;
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set_epi64x, _mm_set1_epi8, _mm_setzero_si128, _mm_sub_epi8,
    };

    // SAFETY (every `unsafe` below): these intrinsics need nothing but SSE2, and this module is
    // compiled only where the build enables SSE2; none of them reads or writes through a pointer.

    /// `block` in a vector register. Two words rather than a load through a pointer: the same
    /// one instruction, and no pointer.
    #[inline(always)]
    fn load(block: &Block) -> __m128i {
        let half = |from: usize| {
            i64::from_le_bytes(block[from..from + 8].try_into().expect("eight bytes"))
        };
        unsafe { _mm_set_epi64x(half(8), half(0)) }
    }

    #[inline(always)]
    fn splat(byte: u8) -> __m128i {
        unsafe { _mm_set1_epi8(byte as i8) }
    }

    #[inline(always)]
    fn mask(found: __m128i) -> u32 {
        unsafe { _mm_movemask_epi8(found) as u32 }
    }

    #[inline(always)]
    pub fn any_of<const N: usize>(block: &Block, bytes: [u8; N]) -> u32 {
        let block = load(block);
        let found = bytes
            .iter()
            .fold(unsafe { _mm_setzero_si128() }, |found, &byte| unsafe {
                _mm_or_si128(found, _mm_cmpeq_epi8(block, splat(byte)))
            });
        mask(found)
    }

    #[inline(always)]
    pub fn digits(block: &Block) -> u32 {
        // A digit is a byte whose distance above `0`, wrapping, is at most 9.
        let above_zero = unsafe { _mm_sub_epi8(load(block), splat(b'0')) };
        mask(unsafe { _mm_cmpeq_epi8(_mm_min_epu8(above_zero, splat(9)), above_zero) })
    }

    #[inline(always)]
    pub fn string_stops(block: &Block) -> u32 {
        let block = load(block);
        // Compared as signed bytes, those outside ASCII are below zero: one test finds them and
        // the control bytes together.
        let control_or_high = unsafe { _mm_cmplt_epi8(block, splat(0x20)) };
        let quote = unsafe { _mm_cmpeq_epi8(block, splat(b'"')) };
        let backslash = unsafe { _mm_cmpeq_epi8(block, splat(b'\\')) };
        mask(unsafe { _mm_or_si128(control_or_high, _mm_or_si128(quote, backslash)) })
    }
}

/// The masks a byte at a time: for other CPUs, and to test the vector ones against.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod bytewise {
    use super::Block;

    fn mask(block: &Block, wanted: impl Fn(u8) -> bool) -> u32 {
        (0..16).fold(0, |mask, i| mask | u32::from(wanted(block[i])) << i)
    }

    pub fn any_of<const N: usize>(block: &Block, bytes: [u8; N]) -> u32 {
        mask(block, |byte| bytes.contains(&byte))
    }

    pub fn digits(block: &Block) -> u32 {
        mask(block, |byte| byte.is_ascii_digit())
    }

    pub fn string_stops(block: &Block) -> u32 {
        mask(block, |byte| {
            byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each byte that matters in every place, among each byte next to it; then random blocks of
    /// such bytes.
    #[test]
    fn every_mask_is_the_one_made_a_byte_at_a_time() {
        let bytes = [
            b'"', b'\\', b',', b'0', b'9', b'/', b':', b'x', b' ', b'!', 0x00, 0x1f, 0x20, 0x7f,
            0x80, 0xb0, 0xff,
        ];
        let check = |block: &Block| {
            assert_eq!(
                any_of(block, [b'"', b'\\']),
                bytewise::any_of(block, [b'"', b'\\']),
                "{block:?}"
            );
            assert_eq!(any_of(block, [b',']), bytewise::any_of(block, [b',']));
            assert_eq!(digits(block), bytewise::digits(block), "{block:?}");
            assert_eq!(
                string_stops(block),
                bytewise::string_stops(block),
                "{block:?}"
            );
        };
        for &special in &bytes {
            for &neighbour in &bytes {
                for at in 0..16 {
                    let mut block = [neighbour; 16];
                    block[at] = special;
                    check(&block);
                }
            }
        }
        let mut rng = crate::test_rng::Rng(16);
        for _ in 0..10_000 {
            let block: Block = std::array::from_fn(|_| *rng.pick(&bytes));
            check(&block);
        }
        // Every byte there is, in every place.
        for byte in 0..=255u8 {
            for at in 0..16 {
                let mut block = [b'x'; 16];
                block[at] = byte;
                check(&block);
            }
        }
    }

    #[test]
    fn digits_end_where_the_first_other_byte_is() {
        for len in 0..40 {
            for end in [
                None,
                Some(b'.'),
                Some(b'e'),
                Some(b'x'),
                Some(b'/'),
                Some(b':'),
            ] {
                let mut text = b"12".to_vec();
                text.extend(std::iter::repeat_n(b'7', len));
                if let Some(end) = end {
                    text.push(end);
                    text.extend_from_slice(b"99");
                }
                assert_eq!(past_digits(&text, 2), 2 + len, "{len} {end:?}");
                assert_eq!(past_digits(&text, text.len()), text.len());
            }
        }
    }

    #[test]
    fn the_bytewise_masks_say_where_each_byte_is() {
        let block = *b"a\"b\\,0 9\x1f\x80zzzzzz";
        assert_eq!(bytewise::any_of(&block, [b'"', b'\\']), 0b1010);
        assert_eq!(bytewise::any_of(&block, [b',']), 0b1_0000);
        assert_eq!(bytewise::digits(&block), 0b1010_0000);
        assert_eq!(bytewise::string_stops(&block), 0b11_0000_1010);
    }
}
