//! Arithmetic modulo the P-256 prime `p = 2²⁵⁶ − 2²²⁴ + 2¹⁹² + 2⁹⁶ − 1`, for the generator
//! multiplications of `key`.
//!
//! `p256` 0.13 has the same arithmetic, but its field operations are out-of-line calls from
//! this crate (no cross-crate inlining without LTO) and its conditional selection is a call per
//! coordinate: together about half of a generator multiplication in the profile. Here every
//! operation is `#[inline(always)]` on four 64-bit limbs, so a mixed point addition compiles to
//! straight-line code.
//!
//! Elements are kept in Montgomery form (`a·R mod p`, `R = 2²⁵⁶`), fully reduced (`< p`). For
//! this `p`, `−p⁻¹ mod 2⁶⁴ = 1` (its low limb is `2⁶⁴ − 1`), so each reduction step multiplies
//! by the low limb itself. Every operation runs the same instructions whatever the values
//! (carries and borrows become masks, never branches), so the time does not depend on secret
//! scalars. Tests compare every operation with `p256`'s on many values.

use p256::FieldBytes;
use p256::elliptic_curve::subtle::{Choice, ConditionallySelectable, CtOption};
use std::ops::{Add, Mul, MulAssign, Neg, Sub};

/// `p`, least significant limb first.
const P: [u64; 4] = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0,
    0xffff_ffff_0000_0001,
];

/// `R² mod p` (`R = 2²⁵⁶`): multiplying by it enters Montgomery form (a test recomputes it).
const R2: [u64; 4] = [
    0x0000_0000_0000_0003,
    0xffff_fffb_ffff_ffff,
    0xffff_ffff_ffff_fffe,
    0x0000_0004_ffff_fffd,
];

/// An element of the P-256 base field, in Montgomery form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fe([u64; 4]);

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = a as u128 + b as u128 + carry as u128;
    (t as u64, (t >> 64) as u64)
}

/// `a − b − borrow` and the borrow out (0 or 1).
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = (a as u128).wrapping_sub(b as u128 + borrow as u128);
    (t as u64, (t >> 127) as u64)
}

/// `acc + a·b + carry` and the high word.
#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = acc as u128 + (a as u128) * (b as u128) + carry as u128;
    (t as u64, (t >> 64) as u64)
}

/// `t mod p` for `t = low + high·2²⁵⁶ < 2p`: `p` is subtracted unless that underflows.
#[inline(always)]
fn reduce_once(low: [u64; 4], high: u64) -> [u64; 4] {
    let (d0, b) = sbb(low[0], P[0], 0);
    let (d1, b) = sbb(low[1], P[1], b);
    let (d2, b) = sbb(low[2], P[2], b);
    let (d3, b) = sbb(low[3], P[3], b);
    let (_, b) = sbb(high, 0, b);
    // b = 1: t < p, keep it.
    let keep = 0u64.wrapping_sub(b);
    [
        (low[0] & keep) | (d0 & !keep),
        (low[1] & keep) | (d1 & !keep),
        (low[2] & keep) | (d2 & !keep),
        (low[3] & keep) | (d3 & !keep),
    ]
}

/// Montgomery multiplication `a·b·R⁻¹ mod p` (coarsely integrated operand scanning: one limb
/// of `b` multiplied in, then one reduction step, four times).
#[inline(always)]
fn mont_mul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut t = [0u64; 4];
    let mut t4 = 0u64;
    for &bi in b {
        let (s0, c) = mac(t[0], a[0], bi, 0);
        let (s1, c) = mac(t[1], a[1], bi, c);
        let (s2, c) = mac(t[2], a[2], bi, c);
        let (s3, c) = mac(t[3], a[3], bi, c);
        let (s4, s5) = adc(t4, c, 0);
        // m = s0 · (−p⁻¹ mod 2⁶⁴) = s0; adding m·p clears the low limb, which is shifted out.
        let m = s0;
        let (_, c) = mac(s0, m, P[0], 0);
        let (r0, c) = mac(s1, m, P[1], c);
        let (r1, c) = adc(s2, c, 0); // P[2] = 0
        let (r2, c) = mac(s3, m, P[3], c);
        let (r3, c) = adc(s4, c, 0);
        t = [r0, r1, r2, r3];
        t4 = s5 + c;
    }
    reduce_once(t, t4)
}

impl Fe {
    pub const ZERO: Fe = Fe([0; 4]);
    /// `R mod p`, the Montgomery form of 1.
    pub const ONE: Fe = Fe([
        0x0000_0000_0000_0001,
        0xffff_ffff_0000_0000,
        0xffff_ffff_ffff_ffff,
        0x0000_0000_ffff_fffe,
    ]);

