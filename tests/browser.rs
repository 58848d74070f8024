//! The journeys in a real browser: headless Chromium driven over WebDriver
//! (Debian's chromedriver, through the `fantoccini` crate) against the
//! release binary (built by the test on first use, see
//! `process::release_bin`) on a free loopback port, with its own data folder
//! and SQLite database loaded by `checkin demo`.
//!
//! A physician enrols a patient (first with mistakes), a leader pairs them
//! with a student, the student logs the first call on a phone-sized screen,
//! and a leader acknowledges an urgent concern and discharges a patient. The
//! assertions are on what each person sees. Every journey saves screenshots
//! in `target/tmp/screenshots/`; docs/screenshots/ holds copies of them.
//!
//! Without chromium and chromium-driver the test says so on one line and
//! returns, unless CI=true.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checkin::demo::{DEMO_DOMAIN, DEMO_PASSWORD};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use common::process::{self, api_token, checkin_bin, free_port, run};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// CSS pixels, at a device pixel ratio of 1: the screenshots come out this size.
const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1200, 900);
/// How long any one thing may take to appear.
const WAIT: Duration = Duration::from_secs(15);
/// Full-page screenshots are cut to the page, within these heights.
const SHORTEST_SHOT: u32 = 300;
const TALLEST_SHOT: u32 = 2600;

fn demo_email(role: &str) -> String {
    format!("{role}1@{DEMO_DOMAIN}")
}

/// `true` when both browser parts are installed; otherwise one line (or, with
/// CI=true, a failure).
fn browser_installed(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if common::ci() {
        panic!(
            "CI=true but {} is missing: {test} cannot run",
            missing.join(" and ")
        );
    }
    eprintln!(
        "skipped {test}: install chromium and chromium-driver \
         (apt-get install --no-install-recommends chromium chromium-driver) to run it"
    );
    false
}

/// The real binary with the demo programme loaded, killed when dropped.
struct Server {
    _process: process::Server,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let bin = process::release_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let (ok, _, err) = run(checkin_bin(bin, dir.path(), &[]).arg("demo"), "");
        assert!(ok, "checkin demo failed: {err}");
        let process = process::Server::start_bin(bin, dir.path(), &[], free_port());
        Server {
            base: process.base(),
            _process: process,
            _dir: dir,
        }
    }
}

