//! The protocol: the call script callers follow and the resources they share.
//! It is data in `protocol/` (Markdown and TOML, reviewed like code), compiled
//! into the binary, and versioned by a hash of its files so every call records
//! exactly which script it followed. docs/protocol.md explains the layout.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

/// The resource categories a protocol may use, in the order pages show them.
pub const CATEGORIES: [&str; 4] = ["public_health", "community", "mental_health", "crisis"];

/// The language every protocol has and every other one falls back to.
pub const DEFAULT_LANGUAGE: &str = "en";

/// What errors say the files are called: as they sit in the repository.
const SHOWN_PREFIX: &str = "protocol/";

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../protocol/", $path)))),*]
    };
}

/// Every file of the built-in protocol. A section added to protocol.toml needs
/// its files here too; the `embedded_matches_the_folder` test says so.
const EMBEDDED: &[(&str, &str)] = embed![
    "protocol.toml",
    "resources.toml",
    "en/opening.md",
    "en/how-are-you.md",
    "en/mood-screen.md",
    "en/covid-19.md",
    "en/community-resources.md",
    "en/mental-health-resources.md",
    "en/safety.md",
    "en/next-call.md",
    "en/closing.md",
    "en/final-call.md",
    "es/opening.md",
    "es/how-are-you.md",
    "es/mood-screen.md",
    "es/covid-19.md",
    "es/community-resources.md",
    "es/mental-health-resources.md",
    "es/safety.md",
    "es/next-call.md",
    "es/closing.md",
    "es/final-call.md",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Protocol {
    pub title: String,
    /// First 12 hex characters of SHA-256 over every protocol file (path and contents, sorted by path).
    pub version: String,
    pub languages: Vec<String>,
    pub sections: Vec<Section>,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Section {
    pub id: String,
    pub optional: bool,
    pub final_call_only: bool,
    pub resource_categories: Vec<String>,
    /// Per language code: the text in that language.
    pub title: BTreeMap<String, String>,
    pub purpose: BTreeMap<String, String>,
    /// The script rendered to HTML (pulldown-cmark; raw HTML in the Markdown is escaped, not passed through).
    pub script_html: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Resource {
    pub id: String,
    pub name: String,
    pub category: String,
    pub phone: Option<String>,
    pub url: Option<String>,
    pub languages: Vec<String>,
    pub hours: String,
    pub source: String,
    pub last_checked: chrono::NaiveDate,
    pub description: String,
    #[serde(default)]
    pub local: bool,
}

/// A protocol file that cannot be used, named as it sits in the repository
/// (`protocol/es/safety.md`) with the line to look at where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ProtocolError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Protocol {
    /// The protocol compiled into the binary (the files in protocol/, via include_str!; list them explicitly).
    pub fn embedded() -> Result<Protocol, ProtocolError> {
        let files = EMBEDDED
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect();
        parse(&files)
    }

    /// The protocol in a folder laid out like protocol/ (for programmes that adapt it: CHECKIN_PROTOCOL_DIR).
    pub fn from_dir(dir: &Path) -> Result<Protocol, ProtocolError> {
        parse(&read_folder(dir)?)
    }

    /// Sections for a normal call (not final_call_only), in order.
    pub fn regular_sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| !s.final_call_only)
    }

    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.id == id)
    }

    /// The text of `lang` if the protocol has it, else English.
    pub fn language_or_default<'a>(&self, lang: &'a str) -> &'a str {
        if self.languages.iter().any(|l| l == lang) {
            lang
        } else {
            DEFAULT_LANGUAGE
        }
    }

    /// JSON snapshot stored once per version in the protocol_versions table.
    pub fn snapshot_json(&self) -> String {
        serde_json::to_string(self).expect("a protocol is strings, bools and dates")
    }
}

