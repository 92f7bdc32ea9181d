//! P-256 keys and ECDSA signatures for the internal TLS, with the generator's multiples
//! precomputed once per process.
//!
//! Making a cluster's TLS material takes eight multiplications of the P-256 generator: one per
//! key (its public point) and one per signature (`k·G`). RustCrypto's `p256` 0.13 computes
//! each with its generic variable-base ladder (256 doublings, 64 additions and a 16-entry
//! table built per call; `mul_by_generator` carries a "TODO: precomputed basepoint tables").
//! Here the generator's multiples are computed once, in a [`OnceLock`]: for each of 37
//! seven-bit windows `i`, the affine points `j·2^(7i)·G` for `j = 1..=64` (2,368 points,
//! 148 KiB). A multiplication recodes the scalar into 37 signed digits in `−64..=64` and adds
//! one table point per window: 37 complete mixed additions, no doubling. The table takes some
//! tens of milliseconds to build (a point addition and an inversion per entry), once per
//! process. Seven bits measured better than six (43 additions, 32 entries a row) and four (65
//! additions) on the 2-core machine; wider rows cost more to scan than the additions they save.
//!
//! Constant time in the secret scalar: the recoding is arithmetic (no branch on a digit), each
//! window reads all 64 entries of its row and ORs them together under masks that keep only the
//! wanted one (`field::lookup`, the index passed through `black_box`), the sign is applied with
//! a conditional negation of `y`, and the additions use the complete mixed formulas of Renes,
//! Costello and Batina for `a = −3` (no exceptional case for the identity or equal points; a
//! zero digit adds entry 1 and the sum is dropped by a conditional selection). The loops and
//! memory accesses depend only on the window index.
//!
//! The points are our own projective `(X : Y : Z)` over tusk's own field element
//! (`field.rs`: the same Montgomery arithmetic as `p256`'s, but inlined, which `p256`'s
//! out-of-line calls are not without LTO), because `p256` 0.13 keeps a point's coordinates
//! private and offers no batch normalisation for P-256: so several points are made affine with
//! one field inversion (Montgomery's trick: invert the product of the `Z`s, recover each
//! inverse with multiplications), where `to_affine` costs an inversion per point.
//!
//! The signature is the one `p256::ecdsa::SigningKey` makes (RFC 6979 nonce from the key and
//! the SHA-256 digest, `r = x(k·G) mod n`, `s = k⁻¹(z + r·d)`, no low-s normalisation), so
//! certificates stay byte-identical; tests compare both with RustCrypto on many keys.
//!
//! Several keys ([`EcKey::from_scalars`]) and several signatures by one key
//! ([`EcKey::sign_messages`]) are made together: their points share one field inversion, and
//! the nonces `k` share one scalar inversion (RustCrypto's constant-time `BatchInvert`) instead
//! of one per signature, a scalar inversion being some 430 multiplications in `p256` 0.13.

use p256::ecdsa::signature::{self, Keypair, Signer};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::elliptic_curve::bigint::U256;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::Double;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use p256::elliptic_curve::zeroize::Zeroize;
use p256::elliptic_curve::{Curve, FieldBytesEncoding, PrimeField};
use p256::{
    AffinePoint, EncodedPoint, FieldBytes, NistP256, NonZeroScalar, ProjectivePoint, Scalar,
};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

use super::field::{self, Fe};
use x509_cert::der::asn1::BitStringRef;
use x509_cert::der::{AnyRef, Document};
use x509_cert::spki::{
    AlgorithmIdentifier, AssociatedAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfo,
};

/// Bits per window.
const W: usize = 7;
/// Windows: enough for the 256 bits and the recoding's final carry (the top window's digit is
/// at most `2^(256 − W·(WINDOWS − 1)) ≤ 2^(W−1)`, so it needs no recoding).
const WINDOWS: usize = 257usize.div_ceil(W);
/// Multiples per window: `1..=2^(W−1)` (negatives come from negation).
const ENTRIES: usize = 1 << (W - 1);

/// A table entry: an affine point `(x, y)`, never the identity.
#[derive(Clone, Copy)]
struct Entry {
    x: Fe,
    y: Fe,
}