/// chromedriver in its own process group, so the browsers it starts go with it.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = ureq::get(&format!("{url}/status"))
                .timeout(Duration::from_secs(2))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|s| s["value"]["ready"] == json!(true));
            if ready {
                return ChromeDriver { child, url };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("chromedriver exited with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver was not ready within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// One person's browser: a fresh profile, a window of a given size.
struct Browser {
    client: Client,
    base: String,
    size: (u32, u32),
    end_session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(driver: &ChromeDriver, server: &Server, size: (u32, u32)) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--force-device-scale-factor=1", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", size.0, size.1),
                ],
            }),
        );
        // chromedriver listens on loopback, in plain HTTP.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session from chromedriver: {e}"));
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let browser = Browser {
            client,
            base: server.base.clone(),
            size,
            end_session: format!("{}/session/{session}", driver.url),
            _profile: profile,
        };
        browser.resize(size.1).await;
        browser
    }

    /// Makes the viewport (not the window) `size.0` wide and `height` tall.
    async fn resize(&self, height: u32) {
        self.client
            .set_window_size(self.size.0, height)
            .await
            .expect("resize");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("viewport size");
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        // Any window frame comes on top of the viewport.
        if (w, h) != (self.size.0, height) {
            let width = self.size.0 + self.size.0.saturating_sub(w);
            let height = height + height.saturating_sub(h);
            self.client
                .set_window_size(width, height)
                .await
                .expect("resize");
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// What the person reads on the page (for failure messages).
    async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    async fn fail(&self, what: &str) -> ! {
        panic!(
            "{what} on {}; the page says:\n{}",
            self.path().await,
            self.page_text().await
        );
    }

    /// Waits for an element.
    async fn find(&self, css: &str) -> Element {
        self.wait_for(Locator::Css(css)).await
    }

    async fn find_xpath(&self, xpath: &str) -> Element {
        self.wait_for(Locator::XPath(xpath)).await
    }

    async fn wait_for(&self, at: Locator<'_>) -> Element {
        match self.client.wait().at_most(WAIT).for_element(at).await {
            Ok(e) => e,
            Err(e) => self.fail(&format!("no {at:?} ({e})")).await,
        }
    }

    /// Waits until an element matching `css` shows `text`, and returns it.
    async fn see(&self, css: &str, text: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Ok(found) = self.client.find_all(Locator::Css(css)).await {
                for e in found {
                    let shown = e.text().await.unwrap_or_default();
                    if shown.contains(text) && e.is_displayed().await.unwrap_or(false) {
                        return e;
                    }
                }
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("no {css} showing {text:?}")).await;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until nothing matches `css` (after a form posts and the page reloads).
    async fn gone(&self, css: &str) {
        let started = Instant::now();
        while !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
        {
            if started.elapsed() > WAIT {
                self.fail(&format!("{css} is still there")).await;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    async fn sign_in(&self, email: &str) {
        self.goto("/sign-in").await;
        self.fill("#email", email).await;
        self.fill("#password", DEMO_PASSWORD).await;
        self.click("form[action='/sign-in'] button[type=submit]")
            .await;
        self.find("form.sign-out").await;
    }

    /// The page fits the window's width: nothing to scroll sideways.
    async fn fits_the_width(&self) {
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .expect("widths");
        if overflow.as_i64().unwrap_or(0) > 0 {
            let widest = self
                .client
                .execute(
                    "return [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > window.innerWidth
                            && (!e.closest('.table-scroll') || getComputedStyle(e).position != 'static'))
                        .slice(0, 5)
                        .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                    vec![],
                )
                .await
                .expect("the widest elements");
            self.fail(&format!(
                "the page is {overflow} px wider than the window ({widest})"
            ))
            .await;
        }
    }

    /// Saves a screenshot of the whole page.
    async fn shoot_page(&self, name: &str) {
        // The page's own height (the footer's margin included), not the window's.
        let height = self
            .client
            .execute(
                "window.scrollTo(0, 0);
                 return Math.ceil(document.body.getBoundingClientRect().bottom) + 24;",
                vec![],
            )
            .await
            .expect("page height")
            .as_u64()
            .unwrap_or(self.size.1 as u64) as u32;
        self.resize(height.clamp(SHORTEST_SHOT, TALLEST_SHOT)).await;
        self.shoot_screen(name).await;
        self.resize(self.size.1).await;
    }

    /// Scrolls an element to the top of the window.
    async fn scroll_to(&self, css: &str) {
        self.find(css).await;
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView();",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
    }

    /// Saves a screenshot of what the window shows.
    async fn shoot_screen(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    /// Ends the session (and its Chromium) even when a journey panicked.
    fn drop(&mut self) {
        let _ = ureq::delete(&self.end_session)
            .timeout(Duration::from_secs(10))
            .call();
    }
}

/// `GET` on the JSON API with a bearer token.
fn api_get(server: &Server, token: &str, path: &str) -> Value {
    ureq::get(&format!("{}{path}", server.base))
        .set("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .into_json()
        .expect("JSON")
}

struct Student {
    id: i64,
    given_name: String,
    token: String,
}

fn demo_student(server: &Server) -> Student {
    let token = api_token(&server.base, &demo_email("student"), DEMO_PASSWORD);
    let me = api_get(server, &token, "/api/v1/me");
    Student {
        id: me["id"].as_i64().expect("id"),
        given_name: me["given_name"].as_str().expect("name").to_string(),
        token,
    }
}

#[actix_web::test]
async fn a_patient_from_enrolment_to_discharge_in_the_browser() {
    let test = "a_patient_from_enrolment_to_discharge_in_the_browser";
    if !browser_installed(test) {
        return;
    }
    let server = Server::start();
    let driver = ChromeDriver::start();
    let student = demo_student(&server);

    let patient = physician_enrols_a_patient(&driver, &server).await;
    leader_pairs_the_patient(&driver, &server, patient, &student).await;
    student_logs_the_first_call_on_a_phone(&driver, &server, patient).await;
    leader_acknowledges_a_concern_and_discharges(&driver, &server, patient, &student).await;
    admin_settings(&driver, &server).await;
    every_page_fits_a_phone(&driver, &server, patient, &student).await;
    eprintln!(
        "screenshots in {}",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("screenshots")
            .display()
    );
}

/// Journey 1: the enrol form refuses mistakes field by field, keeps what was
/// typed, then enrols; the patient's page shows the discharge point.
async fn physician_enrols_a_patient(driver: &ChromeDriver, server: &Server) -> i64 {
    let b = Browser::open(driver, server, DESKTOP).await;
    b.sign_in(&demo_email("physician")).await;
    b.click("nav a[href='/enrol']").await;
    b.see("h1", "Enrol a patient").await;

    b.fill("#given_name", "Marisol").await;
    b.fill("#family_name", "Quintanilla").await;
    b.fill("#phone", "555-01").await;
    b.fill("#best_times", "Weekday mornings").await;
    b.click("form[action='/enrol'] button[type=submit]").await;

    b.see("p.notice.error[role=alert]", "nothing was saved")
        .await;
    // Each message sits right under its field.
    let phone_error = b
        .find_xpath("//input[@id='phone']/following-sibling::*[1][@id='phone-error']")
        .await;
    let message = phone_error.text().await.expect("text");
    assert!(message.contains("phone number"), "{message}");
    b.see("label[for=phone]", "Phone").await;
    b.see("#enrolment_reasons-error", "at least one reason")
        .await;
    b.see("#interest_confirmed-error", "is required").await;
    assert_eq!(b.value("#given_name").await, "Marisol", "typed name kept");
    assert_eq!(b.value("#phone").await, "555-01", "typed phone kept");
    b.shoot_page("physician-enrol-errors").await;

    b.fill("#phone", "(215) 555-0142").await;
    b.click("input[name=enrolment_reasons][value=social_isolation]")
        .await;
    b.click("input[name=interest_confirmed]").await;
    b.click("form[action='/enrol'] button[type=submit]").await;

    b.see("h1", "Marisol Quintanilla").await;
    let facts = b.see("dl.facts", "(215) 555-0142").await;
    let facts = facts.text().await.expect("text");
    for shown in [
        "active",
        "not paired yet",
        "Discharge point",
        "social isolation",
    ] {
        assert!(
            facts.contains(shown),
            "{shown:?} not on the patient page:\n{facts}"
        );
    }
    let path = b.path().await;
    let id = path
        .strip_prefix("/patients/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a patient page: {path}"));
    b.shoot_page("physician-patient").await;
    id
}

/// Journey 2: the new patient waits in the pairing queue; the leader pairs
/// them with the demo student, and the queue no longer lists them.
async fn leader_pairs_the_patient(
    driver: &ChromeDriver,
    server: &Server,
    patient: i64,
    student: &Student,
) {
    let b = Browser::open(driver, server, DESKTOP).await;
    b.sign_in(&demo_email("leader")).await;
    b.click("nav a[href='/pairing']").await;
    b.see("h1", "Waiting to be paired").await;
    let row = b.see("tbody tr", "Marisol").await;
    assert!(row.text().await.expect("text").contains("Weekday mornings"));
    b.shoot_page("leader-pairing-queue").await;
    b.click(&format!("a[href='/pairing/{patient}']")).await;

    b.see("h1", "Pair Marisol Quintanilla").await;
    b.see("section.card", "Not paired yet.").await;
    b.see("h2", "Suggested students").await;
    let form = format!(
        "//form[@action='/pairing/{patient}'][input[@name='student_id' and @value='{}']]",
        student.id
    );
    let form = b.find_xpath(&form).await;
    form.find(Locator::Css("input[name=note]"))
        .await
        .expect("note field")
        .send_keys("Prefers mornings. First call in Spanish with the interpreter line.")
        .await
        .expect("type the note");
    if let Ok(anyway) = form
        .find(Locator::Css("input[name=confirm_over_capacity]"))
        .await
    {
        anyway.click().await.expect("tick pair anyway");
    }
    b.shoot_screen("leader-pairing").await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .expect("pair button")
        .click()
        .await
        .expect("pair");

    let paired = b.see("section.card p", "Paired with").await;
    let paired = paired.text().await.expect("text");
    assert!(paired.contains(&student.given_name), "{paired}");
    b.click("nav a[href='/pairing']").await;
    b.see("h1", "Waiting to be paired").await;
    b.gone(&format!("a[href='/pairing/{patient}']")).await;
}

/// Journey 3: on a phone, the student finds the patient in "My check-ins",
/// reads the protocol, logs the call with sections and a resource ticked,
/// and sees the next call scheduled.
async fn student_logs_the_first_call_on_a_phone(
    driver: &ChromeDriver,
    server: &Server,
    patient: i64,
) {
    let b = Browser::open(driver, server, PHONE).await;
    b.sign_in(&demo_email("student")).await;
    b.click("nav a[href='/checkins']").await;
    b.see("h1", "My check-ins").await;
    let entry = format!("li.checkin a[href='/patients/{patient}/call']");
    b.see(&entry, "Marisol").await;
    b.fits_the_width().await;
    b.shoot_page("student-checkins").await;

    b.click("nav a[href='/protocol']").await;
    b.see("h1", "Weekly check-in call").await;
    b.see("section.protocol-section h2", "1.").await;
    b.see("section.card h2", "Resources").await;
    b.fits_the_width().await;
    b.shoot_screen("student-protocol").await;

    b.click("nav a[href='/checkins']").await;
    b.click(&entry).await;
    b.see("h1", "Marisol Quintanilla").await;
    b.see("a.call-link", "Call (215) 555-0142").await;
    b.fits_the_width().await;
    b.shoot_screen("student-call").await;

    for section in ["opening", "how-are-you", "covid-19", "community-resources"] {
        b.click(&format!("input[name=sections][value='{section}']"))
            .await;
    }
    // Open the COVID-19 section to see and tick its resources.
    let covid = "div.section:has(input[value='covid-19'])";
    b.click(&format!("{covid} summary")).await;
    let open = b
        .find(&format!("{covid} details"))
        .await
        .prop("open")
        .await
        .expect("open")
        .unwrap_or_default();
    if open != "true" {
        b.fail("tapping the COVID-19 section did not open it").await;
    }
    let resource = b.find(&format!("{covid} input[name=resources]")).await;
    resource.click().await.expect("tick a resource");
    let shared = b
        .find(&format!("{covid} label.resource strong"))
        .await
        .text()
        .await
        .expect("resource name");
    b.scroll_to(&format!("{covid} label.resource")).await;
    b.shoot_screen("student-call-resources").await;

    b.click("input[name=outcome][value=completed]").await;
    b.fill("#duration_minutes", "18").await;
    b.click("input[name=interpreter_used]").await;
    b.fill(
        "#notes",
        "Doing well. Asked where to get tested; shared the site list.",
    )
    .await;
    let next = b.value("#next_call_at").await;
    assert!(!next.is_empty(), "the form proposes the next call");
    b.scroll_to(".call-form").await;
    b.shoot_screen("student-call-form").await;
    b.click(".call-form button[type=submit]").await;

    let logged = b.see("p.notice[role=status]", "Call logged.").await;
    let logged = logged.text().await.expect("text");
    assert!(logged.contains("Next call with Marisol"), "{logged}");
    b.fits_the_width().await;
    b.shoot_page("student-call-logged").await;

    // The next call page remembers what was shared.
    b.click(&entry).await;
    b.see("section.call-header", "Last time you shared").await;
    b.see("section.call-header strong", &shared).await;
}

/// Journey 4: an urgent concern (logged through the API) is on the leader's
/// dashboard until acknowledged; then the leader discharges the patient who
/// has waited longest at the discharge point.
async fn leader_acknowledges_a_concern_and_discharges(
    driver: &ChromeDriver,
    server: &Server,
    patient: i64,
    student: &Student,
) {
    let next = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let reply = ureq::post(&format!("{}/api/v1/patients/{patient}/calls", server.base))
        .set("authorization", &format!("Bearer {}", student.token))
        .send_json(json!({
            "mode": "phone", "outcome": "completed", "duration_minutes": 9,
            "concern": "urgent", "notes": "Says they are not safe at home tonight.",
            "next_call_at": next
        }))
        .unwrap_or_else(|e| panic!("log the urgent call: {e}"));
    assert_eq!(reply.status(), 201);

    let b = Browser::open(driver, server, DESKTOP).await;
    b.sign_in(&demo_email("leader")).await;
    b.see("h1", "Dashboard").await;
    let concern = format!("div.concern-urgent:has(a[href^='/patients/{patient}#'])");
    let panel = b.see("section.alert-panel", "Open concerns").await;
    assert!(panel.text().await.expect("text").contains("Marisol"));
    b.see(&concern, &student.given_name).await;
    b.fill(
        &format!("{concern} input[name=note]"),
        "Called Marisol; Dr. on call informed.",
    )
    .await;
    b.shoot_page("leader-dashboard").await;
    b.click(&format!("{concern} button[type=submit]")).await;
    b.see("h1", "Dashboard").await;
    b.gone(&concern).await;

    b.click("nav a[href='/discharge-queue']").await;
    b.see("h1", "Discharge queue").await;
    let first = b.find("section.queue-entry").await;
    let anchor = first.attr("id").await.expect("id").expect("an id");
    let name = first
        .find(Locator::Css("h2 a"))
        .await
        .expect("name")
        .text()
        .await
        .expect("text");
    let entry = format!("section#{anchor}");
    b.find(&format!("{entry} select[name=reason]"))
        .await
        .select_by_value("completed")
        .await
        .expect("choose the reason");
    b.fill(
        &format!("{entry} textarea[name=summary]"),
        "Eight weeks of calls; feels less isolated and joined the senior centre's phone group.",
    )
    .await;
    b.shoot_page("leader-discharge-queue").await;
    b.click(&format!("{entry} button[type=submit]")).await;

    b.see("h1", &name).await;
    b.see("dl.facts", "discharged (completed)").await;
    b.see("dl.facts", "none (discharged)").await;
    b.see("section.card", "joined the senior centre's phone group")
        .await;
    b.shoot_screen("leader-discharged").await;
    b.click("nav a[href='/discharge-queue']").await;
    b.see("h1", "Discharge queue").await;
    b.gone(&entry).await;
}

/// The admin's settings page, for the admin guide.
async fn admin_settings(driver: &ChromeDriver, server: &Server) {
    let b = Browser::open(driver, server, DESKTOP).await;
    b.sign_in(&demo_email("admin")).await;
    b.click("nav a[href='/admin/settings']").await;
    b.see("h1", "Reminders and email").await;
    b.shoot_page("admin-settings").await;
}

/// Every page a person reaches from the menu fits a phone's width: wide
/// tables scroll inside their box, nothing makes the page scroll sideways.
async fn every_page_fits_a_phone(
    driver: &ChromeDriver,
    server: &Server,
    patient: i64,
    student: &Student,
) {
    let patient_page = format!("/patients/{patient}");
    let pairing_page = format!("/pairing/{patient}");
    let student_page = format!("/dashboard/students/{}", student.id);
    let pages: [(&str, Vec<&str>); 4] = [
        (
            "student",
            vec!["/checkins", "/patients", "/protocol", "/account"],
        ),
        (
            "physician",
            vec![
                "/",
                "/patients",
                "/enrol",
                &patient_page,
                "/discharge-queue",
            ],
        ),
        (
            "leader",
            vec![
                "/dashboard",
                &student_page,
                "/pairing",
                &pairing_page,
                "/debriefs",
                "/reports",
                "/discharge-queue",
                &patient_page,
            ],
        ),
        (
            "admin",
            vec![
                "/admin/users",
                "/admin/users/new",
                "/admin/audit",
                "/admin/settings",
            ],
        ),
    ];
    let b = Browser::open(driver, server, PHONE).await;
    for (role, paths) in pages {
        b.client.delete_all_cookies().await.expect("sign out");
        b.sign_in(&demo_email(role)).await;
        for path in paths {
            b.goto(path).await;
            b.find("main h1").await;
            b.fits_the_width().await;
            let name = format!("phone-{role}{}", path.replace('/', "-"));
            b.shoot_screen(name.trim_end_matches('-')).await;
        }
    }
}
