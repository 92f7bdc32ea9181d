//! SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677) in PostgreSQL's stored form, and password
//! generation from [`crate::Env`] entropy.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
pub const ITERATIONS: u32 = 4096;
pub const SALT_LEN: usize = 16;
pub const PASSWORD_LEN: usize = 24;

/// Printable ASCII without characters that break URIs, shells or pgBouncer's userlist
/// (quote, backslash, `@`, `:`, `/`, `?`, `#`, `%`, space).
pub const ASCII_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$&()*+,-.;<=>[]^_{|}~";
pub const ALNUM_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as `pg_authid.rolpassword` and
/// Crunchy's `verifier` Secret key hold it. The password is used as is (no SASLprep: the
/// generated alphabets are ASCII, and PostgreSQL also uses the raw bytes when SASLprep fails).
pub fn verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

/// Whether `verifier` was made from `password` (parses the stored salt and iteration count).
pub fn verifier_matches(verifier_str: &str, password: &str) -> bool {
    let Some(rest) = verifier_str.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((iter_salt, _keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iter, salt)) = iter_salt.split_once(':') else {
        return false;
    };
    let (Ok(iter), Ok(salt)) = (iter.parse::<u32>(), B64.decode(salt)) else {
        return false;
    };
    if iter == 0 || iter > 1_000_000 {
        return false;
    }
    verifier(password, &salt, iter) == verifier_str
}

/// SHA-256 as lowercase hex (hash annotations).
pub fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

pub fn unb64(data: &str) -> Option<Vec<u8>> {
    B64.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lowercase_hex() {
        // FIPS 180-2 test vector: SHA-256("abc").
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn rfc7677_vector() {
        // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = verifier("pencil", &salt, 4096);
        // Keys computed independently (Python hashlib) for the same inputs.
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
             WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        assert!(verifier_matches(&v, "pencil"));
        assert!(!verifier_matches(&v, "pencil2"));
        assert!(!verifier_matches("md5abc", "pencil"));
    }
}