/// A window's multiples, `(x, y)` affine.
type Row = [(Fe, Fe); ENTRIES];

/// A point in projective coordinates `(X : Y : Z)` (`x = X/Z`, `y = Y/Z`; the identity is
/// `(0 : 1 : 0)`). Ours rather than `p256`'s, whose coordinates are private, so that the `Z`s
/// of a batch can be inverted together.
#[derive(Clone, Copy)]
struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Point {
    const IDENTITY: Point = Point {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ZERO,
    };
}

impl ConditionallySelectable for Point {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Point {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            z: Fe::conditional_select(&a.z, &b.z, choice),
        }
    }
}

/// P-256's `b` in `y² = x³ − 3x + b` (NIST SP 800-186 § G.1.2), big-endian.
const CURVE_B: [u8; 32] = [
    0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7, 0xb3, 0xeb, 0xbd, 0x55, 0x76, 0x98, 0x86, 0xbc,
    0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53, 0xb0, 0xf6, 0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b,
];

/// `p + q` for a projective `p` (the identity included) and an affine `q` (not the identity),
/// with the complete formulas for `a = −3` of Renes, Costello and Batina (2015, Algorithm 5):
/// no exceptional case, so no branch on the points.
fn add_mixed(p: &Point, q: &Entry, b: &Fe) -> Point {
    let t0 = p.x * q.x;
    let t1 = p.y * q.y;
    let t3 = (q.x + q.y) * (p.x + p.y) - (t0 + t1);
    let t4 = q.y * p.z + p.y;
    let y3 = q.x * p.z + p.x;
    let x3 = y3 - *b * p.z;
    let x3 = x3.double() + x3;
    let z3 = t1 - x3;
    let x3 = t1 + x3;
    let t2 = p.z.double() + p.z;
    let y3 = *b * y3 - t2 - t0;
    let y3 = y3.double() + y3;
    let t0 = t0.double() + t0 - t2;
    Point {
        x: x3 * t3 - t4 * y3,
        y: x3 * z3 + t0 * y3,
        z: z3 * t4 + t3 * t0,
    }
}

/// The affine `(x, y)` of each point, with one field inversion for all (Montgomery's trick:
/// the product of the `Z`s is inverted, and each inverse is recovered with multiplications);
/// `None` if one of them is the identity. Constant time in the points.
fn to_affine_all(points: &[Point]) -> Option<Vec<(Fe, Fe)>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
    for p in points {
        prefix.push(acc);
        acc *= p.z;
    }
    let mut inv: Option<Fe> = acc.invert().into();
    let mut out = vec![(Fe::ZERO, Fe::ZERO); points.len()];
    for (i, p) in points.iter().enumerate().rev() {
        let all = inv?;
        // all = (z_0 ... z_i)⁻¹, so z_i⁻¹ = all · (z_0 ... z_{i-1}).
        let z_inv = all * prefix[i];
        out[i] = (p.x * z_inv, p.y * z_inv);
        inv = Some(all * p.z);
    }
    Some(out)
}

fn affine_point(x: &Fe, y: &Fe) -> Option<AffinePoint> {
    let encoded = EncodedPoint::from_affine_coordinates(&x.to_bytes(), &y.to_bytes(), false);
    AffinePoint::from_encoded_point(&encoded).into()
}

struct Table {
    rows: Box<[Row; WINDOWS]>,
    b: Fe,
}

/// `table().rows[i][j] = (j + 1)·16^i·G`, affine.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut projective = vec![ProjectivePoint::IDENTITY; WINDOWS * ENTRIES];
        let mut base = ProjectivePoint::GENERATOR;
        for row in projective.chunks_exact_mut(ENTRIES) {
            let mut p = base;
            for slot in row.iter_mut() {
                *slot = p;
                p += base;
            }
            for _ in 0..W {
                base = base.double();
            }
        }
        // A field inversion per point: a few milliseconds, once per process.
        let entries: Vec<(Fe, Fe)> = projective
            .iter()
            .map(|p| {
                let encoded = p.to_affine().to_encoded_point(false);
                let coordinate = |c: Option<&FieldBytes>| {
                    Option::<Fe>::from(Fe::from_bytes(c.expect("not the identity")))
                        .expect("a coordinate is a field element")
                };
                (coordinate(encoded.x()), coordinate(encoded.y()))
            })
            .collect();
        let rows: Vec<Row> = entries
            .chunks_exact(ENTRIES)
            .map(|c| <Row>::try_from(c).expect("chunks of ENTRIES"))
            .collect();
        let rows = Box::new(<[Row; WINDOWS]>::try_from(rows).unwrap_or_else(|_| unreachable!()));
        let b = Option::<Fe>::from(Fe::from_bytes(FieldBytes::from_slice(&CURVE_B)))
            .expect("b is a field element");
        Table { rows, b }
    })
}