    /// The element of a big-endian 32-byte integer; none if it is not below `p`.
    pub fn from_bytes(bytes: &FieldBytes) -> CtOption<Fe> {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            *limb = u64::from_be_bytes(bytes[start..start + 8].try_into().expect("8 bytes"));
        }
        let (_, b) = sbb(limbs[0], P[0], 0);
        let (_, b) = sbb(limbs[1], P[1], b);
        let (_, b) = sbb(limbs[2], P[2], b);
        let (_, b) = sbb(limbs[3], P[3], b);
        // b = 1: the integer is below p.
        CtOption::new(Fe(mont_mul(&limbs, &R2)), Choice::from(b as u8))
    }

    /// The big-endian 32-byte integer, `< p`.
    pub fn to_bytes(self) -> FieldBytes {
        let plain = mont_mul(&self.0, &[1, 0, 0, 0]);
        let mut out = FieldBytes::default();
        for (i, limb) in plain.iter().enumerate() {
            let start = 32 - 8 * (i + 1);
            out[start..start + 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    #[inline(always)]
    pub fn double(&self) -> Fe {
        *self + *self
    }

    #[inline(always)]
    fn square(&self) -> Fe {
        *self * *self
    }

    /// `self⁻¹ = self^(p−2)` (Fermat), none for zero. The exponent is public, so the
    /// square-and-multiply runs the same steps for every element.
    pub fn invert(&self) -> CtOption<Fe> {
        // p − 2, most significant limb first.
        const E: [u64; 4] = [P[3], P[2], P[1], P[0] - 2];
        let mut acc = Fe::ONE;
        for limb in E {
            for bit in (0..64).rev() {
                acc = acc.square();
                if (limb >> bit) & 1 == 1 {
                    acc *= *self;
                }
            }
        }
        let zero = self.0.iter().fold(0, |z, l| z | l);
        CtOption::new(acc, Choice::from((zero != 0) as u8))
    }
}

impl Add for Fe {
    type Output = Fe;
    #[inline(always)]
    fn add(self, rhs: Fe) -> Fe {
        let (a, b) = (self.0, rhs.0);
        let (s0, c) = adc(a[0], b[0], 0);
        let (s1, c) = adc(a[1], b[1], c);
        let (s2, c) = adc(a[2], b[2], c);
        let (s3, c) = adc(a[3], b[3], c);
        Fe(reduce_once([s0, s1, s2, s3], c))
    }
}

impl Sub for Fe {
    type Output = Fe;
    #[inline(always)]
    fn sub(self, rhs: Fe) -> Fe {
        let (a, b) = (self.0, rhs.0);
        let (d0, br) = sbb(a[0], b[0], 0);
        let (d1, br) = sbb(a[1], b[1], br);
        let (d2, br) = sbb(a[2], b[2], br);
        let (d3, br) = sbb(a[3], b[3], br);
        // Underflow: add p back.
        let mask = 0u64.wrapping_sub(br);
        let (d0, c) = adc(d0, P[0] & mask, 0);
        let (d1, c) = adc(d1, P[1] & mask, c);
        let (d2, c) = adc(d2, P[2] & mask, c);
        let (d3, _) = adc(d3, P[3] & mask, c);
        Fe([d0, d1, d2, d3])
    }
}

impl Neg for Fe {
    type Output = Fe;
    #[inline(always)]
    fn neg(self) -> Fe {
        Fe::ZERO - self
    }
}

impl Mul for Fe {
    type Output = Fe;
    #[inline(always)]
    fn mul(self, rhs: Fe) -> Fe {
        Fe(mont_mul(&self.0, &rhs.0))
    }
}

impl MulAssign for Fe {
    #[inline(always)]
    fn mul_assign(&mut self, rhs: Fe) {
        *self = *self * rhs;
    }
}

impl ConditionallySelectable for Fe {
    /// `b` when `choice` is set, else `a`, by masks on every limb.
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        let mask = 0u64.wrapping_sub(u64::from(choice.unwrap_u8()));
        Fe([
            a.0[0] ^ (mask & (a.0[0] ^ b.0[0])),
            a.0[1] ^ (mask & (a.0[1] ^ b.0[1])),
            a.0[2] ^ (mask & (a.0[2] ^ b.0[2])),
            a.0[3] ^ (mask & (a.0[3] ^ b.0[3])),
        ])
    }
}

/// `pairs[index − 1]`, reading every pair (`index` in `1..=pairs.len()`): each pair is masked
/// by whether its position is the wanted one and the masked limbs are OR-ed together, so the
/// memory accesses and instructions do not depend on `index`. The index passes through
/// `black_box` first, so the compiler cannot specialise the loop on its value.
#[inline(always)]
pub(super) fn lookup(pairs: &[(Fe, Fe)], index: u16) -> (Fe, Fe) {
    let index = u64::from(std::hint::black_box(index));
    let mut x = [0u64; 4];
    let mut y = [0u64; 4];
    for (j, (px, py)) in pairs.iter().enumerate() {
        // All ones when j + 1 == index (the difference is 0, so 0 − 1 sets the top bit).
        let diff = index ^ (j as u64 + 1);
        let mask = 0u64.wrapping_sub(diff.wrapping_sub(1) >> 63);
        for k in 0..4 {
            x[k] |= px.0[k] & mask;
            y[k] |= py.0[k] & mask;
        }
    }
    (Fe(x), Fe(y))
}

impl Default for Fe {
    fn default() -> Self {
        Fe::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::FieldElement as Theirs;
    use p256::elliptic_curve::PrimeField;
    use sha2::{Digest, Sha256};

    fn theirs(x: &Fe) -> Theirs {
        Option::from(Theirs::from_repr(x.to_bytes())).expect("below p")
    }

    /// Edge values (0, 1, 2, p − 1, p − 2, 2²⁵⁵, all-ones limbs below p) and hashed ones.
    fn values() -> Vec<Fe> {
        let mut raw: Vec<FieldBytes> = Vec::new();
        let be = |limbs: [u64; 4]| {
            let mut b = FieldBytes::default();
            for (i, l) in limbs.iter().enumerate() {
                b[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&l.to_be_bytes());
            }
            b
        };
        raw.push(be([0, 0, 0, 0]));
        raw.push(be([1, 0, 0, 0]));
        raw.push(be([2, 0, 0, 0]));
        raw.push(be([P[0] - 1, P[1], P[2], P[3]]));
        raw.push(be([P[0] - 2, P[1], P[2], P[3]]));
        raw.push(be([0, 0, 0, 1 << 63]));
        raw.push(be([u64::MAX, u64::MAX, u64::MAX, P[3] - 1]));
        raw.push(be([u64::MAX, 0, u64::MAX, 0]));
        for i in 0..120u32 {
            let mut h: FieldBytes = Sha256::digest(i.to_be_bytes());
            h[0] &= 0x7f; // below p
            raw.push(h);
        }
        raw.iter()
            .map(|b| Option::from(Fe::from_bytes(b)).expect("below p"))
            .collect()
    }

    #[test]
    fn constants() {
        // R² by doubling 1 five hundred and twelve times (plain integers, as `add` does).
        let mut x = Fe([1, 0, 0, 0]);
        for _ in 0..512 {
            x = x + x;
        }
        assert_eq!(x.0, R2);
        assert_eq!(Fe::ONE.to_bytes(), Theirs::ONE.to_repr());
        assert_eq!(Fe::ZERO.to_bytes(), Theirs::ZERO.to_repr());
        let mut p = FieldBytes::default();
        p.copy_from_slice(&hex_bytes(
            "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
        ));
        assert!(bool::from(Fe::from_bytes(&p).is_none()), "p is refused");
        p[31] = 0xfe;
        assert!(bool::from(Fe::from_bytes(&p).is_some()), "p - 1 is taken");
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn operations_equal_p256() {
        let vs = values();
        for a in &vs {
            let ta = theirs(a);
            assert_eq!(theirs(&-*a), -ta);
            assert_eq!(theirs(&a.double()), ta.double());
            match Option::<Fe>::from(a.invert()) {
                Some(inv) => assert_eq!(theirs(&inv), ta.invert().unwrap()),
                None => assert_eq!(*a, Fe::ZERO),
            }
            for b in vs.iter().step_by(7) {
                let tb = theirs(b);
                assert_eq!(theirs(&(*a + *b)), ta + tb);
                assert_eq!(theirs(&(*a - *b)), ta - tb);
                assert_eq!(theirs(&(*a * *b)), ta * tb);
                let pick = |c: u8| theirs(&Fe::conditional_select(a, b, Choice::from(c)));
                assert_eq!(pick(0), ta);
                assert_eq!(pick(1), tb);
                let pairs = [(*a, *b), (*b, *a), (*a, *a)];
                assert_eq!(lookup(&pairs, 1), (*a, *b));
                assert_eq!(lookup(&pairs, 2), (*b, *a));
                assert_eq!(lookup(&pairs, 3), (*a, *a));
            }
        }
    }
}
