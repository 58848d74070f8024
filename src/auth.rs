//! Secrets: password hashing (argon2id, SECURITY.md 7) and random tokens,
//! stored only as hashes.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// OWASP's argon2id floor: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
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
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters does not fail")
        .to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Runs `f` (hashing or checking a password) on the one thread kept for it,
/// and waits for its answer without holding up the server's workers.
///
/// Each argon2 run takes 19 MiB. glibc keeps freed memory of that size in the
/// arena of the thread that used it, so hashing on whichever blocking thread
/// was free left up to 19 MiB behind in each of them: the server grew past
/// 140 MB after 80 sign-ins (docs/PERFORMANCE.md). On one thread it is one
/// block, reused. Sign-ins queue behind each other, at tens per second.
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