/// The scalar as [`WINDOWS`] signed base-`2^W` digits `d_i` in `−2^(W−1)..=2^(W−1)` with
/// `k = Σ d_i·2^(W·i)`, computed without branches on its bits.
fn signed_digits(k: &Scalar) -> [i16; WINDOWS] {
    let bytes = k.to_bytes(); // big-endian
    // Bit `i` of the scalar (0 beyond bit 255); positions are public, the bits are not.
    let bit = |i: usize| -> u16 {
        if i >= 256 {
            0
        } else {
            u16::from((bytes[31 - i / 8] >> (i % 8)) & 1)
        }
    };
    const HALF: u16 = 1 << (W - 1);
    let mut digits = [0i16; WINDOWS];
    let mut carry = 0u16;
    for (i, d) in digits.iter_mut().enumerate() {
        let window: u16 = (0..W).map(|b| bit(W * i + b) << b).sum();
        let t = window + carry; // 0..=2^W
        if i == WINDOWS - 1 {
            // The top window holds few bits: t <= 2^(W-1), no carry out.
            *d = t as i16;
        } else {
            carry = (t + HALF) >> W; // 1 when t >= 2^(W-1)
            *d = t as i16 - (carry << W) as i16; // -2^(W-1)..2^(W-1) (0 when t == 2^W)
        }
    }
    digits
}

/// `k·G` in our projective form, in constant time in `k`.
fn mul_generator_projective(k: &Scalar) -> Point {
    let table = table();
    let digits = signed_digits(k);
    let mut acc = Point::IDENTITY;
    for (row, &d) in table.rows.iter().zip(digits.iter()) {
        let negative = Choice::from((d >> 15) as u8 & 1); // d < 0
        let mask = d >> 15; // -1 when d < 0, else 0
        let magnitude = ((d ^ mask) - mask) as u16; // |d|, 0..=2^(W-1)
        // Entry 1 stands in for a zero digit (whose sum is then dropped): the formulas
        // need an affine point that is not the identity. `magnitude | zero` is 1 for 0.
        let zero = (u64::from(magnitude).wrapping_sub(1) >> 63) as u16;
        let (x, y) = field::lookup(row, magnitude | zero);
        let mut p = Entry { x, y };
        p.y = Fe::conditional_select(&p.y, &-p.y, negative);
        let sum = add_mixed(&acc, &p, &table.b);
        acc = Point::conditional_select(&sum, &acc, magnitude.ct_eq(&0));
    }
    acc
}

/// `k·G`, from the precomputed table, in constant time in `k`.
pub fn mul_generator(k: &Scalar) -> ProjectivePoint {
    let p = mul_generator_projective(k);
    match to_affine_all(&[p]).and_then(|xy| affine_point(&xy[0].0, &xy[0].1)) {
        Some(a) => ProjectivePoint::from(a),
        None => ProjectivePoint::IDENTITY,
    }
}

/// A public point, never the identity, encoded as RustCrypto's `VerifyingKey` encodes it
/// (SPKI: id-ecPublicKey, prime256v1, the uncompressed point). Made without
/// `VerifyingKey::from_affine`, whose identity check compares projective points through
/// `to_affine`: two field inversions per key, 9% of the full plan in the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicPoint(AffinePoint);

impl PublicPoint {
    pub fn as_affine(&self) -> &AffinePoint {
        &self.0
    }

    /// RustCrypto's verifying key for this point (to check signatures).
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_affine(self.0).expect("a public point is not the identity")
    }
}

