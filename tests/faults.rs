//! Faults met by the real binary: the database going away and coming back
//! (SECURITY.md 25), and SIGTERM with requests in flight (SECURITY.md 26).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use checkin::demo::DEMO_PASSWORD;
use common::process::{
    api_token, checkin, demo_email, early_patient, free_port, no_answer_call, run, run_within,
    Server,
};

/// Every request in these tests is answered within this long or fails.
const REQUEST_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// A PostgreSQL cluster of the test's own
// ---------------------------------------------------------------------------

/// A throwaway PostgreSQL cluster on a free loopback port, which the test may
/// stop and start: the shared server other tests use is never touched.
/// Stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// initdb refuses to run as root: run the tools as the `postgres` user.
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with initdb and pg_ctl.
fn postgres_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Cluster {
    /// A new cluster, started; `None` (after one line) when this machine
    /// cannot make one, unless CI=true.
    fn start(test: &str) -> Option<Cluster> {
        let skip = |why: &str| {
            assert!(!common::ci(), "CI=true but {why}: {test} cannot run");
            eprintln!("skipped {test}: {why}");
            None
        };
        let Some(bin) = postgres_bin() else {
            return skip("no initdb and pg_ctl under /usr/lib/postgresql/*/bin");
        };
        let as_postgres = running_as_root();
        let dir = tempfile::tempdir().expect("temp dir");
        if as_postgres {
            let can = Command::new("runuser")
                .args(["-u", "postgres", "--", "true"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !can {
                return skip("running as root, and `runuser -u postgres` does not work here");
            }
            let (ok, _, err) = run_within(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "",
                Duration::from_secs(10),
            );
            assert!(ok, "chown postgres: {err}");
        }
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.data();
        cluster.ok(cluster.command("initdb").args([
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-N",
        ]));
        cluster.up();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as `postgres` when we are root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Runs a program and panics with its output if it fails.
    fn ok(&self, cmd: &mut Command) {
        let (ok, out, err) = run_within(cmd, "", Duration::from_secs(60));
        assert!(ok, "{cmd:?} failed:\n{out}{err}\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Starts the server and waits until it accepts connections. With `-l`
    /// the server writes to a log file, not to our pipes.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let args = ["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30"];
        self.ok(self.command("pg_ctl").args(args).arg("start"));
    }

    /// `pg_ctl stop` the way a crash stops the server: no shutdown
    /// checkpoint, every connection cut. `-t` bounds its wait.
    fn stop(&self) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.args([
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]);
        cmd
    }

    fn down(&self) {
        self.ok(&mut self.stop());
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Perhaps already stopped: no error here.
        let _ = self
            .stop()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------
// HTTP as a client sees it
// ---------------------------------------------------------------------------

/// One answer, read whole, with how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
    took: Duration,
}

/// Sends `request` (with a JSON body if given) and reads the whole answer;
/// panics when none comes within `REQUEST_LIMIT`.
fn send(request: ureq::Request, json: Option<&serde_json::Value>) -> Answer {
    let what = format!("{} {}", request.method(), request.url());
    let start = Instant::now();
    let request = request.timeout(REQUEST_LIMIT);
    let result = match json {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: no answer: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_string();
    let retry_after = response.header("retry-after").map(str::to_string);
    let body = response.into_string().expect("a readable body");
    Answer {
        status,
        content_type,
        retry_after,
        body,
        took: start.elapsed(),
    }
}

/// `name=value` from a response's Set-Cookie headers.
fn cookie(response: &ureq::Response, name: &str) -> String {
    response
        .all("set-cookie")
        .into_iter()
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

/// Signs in through the sign-in form; returns the session cookie.
fn sign_in(base: &str, email: &str, password: &str) -> String {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(REQUEST_LIMIT)
        .build();
    let page = agent
        .get(&format!("{base}/sign-in"))
        .call()
        .expect("sign-in page");
    let pre = cookie(&page, "checkin_csrf");
    let csrf = common::csrf_in(&page.into_string().expect("sign-in page"));
    let reply = agent
        .post(&format!("{base}/sign-in"))
        .set("cookie", &pre)
        .send_form(&[("csrf", &csrf), ("email", email), ("password", password)])
        .expect("sign in");
    assert_eq!(reply.status(), 303, "sign-in did not redirect");
    cookie(&reply, "checkin_session")
}

// ---------------------------------------------------------------------------
// SECURITY.md 25: the database goes away and comes back
// ---------------------------------------------------------------------------

/// The routes watched through the outage: readiness, an API read, a page read
/// and an API write. Answered concurrently, so one round costs one wait.
struct Watched {
    base: String,
    token: String,
    session: String,
    patient: i64,
}

impl Watched {
    fn round(&self, call_key: &str) -> [(&'static str, Answer); 4] {
        let auth = format!("Bearer {}", self.token);
        std::thread::scope(|s| {
            let ready = s.spawn(|| send(ureq::get(&format!("{}/readyz", self.base)), None));
            let api = s.spawn(|| {
                send(
                    ureq::get(&format!("{}/api/v1/me/checkins", self.base))
                        .set("authorization", &auth),
                    None,
                )
            });
            let page = s.spawn(|| {
                send(
                    ureq::get(&format!("{}/checkins", self.base)).set("cookie", &self.session),
                    None,
                )
            });
            let write = s.spawn(|| {
                send(
                    ureq::post(&format!(
                        "{}/api/v1/patients/{}/calls",
                        self.base, self.patient
                    ))
                    .set("authorization", &auth)
                    .set("idempotency-key", call_key),
                    Some(&no_answer_call()),
                )
            });
            [
                ("GET /readyz", ready.join().expect("readyz")),
                ("GET /api/v1/me/checkins", api.join().expect("api read")),
                ("GET /checkins", page.join().expect("page read")),
                (
                    "POST /api/v1/patients/{id}/calls",
                    write.join().expect("api write"),
                ),
            ]
        })
    }
}

/// Stopping PostgreSQL gives 503 with the app's error body on every
/// database-backed route, within seconds, and `/readyz` fails; starting it
/// again brings the same process back without a restart.
#[test]
fn database_down_gives_503_then_the_service_recovers_by_itself() {
    let Some(pg) = Cluster::start("database_down_gives_503_then_the_service_recovers_by_itself")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let env = [("CHECKIN_DATABASE_URL", url.as_str())];
    let (ok, _, err) = run(checkin(dir.path(), &env).arg("demo"), "");
    assert!(ok, "demo on the test cluster failed: {err}");
    let mut server = Server::start(dir.path(), &env, free_port());
    let student = demo_email("student1");
    let token = api_token(&server.base(), &student, DEMO_PASSWORD);
    let watched = Watched {
        base: server.base(),
        session: sign_in(&server.base(), &student, DEMO_PASSWORD),
        patient: early_patient(&server.base(), &token),
        token,
    };
    for (route, answer) in watched.round("before-outage") {
        assert!(
            matches!(answer.status, 200 | 201),
            "{route} before the outage: {answer:?}"
        );
    }

    pg.down();
    // Twice: the first round finds the pool's dead connections, the second
    // finds no connections at all.
    for round in ["outage-1", "outage-2"] {
        let answers = watched.round("during-outage");
        let slowest = answers.iter().map(|(_, a)| a.took).max();
        for (route, answer) in answers {
            assert_eq!(answer.status, 503, "{route} ({round}): {answer:?}");
            assert_eq!(
                answer.retry_after.as_deref(),
                Some("5"),
                "{route}: {answer:?}"
            );
            // The pool waits 5 s for a connection (src/db/mod.rs).
            assert!(
                answer.took < Duration::from_secs(10),
                "{route} ({round}) took {:?} to say 503",
                answer.took
            );
            match route {
                "GET /readyz" => assert!(answer.body.contains("unavailable"), "{answer:?}"),
                "GET /checkins" => {
                    assert!(answer.content_type.starts_with("text/html"), "{answer:?}");
                    assert!(
                        answer.body.contains("the database is unavailable"),
                        "{answer:?}"
                    );
                }
                _ => {
                    assert_eq!(answer.content_type, "application/json", "{route}");
                    let body: serde_json::Value =
                        serde_json::from_str(&answer.body).expect("a JSON error body");
                    assert_eq!(body["error"], "unavailable", "{route}: {body}");
                    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
                }
            }
        }
        eprintln!("{round}: every route answered 503, the slowest in {slowest:?}");
    }

    pg.up();
    let back = Instant::now();
    while send(ureq::get(&format!("{}/readyz", watched.base)), None).status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "/readyz still failing 30 s after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered_in = back.elapsed();
    // The write refused during the outage stored nothing: its key is new.
    for (route, answer) in watched.round("during-outage") {
        let expected = if route.starts_with("POST") { 201 } else { 200 };
        assert_eq!(
            answer.status, expected,
            "{route} after recovery: {answer:?}"
        );
    }
    eprintln!("recovered {recovered_in:?} after PostgreSQL came back");
    assert!(server.terminate().success());
}

// ---------------------------------------------------------------------------
// SECURITY.md 26: SIGTERM with requests in flight
// ---------------------------------------------------------------------------

/// Reads a response head (through the blank line); returns it and any bytes
/// read past it.
fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let n = stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let (head, mut body) = read_head(stream);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    let mut chunk = [0u8; 4096];
    while body.len() < length {
        let n = stream.read(&mut chunk).expect("read a response body");
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        String::from_utf8_lossy(&body[..length]).into_owned(),
    )
}

/// A call-log POST the server has started on: it asked for the body with
/// `Expect: 100-continue`, and has the head and half the body. (Bytes the
/// server has not yet read when it starts shutting down are not a request in
/// flight: it closes such connections, as any server may close an idle one.)
struct HalfSent {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HalfSent {
    fn open(port: u16, token: &str, patient: i64, key: &str) -> HalfSent {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(REQUEST_LIMIT)).unwrap();
        stream.set_write_timeout(Some(REQUEST_LIMIT)).unwrap();
        let body = no_answer_call().to_string().into_bytes();
        let head = format!(
            "POST /api/v1/patients/{patient}/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let (interim, early) = read_head(&mut stream);
        assert!(
            interim.starts_with("HTTP/1.1 100 "),
            "expected 100 Continue, got {interim}"
        );
        assert!(early.is_empty(), "the server answered before the body");
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(first).unwrap();
        stream.flush().unwrap();
        HalfSent {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body; returns the response.
    fn finish(mut self) -> (u16, String) {
        self.stream.write_all(&self.rest).expect("send the rest");
        read_response(&mut self.stream)
    }
}

/// A streamed CSV export the server has started sending.
struct Download {
    first: Vec<u8>,
    reader: Box<dyn Read + Send + Sync>,
}

impl Download {
    fn start(url: &str, token: &str) -> Download {
        let response = ureq::get(url)
            .set("authorization", &format!("Bearer {token}"))
            .timeout(Duration::from_secs(60))
            .call()
            .expect("export started");
        assert_eq!(response.status(), 200);
        let mut reader = response.into_reader();
        let mut first = vec![0u8; 1024];
        reader.read_exact(&mut first).expect("the first bytes");
        Download { first, reader }
    }

    /// The rest of the body; fails if the stream ends early or badly.
    fn finish(mut self) -> Vec<u8> {
        let mut all = self.first;
        self.reader
            .read_to_end(&mut all)
            .expect("the whole export, properly ended");
        all
    }
}

fn calls_in(url: &str) -> i64 {
    use diesel::prelude::*;
    let db = checkin::db::Db::connect(url, 1).expect("open the database");
    db.read_blocking(|c| {
        Ok(checkin::db::schema::calls::table
            .count()
            .get_result::<i64>(c)?)
    })
    .expect("count calls")
}

/// SIGTERM while three large CSV exports are streaming and eight call logs
/// are half-received: new connections are refused at once, every request
/// already started gets its whole, successful answer, and then the process
/// exits 0.
#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    const EXPORTS: usize = 3;
    const POSTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/checkin.db").display());
    let env = [("CHECKIN_DATABASE_URL", url.as_str())];
    let (ok, _, err) = run(
        checkin(dir.path(), &env).args(["demo", "--patients", "200", "--calls", "20000"]),
        "",
    );
    assert!(ok, "{err}");
    let calls_before = calls_in(&url);
    let mut server = Server::start(dir.path(), &env, free_port());
    let base = server.base();
    let leader = api_token(&base, &demo_email("leader1"), DEMO_PASSWORD);
    let student = api_token(&base, &demo_email("student1"), DEMO_PASSWORD);
    let patient = early_patient(&base, &student);

    let exports: Vec<Download> = (0..EXPORTS)
        .map(|_| Download::start(&format!("{base}/api/v1/exports/calls.csv"), &leader))
        .collect();
    let posts: Vec<HalfSent> = (0..POSTS)
        .map(|i| HalfSent::open(server.port, &student, patient, &format!("sigterm-{i}")))
        .collect();

    server.signal_term();
    let signalled = Instant::now();
    // The listener closes once the signal is handled.
    while TcpStream::connect_timeout(
        &([127, 0, 0, 1], server.port).into(),
        Duration::from_secs(1),
    )
    .is_ok()
    {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still accepting connections 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused_after = signalled.elapsed();
    // Time enough to exit, were it not waiting for the requests.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.exited().is_none(),
        "checkin exited with requests in flight"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "a new connection was accepted after SIGTERM"
    );

    // The exports first: no call is added while they stream.
    for (i, download) in exports.into_iter().enumerate() {
        let csv = download.finish();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        assert_eq!(
            reader.headers().expect("a header row").get(0),
            Some("call_id")
        );
        let rows: Vec<csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("export {i}: a broken row: {e}"));
        assert_eq!(rows.len() as i64, calls_before, "export {i} is incomplete");
    }
    assert!(
        server.exited().is_none(),
        "checkin exited with call logs half-received"
    );
    for (i, post) in posts.into_iter().enumerate() {
        let (status, body) = post.finish();
        assert_eq!(status, 201, "call log {i} after SIGTERM: {body}");
        let reply: serde_json::Value = serde_json::from_str(&body).expect("a JSON reply");
        assert!(reply["id"].is_i64(), "call log {i}: {reply}");
    }

    let status = server.wait_for_exit(Duration::from_secs(15));
    let stopped_after = signalled.elapsed();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_eq!(
        calls_in(&url),
        calls_before + POSTS as i64,
        "the call logs answered 201 are not all stored"
    );
    eprintln!(
        "{calls_before} calls exported {EXPORTS} times; new connections refused \
         {refused_after:?} after SIGTERM; exited 0 {stopped_after:?} after it, \
         the clients' reading included"
    );
}
