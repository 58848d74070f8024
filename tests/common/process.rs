//! The real binary as a child process: started on a free loopback port with
//! its own folder and nothing from the outer environment but PATH, and killed
//! when the guard is dropped, so a failing test leaves no server behind.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_checkin");

/// The release build of `checkin`, for the tests that measure or show the
/// service as it ships (the browser journeys): built once per test binary
/// with the cargo running the tests, into the same target folder, so only
/// the first `cargo test` on a machine pays for it (about 5 minutes cold;
/// nothing when it is current). Its path comes from cargo's own report.
pub fn release_bin() -> &'static Path {
    // Under `cargo test --release` the binary cargo built is the release
    // one, and cargo holds the release folder's lock while tests run: a
    // nested build would wait for ever.
    if !cfg!(debug_assertions) {
        return Path::new(BIN);
    }
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("building the release binary (cargo build --release --bin checkin)");
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--bin",
                "checkin",
                // Compiler errors still reach the test's output as text.
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build --release");
        assert!(
            out.status.success(),
            "cargo build --release --bin checkin failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "checkin")
            .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
            .expect("cargo reported the release checkin executable")
    })
}

/// Every wait for a server to start or stop gives up after this long.
const START_STOP_LIMIT: Duration = Duration::from_secs(40);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `checkin` run in `dir` with nothing from the outer environment but PATH.
pub fn checkin(dir: &Path, env: &[(&str, &str)]) -> Command {
    checkin_bin(Path::new(BIN), dir, env)
}

/// As [`checkin`], for a given build of the binary.
pub fn checkin_bin(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs to the end and returns (exit success, stdout, stderr); fails the
/// test if that takes over two minutes.
pub fn run(cmd: &mut Command, stdin: &str) -> (bool, String, String) {
    run_within(cmd, stdin, Duration::from_secs(120))
}

/// `run`, killing the program and failing the test after `limit`. Output
/// goes to files, not pipes, so a program that leaves a daemon behind holding
/// them (pg_ctl) cannot make the wait endless.
pub fn run_within(cmd: &mut Command, stdin: &str, limit: Duration) -> (bool, String, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(out.reopen().expect("stdout file"))
        .stderr(err.reopen().expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Small enough for the pipe's buffer: never blocks. A program that
    // refuses its arguments may exit before reading it: a broken pipe then
    // is its answer, not the test's failure (its exit status and output
    // still are checked).
    match child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("write stdin: {e}"),
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap_or_default();
    (status.success(), read(&out), read(&err))
}

/// The status of `GET path`, or `None` when nothing answered within 5 s.
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

/// A running `checkin serve`, killed on drop unless it has already exited.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts `checkin` in `dir` on `port` (`CHECKIN_BIND` is set here) with
    /// its output discarded, and waits until it answers `/healthz`.
    pub fn start(dir: &Path, env: &[(&str, &str)], port: u16) -> Server {
        Server::start_bin(Path::new(BIN), dir, env, port)
    }

    /// As [`Server::start`], for a given build of the binary.
    pub fn start_bin(bin: &Path, dir: &Path, env: &[(&str, &str)], port: u16) -> Server {
        let mut cmd = checkin_bin(bin, dir, env);
        cmd.env("CHECKIN_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Server::spawn(&mut cmd, port)
    }

    /// Spawns `cmd`, which must listen on `port`, and waits until it answers.
    pub fn spawn(cmd: &mut Command, port: u16) -> Server {
        let child = cmd.spawn().expect("spawn checkin");
        let mut server = Server { child, port };
        server.wait_until_up();
        server
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    fn wait_until_up(&mut self) {
        let start = Instant::now();
        while start.elapsed() < START_STOP_LIMIT {
            if get(self.port, "/healthz") == Some(200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("checkin exited with {status} before listening");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("checkin did not answer /healthz within {START_STOP_LIMIT:?}");
    }

    /// Sends SIGTERM and returns at once.
    pub fn signal_term(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// `None` while the process runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("child status")
    }

    /// Waits for the process to exit on its own.
    pub fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "checkin did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_for_exit(START_STOP_LIMIT)
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.kill();
        }
    }
}

/// A bearer token from `POST /api/v1/tokens`.
pub fn api_token(base: &str, email: &str, password: &str) -> String {
    ureq::post(&format!("{base}/api/v1/tokens"))
        .timeout(Duration::from_secs(10))
        .send_json(serde_json::json!({"email": email, "password": password}))
        .expect("a token")
        .into_json::<serde_json::Value>()
        .expect("a JSON token reply")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// One of the student's patients early in the programme, so that logging a
/// call for them raises no final-call or discharge flag.
pub fn early_patient(base: &str, student_token: &str) -> i64 {
    let checkins: serde_json::Value = ureq::get(&format!("{base}/api/v1/me/checkins"))
        .set("authorization", &format!("Bearer {student_token}"))
        .timeout(Duration::from_secs(10))
        .call()
        .expect("my check-ins")
        .into_json()
        .expect("JSON check-ins");
    checkins
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| {
            !c["flags"]
                .as_array()
                .expect("flags")
                .iter()
                .any(|f| f == "final_call" || f == "discharge_due")
        })
        .expect("a patient early in the programme")["patient_id"]
        .as_i64()
        .expect("patient id")
}

/// A call-log body for `POST /api/v1/patients/{id}/calls`: a short unanswered
/// call with the next one tomorrow.
pub fn no_answer_call() -> serde_json::Value {
    let next = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    serde_json::json!({"mode": "phone", "outcome": "no_answer", "duration_minutes": 1, "next_call_at": next})
}

/// The e-mail address of a demo account, e.g. `demo_email("leader1")`.
pub fn demo_email(account: &str) -> String {
    format!("{account}@{}", checkin::demo::DEMO_DOMAIN)
}