impl EncodePublicKey for PublicPoint {
    fn to_public_key_der(&self) -> x509_cert::spki::Result<Document> {
        let point = self.0.to_encoded_point(false);
        SubjectPublicKeyInfo {
            algorithm: <p256::PublicKey as AssociatedAlgorithmIdentifier>::ALGORITHM_IDENTIFIER,
            subject_public_key: BitStringRef::new(0, point.as_bytes())?,
        }
        .try_into()
    }
}

/// A P-256 private key and its public point; signs certificates (implements what
/// `x509_cert`'s builder asks of a signer) with RFC 6979 deterministic ECDSA over SHA-256.
#[derive(Clone)]
pub struct EcKey {
    secret: NonZeroScalar,
    public: PublicPoint,
}

impl Drop for EcKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl std::fmt::Debug for EcKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// The key for a 32-byte big-endian scalar in `1..n`; `None` outside that range.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let secret: Option<NonZeroScalar> =
            NonZeroScalar::from_repr(*FieldBytes::from_slice(bytes)).into();
        Some(Self::from_scalar(secret?))
    }

    pub fn from_secret_key(key: &p256::SecretKey) -> Self {
        Self::from_scalar(key.to_nonzero_scalar())
    }

    fn from_scalar(secret: NonZeroScalar) -> Self {
        Self::from_scalars(&[secret]).remove(0)
    }

    /// The keys of several secret scalars, their public points made affine together (one
    /// field inversion for all).
    pub fn from_scalars(secrets: &[NonZeroScalar]) -> Vec<Self> {
        let points: Vec<Point> = secrets
            .iter()
            .map(|s| mul_generator_projective(s))
            .collect();
        // A non-zero scalar below the group order never gives the identity.
        let affine = to_affine_all(&points).expect("k·G is not the identity for k in 1..n");
        secrets
            .iter()
            .zip(affine)
            .map(|(secret, (x, y))| {
                // On the curve (checked) and not the identity (z was invertible).
                let point = affine_point(&x, &y).expect("k·G is on the curve");
                Self {
                    secret: *secret,
                    public: PublicPoint(point),
                }
            })
            .collect()
    }

    /// The private scalar, big-endian.
    pub fn to_bytes(&self) -> FieldBytes {
        self.secret.to_repr()
    }

    pub fn public(&self) -> &PublicPoint {
        &self.public
    }

    /// ECDSA over the SHA-256 digest of `msg` with the RFC 6979 nonce, as
    /// `p256::ecdsa::SigningKey` signs it.
    pub fn sign_message(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        let mut sigs = self.sign_messages(&[msg])?;
        Ok(sigs.remove(0))
    }

    /// [`Self::sign_message`] of each message, in order, with the nonces' points made affine
    /// together and the nonces inverted together.
    pub fn sign_messages(&self, msgs: &[&[u8]]) -> Result<Vec<Signature>, signature::Error> {
        use p256::elliptic_curve::ops::BatchInvert;
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let order: FieldBytes =
            FieldBytesEncoding::<NistP256>::encode_field_bytes(&NistP256::ORDER);
        let mut x = self.secret.to_repr();
        let mut digests = Vec::with_capacity(msgs.len());
        let mut nonces: Vec<Scalar> = Vec::with_capacity(msgs.len());
        for msg in msgs {
            let z: FieldBytes = Sha256::digest(msg);
            let k_bytes = rfc6979::generate_k::<Sha256, _>(&x, &order, &z, &[]);
            let k: Option<NonZeroScalar> = NonZeroScalar::from_repr(k_bytes).into();
            let Some(k) = k else {
                x.zeroize();
                nonces.zeroize();
                return Err(signature::Error::new());
            };
            nonces.push(*k);
            digests.push(z);
        }
        x.zeroize();
        let points: Vec<Point> = nonces.iter().map(mul_generator_projective).collect();
        // Every nonce is in 1..n, so no point is the identity.
        let Some(big_rs) = to_affine_all(&points) else {
            nonces.zeroize();
            return Err(signature::Error::new());
        };
        // Every nonce is non-zero, so the batch inversion succeeds.
        let inverses: Option<Vec<Scalar>> =
            <Scalar as BatchInvert<[Scalar]>>::batch_invert(&nonces).into();
        nonces.zeroize();
        let mut inverses = inverses.ok_or_else(signature::Error::new)?;
        let sigs = digests
            .iter()
            .zip(&big_rs)
            .zip(&inverses)
            .map(|((z, (x, _)), k_inv)| {
                let r = <Scalar as Reduce<U256>>::reduce_bytes(&x.to_bytes());
                let z = <Scalar as Reduce<U256>>::reduce_bytes(z);
                let s = *k_inv * (z + r * *self.secret);
                Signature::from_scalars(r, s)
            })
            .collect();
        inverses.zeroize();
        sigs
    }
}