/// `protocol.toml`, `resources.toml` and every `<folder>/<name>.md` under
/// `dir`, keyed by their path inside it.
fn read_folder(dir: &Path) -> Result<BTreeMap<String, String>, ProtocolError> {
    let unreadable = |shown: String, e: std::io::Error| ProtocolError {
        file: shown,
        line: None,
        message: format!("cannot be read: {e}"),
    };
    let mut files = BTreeMap::new();
    let mut read = |rel: String, path: &Path| -> Result<(), ProtocolError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                files.insert(rel, text);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unreadable(shown(&rel), e)),
        }
    };
    for name in ["protocol.toml", "resources.toml"] {
        read(name.to_string(), &dir.join(name))?;
    }
    let listing = |path: &Path| {
        std::fs::read_dir(path).map_err(|e| unreadable(path.display().to_string(), e))
    };
    for folder in listing(dir)? {
        let folder = folder.map_err(|e| unreadable(dir.display().to_string(), e))?;
        if !folder.path().is_dir() {
            continue;
        }
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        for file in listing(&folder.path())? {
            let file = file.map_err(|e| unreadable(folder.path().display().to_string(), e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") && file.path().is_file() {
                read(format!("{folder_name}/{name}"), &file.path())?;
            }
        }
    }
    Ok(files)
}

fn shown(rel: &str) -> String {
    format!("{SHOWN_PREFIX}{rel}")
}

