//! Secrets: password hashing (argon2id, SECURITY.md 7) and random tokens,
//! stored only as hashes.

use std::cell::RefCell;

use argon2::password_hash::{rand_core::OsRng, Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// OWASP's argon2id floor: 19 MiB, two passes, one lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid")
}

thread_local! {
    /// argon2's working memory (19 MiB), kept for the thread's next hash.
    /// Allocated afresh each time, glibc kept every freed block: the server
    /// grew by 19 MiB every other sign-in (docs/PERFORMANCE.md).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The raw argon2 hash of `password` with `salt`, into `out`, in the
/// thread's reused working memory.
fn argon2_into(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    BLOCKS.with_borrow_mut(|blocks| {
        let needed = argon2.params().block_count();
        if blocks.len() != needed {
            blocks.clear();
            blocks.resize(needed, Block::default());
            blocks.shrink_to_fit();
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..])
            .is_ok()
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("must be at most {PASSWORD_MAX_CHARS} characters")]
    TooLong,
}

/// Length is the only rule: no composition rules (SECURITY.md 7).
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        Err(PasswordError::TooShort)
    } else if chars > PASSWORD_MAX_CHARS {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_password(password)?;
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let mut out = [0u8; 32];
    assert!(
        argon2_into(&argon2, password.as_bytes(), salt_bytes, &mut out),
        "argon2 hashing with valid parameters does not fail"
    );
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .expect("constant argon2 parameters are valid"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string (any argon2 variant and
/// parameters it names), comparing in constant time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    argon2_into(&argon2, password.as_bytes(), salt_bytes, &mut out)
        && Output::new(&out).is_ok_and(|actual| actual == expected)
}

/// Runs `f` (hashing or checking a password) on the one thread kept for it,
/// and waits for its answer without holding up the server's workers.
///
/// Each thread that hashes keeps argon2's 19 MiB of working memory for its
/// next hash; on one thread the server keeps one. Sign-ins queue behind each
/// other, at tens per second on the project's machine.
pub async fn on_password_thread<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Work = Box<dyn FnOnce() + Send>;
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<Work>> = std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (queue, work) = std::sync::mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("passwords".into())
            .spawn(move || work.into_iter().for_each(|f| f()))
            .expect("the OS starts a thread");
        queue
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let work: Work = Box::new(move || {
        let _ = reply.send(f());
    });
    queue
        .send(work)
        .expect("the password thread runs as long as the process");
    answer
        .await
        .expect("password hashing does not panic with valid parameters")
}

/// `bytes` random bytes from the OS, URL-safe hex (so 32 bytes = 256 bits).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// What the database keeps of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    /// Hashes stored before the working memory was reused, and hashes with
    /// other parameters, still verify; ours verify with the crate's own API.
    #[test]
    fn hashes_match_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::generate(&mut OsRng);
        for params in [params(), Params::new(8 * 1024, 3, 1, None).unwrap()] {
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"correct horse battery", &salt)
                .unwrap()
                .to_string();
            assert!(verify_password("correct horse battery", &theirs));
            assert!(!verify_password("correct horse batterY", &theirs));
        }
        let ours = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
    }

    #[test]
    fn password_length_is_the_only_rule() {
        assert_eq!(check_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            check_password(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password(&"ñ".repeat(128)).is_ok());
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = random_token(32);
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token(32));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