impl Keypair for EcKey {
    type VerifyingKey = PublicPoint;

    fn verifying_key(&self) -> PublicPoint {
        self.public
    }
}

impl x509_cert::spki::SignatureAlgorithmIdentifier for EcKey {
    type Params = AnyRef<'static>;

    const SIGNATURE_ALGORITHM_IDENTIFIER: AlgorithmIdentifier<AnyRef<'static>> =
        <Signature as AssociatedAlgorithmIdentifier>::ALGORITHM_IDENTIFIER;
}

impl Signer<DerSignature> for EcKey {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        Ok(self.sign_message(msg)?.to_der())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Verifier;

    /// Scalars that exercise the recoding: small, all-nibble patterns (every digit 8 or -1,
    /// carries through all 64 windows), the largest ones, and pseudo-random ones.
    fn scalars() -> Vec<Scalar> {
        let mut out = vec![
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(2u64),
            Scalar::from(7u64),
            Scalar::from(8u64),
            Scalar::from(9u64),
            Scalar::from(15u64),
            Scalar::from(16u64),
            Scalar::from(u64::MAX),
            -Scalar::ONE,
            -Scalar::from(8u64),
            -Scalar::from(9u64),
        ];
        for byte in [0x88u8, 0x77, 0x80, 0x08, 0xf8, 0x8f, 0x7f, 0xff, 0x0f, 0xf0] {
            let repr = FieldBytes::from([byte; 32]);
            out.push(<Scalar as Reduce<U256>>::reduce_bytes(&repr));
        }
        for i in 0..200u32 {
            let repr: FieldBytes = Sha256::digest(i.to_be_bytes());
            out.push(<Scalar as Reduce<U256>>::reduce_bytes(&repr));
        }
        out
    }

    #[test]
    fn table_multiplication_equals_the_generic_one() {
        for k in scalars() {
            assert_eq!(
                mul_generator(&k).to_affine(),
                (ProjectivePoint::GENERATOR * k).to_affine(),
                "k = {k:?}"
            );
        }
        // The group order wraps: n·G is the identity, through the scalar's reduction.
        assert_eq!(mul_generator(&Scalar::ZERO), ProjectivePoint::IDENTITY);
    }

    #[test]
    fn digits_recompose_the_scalar() {
        for k in scalars() {
            let mut sum = Scalar::ZERO;
            let mut weight = Scalar::ONE;
            for d in signed_digits(&k) {
                let half = 1i16 << (W - 1);
                assert!((-half..=half).contains(&d));
                let term = weight * Scalar::from(d.unsigned_abs() as u64);
                sum += if d < 0 { -term } else { term };
                weight *= Scalar::from(1u64 << W);
            }
            assert_eq!(sum, k);
        }
    }