/// One protocol file being parsed: its errors name it and find lines in it.
struct Source<'a> {
    rel: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            file: shown(self.rel),
            line: None,
            message: message.into(),
        }
    }

    fn error_on_line(&self, line: usize, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            line: Some(line),
            ..self.error(message)
        }
    }

    fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ProtocolError {
        let before = &self.text.as_bytes()[..span.start.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        self.error_on_line(line, message)
    }

    fn toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        toml::from_str(self.text).map_err(|e| match e.span() {
            Some(span) => self.error_at(span, e.message().trim()),
            None => self.error(e.message().trim()),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtocolFile {
    title: String,
    languages: Spanned<Vec<Spanned<String>>>,
    sections: Vec<SectionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionEntry {
    id: Spanned<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    final_call_only: bool,
    #[serde(default)]
    resource_categories: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesFile {
    #[serde(default)]
    resources: Vec<ResourceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    id: Spanned<String>,
    name: String,
    category: Spanned<String>,
    phone: Option<String>,
    url: Option<Spanned<String>>,
    languages: Spanned<Vec<Spanned<String>>>,
    hours: String,
    source: String,
    /// A TOML date (`2026-11-29`) or the same in quotes.
    last_checked: Spanned<toml::Value>,
    description: String,
    #[serde(default)]
    local: bool,
}

/// The files a protocol is parsed from, remembering which were read.
struct Opened<'a> {
    files: &'a BTreeMap<String, String>,
    read: BTreeMap<&'a str, &'a str>,
}

impl<'a> Opened<'a> {
    fn open(&mut self, rel: &str) -> Option<Source<'a>> {
        let (rel, text) = self.files.get_key_value(rel)?;
        self.read.insert(rel, text);
        Some(Source { rel, text })
    }
}

/// The one parser behind both constructors, over (path inside the protocol
/// folder, contents) pairs. The version hashes exactly the files it reads.
fn parse(files: &BTreeMap<String, String>) -> Result<Protocol, ProtocolError> {
    let mut opened = Opened {
        files,
        read: BTreeMap::new(),
    };
    let missing = |rel: &str| ProtocolError {
        file: shown(rel),
        line: None,
        message: "is missing".into(),
    };

    let head = opened
        .open("protocol.toml")
        .ok_or_else(|| missing("protocol.toml"))?;
    let file: ProtocolFile = head.toml()?;
    if file.title.trim().is_empty() {
        return Err(head.error("`title` is empty"));
    }
    let languages = check_languages(&head, &file.languages)?;
    if !languages.iter().any(|l| l == DEFAULT_LANGUAGE) {
        return Err(head.error_at(
            file.languages.span(),
            format!(
                "`languages` must include {DEFAULT_LANGUAGE:?}, the language others fall back to"
            ),
        ));
    }
    if file.sections.is_empty() {
        return Err(head.error("lists no [[sections]]"));
    }
    let mut ids = BTreeSet::new();
    let mut entries = Vec::new();
    for entry in &file.sections {
        let id = entry.id.get_ref();
        if !is_kebab_id(id) {
            return Err(head.error_at(
                entry.id.span(),
                format!("section id {id:?} must be kebab-case ASCII such as \"next-call\""),
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(head.error_at(entry.id.span(), format!("section {id:?} is listed twice")));
        }
        let categories = check_categories(&head, &entry.resource_categories)?;
        entries.push((entry, categories));
    }

    let mut sections = Vec::new();
    for (entry, resource_categories) in entries {
        let id = entry.id.get_ref();
        let mut section = Section {
            id: id.clone(),
            optional: entry.optional,
            final_call_only: entry.final_call_only,
            resource_categories,
            title: BTreeMap::new(),
            purpose: BTreeMap::new(),
            script_html: BTreeMap::new(),
        };
        for lang in &languages {
            let rel = format!("{lang}/{id}.md");
            let Some(markdown) = opened.open(&rel) else {
                return Err(head.error_at(
                    entry.id.span(),
                    format!("section {id:?} has no Markdown file {}", shown(&rel)),
                ));
            };
            let (title, purpose, script_html) = parse_section_file(&markdown)?;
            section.title.insert(lang.clone(), title);
            section.purpose.insert(lang.clone(), purpose);
            section.script_html.insert(lang.clone(), script_html);
        }
        sections.push(section);
    }

    let resources = match opened.open("resources.toml") {
        Some(list) => parse_resources(&list)?,
        None => return Err(missing("resources.toml")),
    };
    Ok(Protocol {
        title: file.title.trim().to_string(),
        version: version_of(opened.read),
        languages,
        sections,
        resources,
    })
}

/// Windows line endings count as Unix ones, so any checkout builds the same version.
fn version_of<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = Sha256::new();
    let mut files: Vec<_> = files.into_iter().collect();
    files.sort();
    for (path, text) in files {
        let text = text.replace("\r\n", "\n");
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())[..12].to_string()
}

/// `# Title`, a `Purpose:` paragraph, then the script: (title, purpose, HTML).
fn parse_section_file(source: &Source) -> Result<(String, String, String), ProtocolError> {
    let text = source.text.strip_prefix('\u{feff}').unwrap_or(source.text);
    let mut lines = text.lines();
    let title = lines
        .next()
        .and_then(|first| first.strip_prefix("# "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            source.error_on_line(1, "must start with a title line such as `# Opening`")
        })?;
    let rest: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
    let paragraph_end = rest
        .iter()
        .position(|l| l.trim().is_empty())
        .unwrap_or(rest.len());
    let paragraph: Vec<&str> = rest[..paragraph_end].iter().map(|l| l.trim()).collect();
    let purpose = paragraph
        .join(" ")
        .strip_prefix("Purpose:")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            source.error("needs a paragraph starting `Purpose:` right after the title")
        })?;
    let script = rest[paragraph_end..].join("\n");
    if script.trim().is_empty() {
        return Err(source.error("has no script after the `Purpose:` paragraph"));
    }
    Ok((title.to_string(), purpose, render_markdown(&script)))
}

/// CommonMark to HTML. Raw HTML is shown as text and links may only go to
/// web, mail and phone addresses: the script is content, never markup.
fn render_markdown(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !is_safe_url(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !is_safe_url(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn is_safe_url(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    match url.find(':') {
        Some(colon) if !url[..colon].contains(['/', '?', '#']) => {
            ["http", "https", "mailto", "tel"].contains(&&url[..colon])
        }
        _ => true,
    }
}

fn parse_resources(source: &Source) -> Result<Vec<Resource>, ProtocolError> {
    let file: ResourcesFile = source.toml()?;
    let mut ids = BTreeSet::new();
    let mut resources = Vec::new();
    for entry in file.resources {
        let id = entry.id.get_ref();
        if !is_kebab_id(id) {
            return Err(source.error_at(
                entry.id.span(),
                format!("resource id {id:?} must be kebab-case ASCII such as \"food-bank\""),
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(
                source.error_at(entry.id.span(), format!("resource {id:?} is listed twice"))
            );
        }
        let category = check_categories(source, std::slice::from_ref(&entry.category))?.remove(0);
        if let Some(url) = &entry.url {
            let u = url.get_ref();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(source.error_at(
                    url.span(),
                    format!("url {u:?} must start with https:// or http://"),
                ));
            }
        }
        let last_checked = check_date(source, &entry.last_checked)?;
        for text in [&entry.name, &entry.hours, &entry.source, &entry.description] {
            if text.trim().is_empty() {
                return Err(source.error_at(
                    entry.id.span(),
                    format!("resource {id:?} has an empty name, hours, source or description"),
                ));
            }
        }
        resources.push(Resource {
            id: id.clone(),
            name: entry.name,
            category,
            phone: entry.phone,
            url: entry.url.map(Spanned::into_inner),
            languages: check_languages(source, &entry.languages)?,
            hours: entry.hours,
            source: entry.source,
            last_checked,
            description: entry.description,
            local: entry.local,
        });
    }
    Ok(resources)
}

fn check_date(
    source: &Source,
    value: &Spanned<toml::Value>,
) -> Result<chrono::NaiveDate, ProtocolError> {
    let text = match value.get_ref() {
        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
        source.error_at(
            value.span(),
            format!("last_checked {text} is not a date such as 2026-11-29"),
        )
    })
}

/// ISO 639-1 codes: two lowercase letters, each once.
fn check_languages(
    source: &Source,
    codes: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<String>, ProtocolError> {
    let mut seen = Vec::new();
    for code in codes.get_ref() {
        let c = code.get_ref();
        if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_lowercase())) {
            return Err(source.error_at(
                code.span(),
                format!("language {c:?} is not a two-letter ISO 639-1 code such as \"es\""),
            ));
        }
        if seen.contains(c) {
            return Err(source.error_at(code.span(), format!("language {c:?} is listed twice")));
        }
        seen.push(c.clone());
    }
    if seen.is_empty() {
        return Err(source.error_at(codes.span(), "`languages` is empty"));
    }
    Ok(seen)
}

fn check_categories(
    source: &Source,
    names: &[Spanned<String>],
) -> Result<Vec<String>, ProtocolError> {
    names
        .iter()
        .map(|name| match CATEGORIES.contains(&name.get_ref().as_str()) {
            true => Ok(name.get_ref().clone()),
            false => Err(source.error_at(
                name.span(),
                format!(
                    "resource category {:?} is not one of: {}",
                    name.get_ref(),
                    CATEGORIES.join(", ")
                ),
            )),
        })
        .collect()
}

fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTIONS: [&str; 10] = [
        "opening",
        "how-are-you",
        "mood-screen",
        "covid-19",
        "community-resources",
        "mental-health-resources",
        "safety",
        "next-call",
        "closing",
        "final-call",
    ];

    /// The built-in files written to a fresh folder, changed by `edit`.
    fn folder_with(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in EMBEDDED {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        edit(dir.path());
        dir
    }

    fn broken(edit: impl FnOnce(&Path)) -> ProtocolError {
        let dir = folder_with(edit);
        Protocol::from_dir(dir.path()).expect_err("the broken protocol loaded")
    }

    fn rewrite(dir: &Path, rel: &str, change: impl FnOnce(String) -> String) {
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, change(text)).unwrap();
    }

    /// The line of the first occurrence of `needle` in a built-in file.
    fn line_of(rel: &str, needle: &str) -> usize {
        let text = EMBEDDED.iter().find(|(r, _)| *r == rel).unwrap().1;
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {rel}"));
        text[..at].matches('\n').count() + 1
    }

    #[test]
    fn the_embedded_protocol_has_every_section_in_both_languages() {
        let protocol = Protocol::embedded().unwrap();
        assert_eq!(protocol.languages, ["en", "es"]);
        let ids: Vec<&str> = protocol.sections.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, SECTIONS);
        for section in &protocol.sections {
            for lang in ["en", "es"] {
                assert!(!section.title[lang].is_empty(), "{} {lang}", section.id);
                assert!(section.purpose[lang].len() > 20, "{} {lang}", section.id);
                assert!(
                    section.script_html[lang].contains("<p>"),
                    "{} {lang}",
                    section.id
                );
            }
            assert_ne!(
                section.title["en"], section.title["es"],
                "{} is not translated",
                section.id
            );
        }
        let final_only: Vec<&str> = protocol
            .sections
            .iter()
            .filter(|s| s.final_call_only)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(final_only, ["final-call"]);
        assert_eq!(protocol.regular_sections().count(), SECTIONS.len() - 1);
        assert!(protocol.section("mood-screen").unwrap().optional);
        assert!(!protocol.section("safety").unwrap().optional);
        assert_eq!(
            protocol.section("safety").unwrap().resource_categories,
            ["crisis"]
        );
        assert!(protocol.section("no-such-section").is_none());
    }

    #[test]
    fn the_embedded_resources_are_complete_and_placeholders_are_marked() {
        let protocol = Protocol::embedded().unwrap();
        for id in [
            "lifeline-988",
            "crisis-text-line",
            "samhsa-national-helpline",
            "cdc-covid-19",
            "vaccines-gov",
            "vacunas-gov",
            "united-way-211",
            "nami-helpline",
            "disaster-distress-helpline",
            "eldercare-locator",
        ] {
            let resource = protocol
                .resource(id)
                .unwrap_or_else(|| panic!("{id} missing"));
            assert!(!resource.local, "{id}");
        }
        let lifeline = protocol.resource("lifeline-988").unwrap();
        assert_eq!(lifeline.phone.as_deref(), Some("988"));
        assert_eq!(lifeline.languages, ["en", "es"]);
        assert_eq!(
            protocol
                .resource("samhsa-national-helpline")
                .unwrap()
                .phone
                .as_deref(),
            Some("1-800-662-4357")
        );
        for resource in protocol.resources.iter().filter(|r| r.local) {
            assert!(
                resource.name.contains("REPLACE"),
                "{} is local but not marked",
                resource.id
            );
        }
        for category in CATEGORIES {
            assert!(
                protocol
                    .resources
                    .iter()
                    .any(|r| r.category == category && !r.local),
                "{category}"
            );
            assert!(
                protocol
                    .resources
                    .iter()
                    .any(|r| r.category == category && r.local),
                "{category}"
            );
        }
        // Every section's categories have something to show beside it.
        for section in &protocol.sections {
            for category in &section.resource_categories {
                assert!(protocol.resources.iter().any(|r| &r.category == category));
            }
        }
    }

    #[test]
    fn embedded_matches_the_folder() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol");
        let on_disk = read_folder(&folder).unwrap();
        let embedded: Vec<&str> = EMBEDDED.iter().map(|(rel, _)| *rel).collect();
        let listed: Vec<&str> = on_disk.keys().map(String::as_str).collect();
        let mut sorted = embedded.clone();
        sorted.sort();
        assert_eq!(sorted, listed, "EMBEDDED must list every protocol file");
        assert_eq!(
            Protocol::from_dir(&folder).unwrap().version,
            Protocol::embedded().unwrap().version
        );
    }

    #[test]
    fn versions_are_stable_and_follow_every_byte() {
        let first = Protocol::embedded().unwrap();
        assert_eq!(first.version.len(), 12);
        assert!(first
            .version
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(Protocol::embedded().unwrap().version, first.version);
        let copy = folder_with(|_| {});
        assert_eq!(
            Protocol::from_dir(copy.path()).unwrap().version,
            first.version
        );

        let changed = folder_with(|dir| {
            rewrite(dir, "es/closing.md", |t| {
                t.replacen("Cuídese", "Cuídate", 1)
            })
        });
        assert_ne!(
            Protocol::from_dir(changed.path()).unwrap().version,
            first.version
        );
        let changed =
            folder_with(|dir| rewrite(dir, "resources.toml", |t| t.replacen("24/7", "24/8", 1)));
        assert_ne!(
            Protocol::from_dir(changed.path()).unwrap().version,
            first.version
        );

        // Windows line endings are the same content; files no section uses are not the protocol.
        let crlf = folder_with(|dir| {
            rewrite(dir, "en/safety.md", |t| t.replace('\n', "\r\n"));
            std::fs::write(dir.join("en/notes.md"), "# Draft\n").unwrap();
            std::fs::write(dir.join("README.md"), "# About\n").unwrap();
        });
        assert_eq!(
            Protocol::from_dir(crlf.path()).unwrap().version,
            first.version
        );
    }

    #[test]
    fn the_hash_itself_does_not_drift() {
        // Changing how versions are computed would orphan every recorded call's version.
        assert_eq!(
            version_of([("a.md", "x"), ("protocol.toml", "title = \"t\"\n")]),
            "ef7b722d67c9"
        );
    }

    #[test]
    fn the_snapshot_is_json_with_every_section_and_resource() {
        let protocol = Protocol::embedded().unwrap();
        let snapshot: serde_json::Value = serde_json::from_str(&protocol.snapshot_json()).unwrap();
        assert_eq!(snapshot["version"], protocol.version.as_str());
        assert_eq!(
            snapshot["sections"].as_array().unwrap().len(),
            protocol.sections.len()
        );
        assert_eq!(snapshot["resources"][0]["last_checked"], "2026-11-29");
        let resources: Vec<Resource> =
            serde_json::from_value(snapshot["resources"].clone()).unwrap();
        assert_eq!(resources.len(), protocol.resources.len());
    }

    #[test]
    fn unknown_languages_fall_back_to_english() {
        let protocol = Protocol::embedded().unwrap();
        assert_eq!(protocol.language_or_default("es"), "es");
        assert_eq!(protocol.language_or_default("pt"), "en");
        assert_eq!(protocol.language_or_default(""), "en");
    }

    #[test]
    fn raw_html_is_escaped_and_only_safe_links_are_kept() {
        let html = render_markdown(
            "Say <b>hi</b>.\n\n<script>alert(1)</script>\n\n[988](tel:988) [cdc](https://www.cdc.gov) [x](javascript:alert(1)) [y](JavaScript:alert(1))",
        );
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
        assert!(
            html.contains(r#"href="tel:988""#) && html.contains(r#"href="https://www.cdc.gov""#)
        );
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        let table = render_markdown("| a | b |\n|---|---|\n| 0 | 1 |\n");
        assert!(table.contains("<table>"), "{table}");
    }

    #[test]
    fn a_toml_syntax_error_names_the_file_and_line() {
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen("hours = \"24/7\"", "hours = 24/7", 1)
            })
        });
        assert_eq!(e.file, "protocol/resources.toml");
        assert_eq!(
            e.line,
            Some(line_of("resources.toml", "hours = \"24/7\"")),
            "{e}"
        );
        assert!(e.to_string().starts_with("protocol/resources.toml:"), "{e}");

        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen("optional = true", "optional = yes", 1)
            })
        });
        assert_eq!(
            (e.file.as_str(), e.line),
            (
                "protocol/protocol.toml",
                Some(line_of("protocol.toml", "optional = true"))
            ),
            "{e}"
        );
    }

    #[test]
    fn a_section_without_its_markdown_names_the_protocol_toml_line() {
        let e = broken(|dir| std::fs::remove_file(dir.join("es/safety.md")).unwrap());
        assert_eq!(e.file, "protocol/protocol.toml");
        assert_eq!(e.line, Some(line_of("protocol.toml", "id = \"safety\"")));
        assert!(e.message.contains("protocol/es/safety.md"), "{e}");
    }

    #[test]
    fn a_markdown_file_without_its_title_or_purpose_is_named() {
        let e = broken(|dir| rewrite(dir, "es/safety.md", |t| t.replacen("# ", "", 1)));
        assert_eq!(
            (e.file.as_str(), e.line),
            ("protocol/es/safety.md", Some(1)),
            "{e}"
        );
        assert_eq!(
            e.to_string().split(": ").next(),
            Some("protocol/es/safety.md:1")
        );

        let e = broken(|dir| rewrite(dir, "en/closing.md", |t| t.replacen("Purpose:", "Goal:", 1)));
        assert_eq!(
            (e.file.as_str(), e.line),
            ("protocol/en/closing.md", None),
            "{e}"
        );
        assert!(e.message.contains("Purpose:"), "{e}");
    }

    #[test]
    fn bad_resources_name_the_line() {
        let first_category = line_of("resources.toml", "category = \"crisis\"");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen("category = \"crisis\"", "category = \"urgent\"", 1)
            })
        });
        assert_eq!(
            (e.file.as_str(), e.line),
            ("protocol/resources.toml", Some(first_category)),
            "{e}"
        );
        assert!(e.message.contains("\"urgent\""), "{e}");

        let second = line_of("resources.toml", "id = \"crisis-text-line\"");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen("id = \"crisis-text-line\"", "id = \"lifeline-988\"", 1)
            })
        });
        assert_eq!(e.line, Some(second), "{e}");
        assert!(e.message.contains("twice"), "{e}");

        let date = line_of("resources.toml", "last_checked = 2026");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen(
                    "last_checked = 2026-11-29",
                    "last_checked = \"29/11/2026\"",
                    1,
                )
            })
        });
        assert_eq!(e.line, Some(date), "{e}");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen("last_checked = 2026-11-29", "last_checked = 2026-02-30", 1)
            })
        });
        assert_eq!(e.line, Some(date), "{e}");

        let languages = line_of("resources.toml", "languages = [\"en\", \"es\"]");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen(
                    "languages = [\"en\", \"es\"]",
                    "languages = [\"en\", \"Spanish\"]",
                    1,
                )
            })
        });
        assert_eq!(e.line, Some(languages), "{e}");
        assert!(e.message.contains("\"Spanish\""), "{e}");
        let e = broken(|dir| {
            rewrite(dir, "resources.toml", |t| {
                t.replacen("languages = [\"en\", \"es\"]", "languages = []", 1)
            })
        });
        assert_eq!(e.line, Some(languages), "{e}");
    }

    #[test]
    fn bad_protocol_toml_entries_name_the_line() {
        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen(
                    "languages = [\"en\", \"es\"]",
                    "languages = [\"en\", \"ES\"]",
                    1,
                )
            })
        });
        assert_eq!(
            (e.file.as_str(), e.line),
            (
                "protocol/protocol.toml",
                Some(line_of("protocol.toml", "languages ="))
            ),
            "{e}"
        );
        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen("languages = [\"en\", \"es\"]", "languages = [\"es\"]", 1)
            })
        });
        assert_eq!(e.line, Some(line_of("protocol.toml", "languages =")), "{e}");
        assert!(e.message.contains("\"en\""), "{e}");

        let line = line_of("protocol.toml", "resource_categories = [\"crisis\"]");
        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen(
                    "resource_categories = [\"crisis\"]",
                    "resource_categories = [\"food\"]",
                    1,
                )
            })
        });
        assert_eq!(e.line, Some(line), "{e}");

        let line = line_of("protocol.toml", "id = \"closing\"");
        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen("id = \"closing\"", "id = \"opening\"", 1)
            })
        });
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains("twice"), "{e}");

        let e = broken(|dir| {
            rewrite(dir, "protocol.toml", |t| {
                t.replacen("id = \"closing\"", "id = \"Closing Call\"", 1)
            })
        });
        assert_eq!(e.line, Some(line), "{e}");

        let e = broken(|dir| std::fs::remove_file(dir.join("protocol.toml")).unwrap());
        assert_eq!(
            (e.file.as_str(), e.line),
            ("protocol/protocol.toml", None),
            "{e}"
        );
    }
}
