//! The real binary cargo built for this test run, as an operator starts it:
//! in its own folder, on a free loopback port, stopped with SIGTERM.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_checkin");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `checkin` run in `dir` with nothing from the outer environment but PATH.
pub fn checkin(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The status of `GET path`, or `None` when nothing answers.
pub fn get(port: u16, path: &str) -> Option<u16> {
    match ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(5))
        .call()
    {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(code),
        Err(_) => None,
    }
}

pub fn wait_until_up(child: &mut Child, port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if get(port, "/healthz") == Some(200) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("checkin exited with {status} before listening");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("checkin did not answer /healthz within 30 s");
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("checkin did not stop within 40 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs and returns (exit success, stdout, stderr).
pub fn run(cmd: &mut Command, stdin: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn checkin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("checkin output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A bearer token from `POST /api/v1/tokens` on a running server.
pub fn api_token(base: &str, email: &str, password: &str) -> String {
    ureq::post(&format!("{base}/api/v1/tokens"))
        .send_json(serde_json::json!({"email": email, "password": password}))
        .unwrap_or_else(|e| panic!("token for {email}: {e}"))
        .into_json::<serde_json::Value>()
        .expect("token JSON")["token"]
        .as_str()
        .expect("a token")
        .to_string()
}