    #[test]
    fn keys_and_signatures_equal_rustcrypto() {
        for i in 0..64u32 {
            let bytes = Sha256::digest([b"key".as_slice(), &i.to_be_bytes()].concat());
            let ours = EcKey::from_slice(&bytes).expect("in range");
            let theirs = SigningKey::from_slice(&bytes).unwrap();
            assert_eq!(&ours.public().verifying_key(), theirs.verifying_key());
            assert_eq!(
                Keypair::verifying_key(&ours).verifying_key(),
                *theirs.verifying_key()
            );
            // The same SPKI as RustCrypto's.
            assert_eq!(
                ours.public().to_public_key_der().unwrap().as_bytes(),
                theirs
                    .verifying_key()
                    .to_public_key_der()
                    .unwrap()
                    .as_bytes()
            );
            assert_eq!(ours.to_bytes(), theirs.to_bytes());
            let msg = format!("message {i}");
            let sig: DerSignature = ours.try_sign(msg.as_bytes()).unwrap();
            let expected: DerSignature = theirs.sign(msg.as_bytes());
            assert_eq!(sig.as_bytes(), expected.as_bytes(), "key {i}");
            let public = ours.public().verifying_key();
            assert!(public.verify(msg.as_bytes(), &sig).is_ok());
            assert!(public.verify(b"another message", &sig).is_err());
        }
    }

    /// Batches (of every size up to 9, so several chunks) give the keys and signatures
    /// RustCrypto gives one at a time.
    #[test]
    fn batched_keys_and_signatures_equal_rustcrypto() {
        for n in 1..=9u32 {
            let secrets: Vec<NonZeroScalar> = (0..n)
                .map(|i| {
                    let bytes = Sha256::digest(
                        [b"batch".as_slice(), &[n as u8], &i.to_be_bytes()].concat(),
                    );
                    Option::from(NonZeroScalar::from_repr(bytes)).expect("in range")
                })
                .collect();
            let keys = EcKey::from_scalars(&secrets);
            assert_eq!(keys.len(), n as usize);
            for (key, secret) in keys.iter().zip(&secrets) {
                let theirs = SigningKey::from(*secret);
                assert_eq!(
                    &key.public().verifying_key(),
                    theirs.verifying_key(),
                    "batch of {n}"
                );
            }
            let msgs: Vec<Vec<u8>> = (0..n)
                .map(|i| format!("tbs {n}/{i}").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let sigs = keys[0].sign_messages(&refs).unwrap();
            let theirs = SigningKey::from(secrets[0]);
            for (msg, sig) in msgs.iter().zip(&sigs) {
                let expected: Signature = theirs.sign(msg);
                assert_eq!(sig, &expected, "batch of {n}");
            }
        }
        assert!(EcKey::from_scalars(&[]).is_empty());
        let key = EcKey::from_slice(&[7u8; 32]).unwrap();
        assert!(key.sign_messages(&[]).unwrap().is_empty());
    }

    /// The complete formulas have no exceptional case: identity plus G, G plus G (doubling)
    /// and −G plus G (the identity) come out right.
    #[test]
    fn mixed_addition_is_complete() {
        let table = table();
        let entry = |(x, y): (Fe, Fe)| Entry { x, y };
        let g = entry(table.rows[0][0]);
        let as_point = |e: &Entry| Point {
            x: e.x,
            y: e.y,
            z: Fe::ONE,
        };
        let affine = |p: &Point| to_affine_all(&[*p]).map(|v| v[0]);
        let g_xy = (g.x, g.y);
        assert!(affine(&add_mixed(&Point::IDENTITY, &g, &table.b)) == Some(g_xy));
        let two = entry(table.rows[0][1]);
        assert!(affine(&add_mixed(&as_point(&g), &g, &table.b)) == Some((two.x, two.y)));
        let minus_g = Point {
            x: g.x,
            y: -g.y,
            z: Fe::ONE,
        };
        assert!(affine(&add_mixed(&minus_g, &g, &table.b)).is_none());
        // A batch with the identity in it fails as a whole rather than lying.
        assert!(to_affine_all(&[as_point(&g), Point::IDENTITY]).is_none());
    }

    #[test]
    fn scalars_outside_one_to_n_are_refused() {
        assert!(EcKey::from_slice(&[0u8; 32]).is_none());
        assert!(EcKey::from_slice(&[0xffu8; 32]).is_none());
        let order: FieldBytes =
            FieldBytesEncoding::<NistP256>::encode_field_bytes(&NistP256::ORDER);
        assert!(EcKey::from_slice(&order).is_none());
        assert!(EcKey::from_slice(&[1u8; 31]).is_none());
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = EcKey::from_slice(&one).unwrap();
        assert_eq!(*key.public().as_affine(), AffinePoint::GENERATOR);
    }
}
