//! Deterministic mutations in libFuzzer's spirit: bit flips, interesting bytes and numbers,
//! insertions, deletions, truncation, copies within an input and splices of two seeds.

/// A xorshift generator and the mutations it drives.
pub struct Mutator {
    state: u64,
}

/// Bytes and digits that parsers treat specially.
const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff0123456789-+.eE\"\\{}[],:nN \n";

/// Texts a JSON or header parser may mishandle.
const TOKENS: &[&str] = &[
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211455",
    "1e400",
    "-0",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\\u0000",
    "\\ud800",
    "0x",
    "%FF",
    "s0-l0-i0",
    "s18446744073709551615-l4294967295-i18446744073709551615",
];

impl Mutator {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Mutator { state: seed | 1 }
    }

    fn step(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.step() % n as u64) as usize
        }
    }

    /// One to four mutations of one of `seeds` (or a splice of two).
    pub fn mutate(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut data = seeds[self.below(seeds.len())].clone();
        for _ in 0..1 + self.below(4) {
            self.once(&mut data, seeds);
        }
        data
    }

    fn once(&mut self, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let at = self.below(data.len() + 1);
        match self.below(8) {
            0 if !data.is_empty() => {
                let i = self.below(data.len());
                data[i] ^= 1 << self.below(8);
            }
            1 if !data.is_empty() => {
                let i = self.below(data.len());
                data[i] = INTERESTING[self.below(INTERESTING.len())];
            }
            2 => {
                let token = TOKENS[self.below(TOKENS.len())].as_bytes();
                let end = (at + self.below(24)).min(data.len());
                data.splice(at..end, token.iter().copied());
            }
            3 => data.insert(at, INTERESTING[self.below(INTERESTING.len())]),
            4 if !data.is_empty() => {
                let end = (at + 1 + self.below(16)).min(data.len());
                data.drain(at.min(data.len() - 1)..end.max(at.min(data.len() - 1)));
            }
            5 => data.truncate(at),
            6 if data.len() > 1 => {
                let from = self.below(data.len());
                let len = self.below(data.len() - from).min(64);
                let chunk = data[from..from + len].to_vec();
                data.splice(at..at, chunk);
            }
            _ => {
                let other = &seeds[self.below(seeds.len())];
                let cut = self.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[cut..]);
            }
        }
    }
}
