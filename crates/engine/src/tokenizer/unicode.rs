//! Code point classification (Unicode general-category classes, White_Space) and the GPT-2
//! byte <-> printable-character mapping used by byte-level BPE.

use std::sync::OnceLock;

use super::unicode_tables::CATEGORY_RANGES;

/// Class bits of a code point, one per general-category major class, plus `WHITESPACE`.
/// The value 0 means "no code point" (a position outside the text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct CpFlags(u16);

impl CpFlags {
    pub const UNDEFINED: u16 = 0x01; // Cn: unassigned
    pub const NUMBER: u16 = 0x02; // \p{N}
    pub const LETTER: u16 = 0x04; // \p{L}
    #[allow(dead_code)] // documents the class bit present in the table
    pub const SEPARATOR: u16 = 0x08; // \p{Z}
    pub const MARK: u16 = 0x10; // \p{M}
    pub const PUNCTUATION: u16 = 0x20; // \p{P}
    pub const SYMBOL: u16 = 0x40; // \p{S}
    #[allow(dead_code)] // documents the class bit present in the table
    pub const CONTROL: u16 = 0x80; // \p{C}
    pub const WHITESPACE: u16 = 0x100; // White_Space property (what `\s` means here)

    /// Flags of a position outside the text being split.
    pub const NONE: CpFlags = CpFlags(0);

    #[inline]
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    #[inline]
    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    #[inline]
    pub fn is_mark(self) -> bool {
        self.0 & Self::MARK != 0
    }
    #[inline]
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    /// True for any real code point (false only for [`CpFlags::NONE`]).
    #[inline]
    pub fn exists(self) -> bool {
        self.0 != 0
    }
    /// The general-category class bit alone (whitespace flag removed).
    #[inline]
    pub fn category(self) -> u16 {
        self.0 & 0xFF
    }
}

/// Unicode White_Space code points (PropList.txt); fixed since Unicode 6.
#[inline]
pub(crate) fn is_white_space(cp: u32) -> bool {
    matches!(
        cp,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

fn category_bits(cp: u32) -> u16 {
    // Index of the last range starting at or before `cp`.
    let idx = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
    match idx.checked_sub(1) {
        Some(i) => u16::from(CATEGORY_RANGES[i].1),
        None => CpFlags::UNDEFINED,
    }
}

/// Lookup table for the first 256 code points (the hot path for Latin text).
fn latin_table() -> &'static [CpFlags; 256] {
    static TABLE: OnceLock<[CpFlags; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [CpFlags::NONE; 256];
        for (cp, slot) in (0u32..).zip(t.iter_mut()) {
            *slot = compute_flags(cp);
        }
        t
    })
}

fn compute_flags(cp: u32) -> CpFlags {
    let mut bits = category_bits(cp);
    if is_white_space(cp) {
        bits |= CpFlags::WHITESPACE;
    }
    CpFlags(bits)
}

/// Class flags of a code point.
#[inline]
pub(crate) fn flags(cp: char) -> CpFlags {
    let cp = u32::from(cp);
    if cp < 256 {
        latin_table()[cp as usize]
    } else {
        compute_flags(cp)
    }
}

/// GPT-2's reversible byte -> printable character map: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in byte order.
pub(crate) fn byte_to_char_table() -> &'static [char; 256] {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = ['\0'; 256];
        let mut next = 256u32;
        for (b, slot) in (0u32..).zip(t.iter_mut()) {
            let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
            let cp = if printable {
                b
            } else {
                next += 1;
                next - 1
            };
            *slot = char::from_u32(cp).unwrap_or('\u{FFFD}');
        }
        t
    })
}

/// Inverse of [`byte_to_char_table`]: the byte a printable character stands for.
#[inline]
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => u8::try_from(cp).ok(),
        0x100..=0x143 => {
            // The 68 remapped bytes, in increasing byte order.
            static REMAPPED: OnceLock<Vec<u8>> = OnceLock::new();
            let remapped = REMAPPED.get_or_init(|| {
                (0u8..=255)
                    .filter(|&b| !matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF))
                    .collect()
            });
            remapped.get((cp - 0x100) as usize).copied()
        }
        _ => None,
    }
}

/// Appends the byte-level encoding of `s` (each UTF-8 byte as its printable character).
pub(crate) fn byte_encode_into(s: &str, out: &mut String) {
    let table = byte_to_char_table();
    for &b in s.as_bytes() {
        out.push(table[usize::from(b)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_of_samples() {
        assert!(flags('a').is_letter());
        assert!(flags('Ж').is_letter());
        assert!(flags('中').is_letter());
        assert!(flags('7').is_number());
        assert!(flags('٣').is_number()); // Arabic-Indic digit
        assert!(flags('½').is_number());
        assert!(flags(' ').is_whitespace());
        assert!(flags('\u{3000}').is_whitespace());
        assert!(flags('\u{0301}').is_mark());
        assert_eq!(flags('!').category(), CpFlags::PUNCTUATION);
        assert_eq!(flags('🦙').category(), CpFlags::SYMBOL);
        assert_eq!(flags('\u{E000}').category(), CpFlags::CONTROL); // private use
        assert_eq!(flags('\u{10FFFF}').category(), CpFlags::UNDEFINED);
        // Unicode 15.1 addition (CJK Extension I) must be a letter.
        assert!(flags('\u{2EBF0}').is_letter());
    }

    #[test]
    fn byte_map_roundtrip() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(t[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
