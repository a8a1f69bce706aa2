//! An independent check of what `SCRIPT.exe install` writes against IIS's own configuration
//! schema: element and attribute names, types, enum and flag values, required attributes,
//! unique collection keys (inherited entries included), where a section may be set
//! (allowDefinition) and what is locked (overrideModeDefault), for every IIS version whose
//! schema facts are in tests/fixtures/iis/schema. appcmd lines are checked by applying them,
//! as appcmd would, to a configuration and checking the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use super::fixture;

// The schema facts ----------------------------------------------------------------------

/// The type of an attribute, as IIS_schema.xml names them.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Bool,
    Uint,
    Int,
    Int64,
    Enum,
    Flags,
    TimeSpan,
    String,
}

#[derive(Debug, Clone)]
struct Attribute {
    name: String,
    kind: Kind,
    required: bool,
    key: bool,
    combined_key: bool,
    case_sensitive: bool,
    infinite: bool,
    time_span_format: Option<String>,
    validation: Option<String>,
    parameter: Option<String>,
    default: Option<String>,
    values: Vec<(String, i64)>,
}

/// An element's schema: its attributes, child elements, and the collection it holds.
#[derive(Debug, Default, Clone)]
struct Node {
    attributes: Vec<Attribute>,
    elements: Vec<(String, Node)>,
    collection: Option<Box<Collection>>,
}

#[derive(Debug, Clone)]
struct Collection {
    add: String,
    remove: Option<String>,
    clear: Option<String>,
    allow_duplicates: bool,
    allow_unrecognized: bool,
    item: Node,
}

impl Node {
    fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn element(&self, name: &str) -> Option<&Node> {
        self.elements.iter().find(|(n, _)| n == name).map(|(_, node)| node)
    }
}

/// One IIS version's schema facts, for the sections the installer writes or reads.
pub struct Schema {
    pub version: String,
    sections: BTreeMap<String, Node>,
}

impl Schema {
    /// Reads the line format extract.py writes (two-space indentation nests).
    fn parse(version: &str, text: &str) -> Schema {
        let mut sections = BTreeMap::new();
        let lines: Vec<(usize, &str)> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| ((l.len() - l.trim_start().len()) / 2, l.trim()))
            .collect();
        let mut at = 0;
        while at < lines.len() {
            let (depth, line) = lines[at];
            let name = line
                .strip_prefix("section ")
                .filter(|_| depth == 0)
                .unwrap_or_else(|| panic!("IIS {version} facts: expected a section at {line:?}"));
            at += 1;
            let node = parse_node(&lines, &mut at, 1);
            sections.insert(name.to_string(), node);
        }
        Schema {
            version: version.to_string(),
            sections,
        }
    }

    /// The default value the schema gives an attribute (`section`, then element names).
    pub fn default_of(&self, section: &str, path: &[&str], attribute: &str) -> Option<String> {
        let mut node = self.sections.get(section)?;
        for name in path {
            node = node.element(name)?;
        }
        node.attribute(attribute)?.default.clone()
    }
}

fn parse_node(lines: &[(usize, &str)], at: &mut usize, depth: usize) -> Node {
    let mut node = Node::default();
    while *at < lines.len() && lines[*at].0 == depth {
        let words = split_words(lines[*at].1);
        *at += 1;
        match words[0].as_str() {
            "attribute" => node.attributes.push(parse_attribute(&words)),
            "element" => {
                let child = parse_node(lines, at, depth + 1);
                node.elements.push((words[1].clone(), child));
            }
            "collection" => {
                let option = |key: &str| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix(&format!("{key}=")))
                        .map(str::to_string)
                };
                let item = parse_node(lines, at, depth + 1);
                node.collection = Some(Box::new(Collection {
                    add: option("add").expect("a collection names its add element"),
                    remove: option("remove"),
                    clear: option("clear"),
                    allow_duplicates: words.iter().any(|w| w == "allowDuplicates"),
                    allow_unrecognized: words.iter().any(|w| w == "allowUnrecognizedAttributes"),
                    item,
                }));
            }
            other => panic!("unknown schema fact {other:?}"),
        }
    }
    node
}

fn parse_attribute(words: &[String]) -> Attribute {
    let kind = match words[2].as_str() {
        "bool" => Kind::Bool,
        "uint" => Kind::Uint,
        "int" => Kind::Int,
        "int64" => Kind::Int64,
        "enum" => Kind::Enum,
        "flags" => Kind::Flags,
        "timeSpan" => Kind::TimeSpan,
        "string" | "" => Kind::String,
        other => panic!("unknown attribute type {other:?}"),
    };
    let has = |w: &str| words[3..].iter().any(|x| x == w);
    let value = |key: &str| {
        words[3..]
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let values = value("values")
        .map(|list| {
            list.split(',')
                .map(|pair| {
                    let (name, number) = pair.rsplit_once(':').expect("NAME:VALUE");
                    (name.to_string(), number.parse().expect("a numeric value"))
                })
                .collect()
        })
        .unwrap_or_default();
    Attribute {
        name: words[1].clone(),
        kind,
        required: has("required"),
        key: has("key"),
        combined_key: has("combinedKey"),
        case_sensitive: has("caseSensitive"),
        infinite: has("infinite"),
        time_span_format: value("timeSpanFormat"),
        validation: value("validation"),
        parameter: value("parameter"),
        default: value("default"),
        values,
    }
}

/// Words separated by spaces; `key="a b"` keeps its spaces, with `\"` and `\\` escapes.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Every IIS version's schema facts in tests/fixtures/iis/schema, oldest first.
pub fn schemas() -> &'static [Schema] {
    static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = fixture("iis/schema");
        let mut found: Vec<(Vec<u32>, Schema)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.to_string();
                let version = name.strip_prefix("iis-")?.strip_suffix(".txt")?.to_string();
                let order = version.split('.').map(|n| n.parse().unwrap()).collect();
                let text = std::fs::read_to_string(&path).unwrap();
                Some((order, Schema::parse(&version, &text)))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!found.is_empty(), "no schema facts in {}", dir.display());
        found.into_iter().map(|(_, schema)| schema).collect()
    })
}

/// The newest IIS version's schema facts.
pub fn newest() -> &'static Schema {
    schemas().last().unwrap()
}

// A configuration as a tree that appcmd lines can change -----------------------------------

/// One XML element of a configuration file (comments and text left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    fn new(name: &str) -> Element {
        Element {
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((name.to_string(), value.to_string())),
        }
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The child `name`, made when missing.
    fn child_mut(&mut self, name: &str) -> &mut Element {
        let at = match self.children.iter().position(|c| c.name == name) {
            Some(at) => at,
            None => {
                self.children.push(Element::new(name));
                self.children.len() - 1
            }
        };
        &mut self.children[at]
    }

    /// Follows `path` (element names, '/'-separated); None when one is missing.
    pub fn find(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |node, name| node.child(name))
    }
}

/// Parses a configuration file; panics on malformed XML (a test input, not user input).
pub fn parse_config(text: &str) -> Element {
    try_parse_config(text).unwrap_or_else(|e| panic!("not well-formed XML: {e}"))
}

/// Parses a configuration file, or says why it is not well-formed XML.
pub fn try_parse_config(text: &str) -> Result<Element, roxmltree::Error> {
    let text = text.trim_start_matches('\u{feff}');
    let doc = roxmltree::Document::parse(text)?;
    fn convert(node: roxmltree::Node) -> Element {
        Element {
            name: node.tag_name().name().to_string(),
            attrs: node
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect(),
            children: node.children().filter(|c| c.is_element()).map(convert).collect(),
        }
    }
    Ok(convert(doc.root_element()))
}

// Validation ------------------------------------------------------------------------------

/// Where a section may be set and whether lower levels may override it, from the
/// configuration's own `<configSections>` (IIS's defaults: Everywhere, Allow).
#[derive(Debug, Clone)]
struct SectionRule {
    allow_definition: String,
    override_mode_default: String,
}

/// Attributes that configuration files may put on any element (locking, configSource).
const META_ATTRIBUTES: [&str; 6] = [
    "lockAttributes",
    "lockAllAttributesExcept",
    "lockElements",
    "lockAllElementsExcept",
    "lockItem",
    "configSource",
];

fn declared_sections(root: &Element) -> BTreeMap<String, SectionRule> {
    fn walk(node: &Element, prefix: &str, out: &mut BTreeMap<String, SectionRule>) {
        for child in &node.children {
            let Some(name) = child.attr("name") else { continue };
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            match child.name.as_str() {
                "sectionGroup" => walk(child, &path, out),
                "section" => {
                    out.insert(
                        path,
                        SectionRule {
                            allow_definition: child.attr("allowDefinition").unwrap_or("Everywhere").to_string(),
                            override_mode_default: child.attr("overrideModeDefault").unwrap_or("Allow").to_string(),
                        },
                    );
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Some(sections) = root.child("configSections") {
        walk(sections, "", &mut out);
    }
    out
}

/// The paths that are sites ("Default Web Site") and applications ("Default Web Site/app").
fn site_and_application_paths(root: &Element) -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(sites) = root.find("system.applicationHost/sites") {
        for site in sites.children.iter().filter(|c| c.name == "site") {
            let name = site.attr("name").unwrap_or_default();
            paths.push(name.to_lowercase());
            for app in site.children.iter().filter(|c| c.name == "application") {
                let path = app.attr("path").unwrap_or("/");
                if path != "/" {
                    paths.push(format!("{name}{path}").to_lowercase());
                }
            }
        }
    }
    paths
}

/// One place a section is set: the `<location>` path ("" for the server) and the element.
struct Placement<'a> {
    location: String,
    node: &'a Element,
}

struct Checker<'a> {
    schema: &'a Schema,
    rules: BTreeMap<String, SectionRule>,
    applications: Vec<String>,
    /// Every placement of each section, in file order, for inherited collection entries.
    placements: BTreeMap<String, Vec<Placement<'a>>>,
    errors: Vec<String>,
}

/// The errors of `config` (its text) against every schema; empty when it is valid.
pub fn check_config(text: &str) -> Vec<String> {
    let root = parse_config(text);
    schemas().iter().flat_map(|schema| check_tree(&root, schema)).collect()
}

/// The errors of a parsed configuration against one schema, each prefixed with the version.
pub fn check_tree(root: &Element, schema: &Schema) -> Vec<String> {
    let mut checker = Checker {
        schema,
        rules: declared_sections(root),
        applications: site_and_application_paths(root),
        placements: BTreeMap::new(),
        errors: Vec::new(),
    };
    if root.name != "configuration" {
        checker.error("the root element", format!("is <{}>, not <configuration>", root.name));
    }
    for child in &root.children {
        match child.name.as_str() {
            "configSections" | "configProtectedData" => {}
            "location" => checker.location(child),
            _ => checker.group_or_section(child, "", ""),
        }
    }
    checker.inherited_keys();
    checker
        .errors
        .into_iter()
        .map(|e| format!("IIS {}: {e}", schema.version))
        .collect()
}

impl<'a> Checker<'a> {
    fn error(&mut self, at: &str, what: String) {
        self.errors.push(format!("{at}: {what}"));
    }

    fn location(&mut self, node: &'a Element) {
        let path = node.attr("path").unwrap_or("").trim_matches('/').to_string();
        let at = format!("<location path=\"{path}\">");
        for (name, value) in &node.attrs {
            match name.as_str() {
                "path" => {}
                "overrideMode" if ["Allow", "Deny", "Inherit"].contains(&value.as_str()) => {}
                "allowOverride" | "inheritInChildApplications" if is_bool(value) => {}
                _ => self.error(&at, format!("attribute {name}=\"{value}\" is not valid on <location>")),
            }
        }
        for child in &node.children {
            self.group_or_section(child, "", &path);
        }
    }

    fn group_or_section(&mut self, node: &'a Element, prefix: &str, location: &str) {
        let path = if prefix.is_empty() {
            node.name.clone()
        } else {
            format!("{prefix}/{}", node.name)
        };
        if let Some(rule) = self.rules.get(&path).cloned() {
            self.section(node, &path, location, &rule);
        } else if self.rules.keys().any(|s| s.starts_with(&format!("{path}/"))) {
            for child in &node.children {
                self.group_or_section(child, &path, location);
            }
        } else {
            let at = where_(location, &path);
            self.error(
                &at,
                "is not a section or section group declared in <configSections>".into(),
            );
        }
    }

    fn section(&mut self, node: &'a Element, path: &str, location: &str, rule: &SectionRule) {
        let at = where_(location, path);
        // In applicationHost.config, location "" is the server level.
        let allowed = match rule.allow_definition.as_str() {
            "AppHostOnly" => location.is_empty(),
            "MachineToApplication" => {
                location.is_empty() || self.applications.iter().any(|p| p == &location.to_lowercase())
            }
            "Everywhere" => true,
            // MachineOnly, MachineToWebRoot: machine.config and the root web.config only.
            _ => false,
        };
        if !allowed {
            let level = if location.is_empty() {
                "in applicationHost.config".to_string()
            } else {
                format!("for {location:?}")
            };
            self.error(
                &at,
                format!(
                    "cannot be set {level}: its allowDefinition is {} (IIS answers \"This configuration section \
                     cannot be used at this path\")",
                    rule.allow_definition
                ),
            );
        }
        self.placements.entry(path.to_string()).or_default().push(Placement {
            location: location.to_string(),
            node,
        });
        // Sections no installer step touches have no facts here; their names were checked
        // against <configSections> above.
        if let Some(schema) = self.schema.sections.get(path) {
            self.element(node, schema, &at, true);
        }
    }

    fn element(&mut self, node: &Element, schema: &Node, at: &str, is_section: bool) {
        for (name, value) in &node.attrs {
            if META_ATTRIBUTES.contains(&name.as_str()) && (name != "configSource" || is_section) {
                continue;
            }
            match schema.attribute(name) {
                Some(attribute) => {
                    if let Err(why) = check_value(attribute, value) {
                        self.error(at, format!("{name}=\"{value}\": {why}"));
                    }
                }
                None => self.error(at, format!("attribute {name:?} is not in the schema")),
            }
        }
        let mut keys: Vec<String> = Vec::new();
        for child in &node.children {
            if let Some(element) = schema.element(&child.name) {
                let at = format!("{at} > {}", child.name);
                self.element(child, element, &at, false);
                continue;
            }
            let Some(collection) = schema.collection.as_deref() else {
                self.error(at, format!("<{}> is not an element of the schema", child.name));
                continue;
            };
            let item_at = format!("{at} > {}{}", child.name, literal(child));
            if child.name == collection.add {
                self.item(child, collection, &item_at);
                let key = item_key(child, &collection.item);
                if !collection.allow_duplicates && keys.contains(&key) {
                    self.error(&item_at, format!("duplicate collection entry (unique key {key})"));
                }
                keys.push(key);
            } else if Some(&child.name) == collection.remove.as_ref() {
                for (name, _) in &child.attrs {
                    if !collection.item.attribute(name).is_some_and(|a| a.key || a.combined_key) {
                        self.error(&item_at, format!("{name:?} is not a key attribute of the collection"));
                    }
                }
                let key = item_key(child, &collection.item);
                keys.retain(|k| k != &key);
            } else if Some(&child.name) == collection.clear.as_ref() {
                if !child.attrs.is_empty() {
                    self.error(&item_at, "<clear> takes no attributes".into());
                }
                keys.clear();
            } else {
                self.error(at, format!("<{}> is not an element of the schema", child.name));
            }
        }
    }

    fn item(&mut self, node: &Element, collection: &Collection, at: &str) {
        let schema = &collection.item;
        for attribute in schema.attributes.iter().filter(|a| a.required) {
            if node.attr(&attribute.name).is_none() {
                self.error(at, format!("required attribute {:?} is missing", attribute.name));
            }
        }
        if collection.allow_unrecognized {
            let known: Vec<(String, String)> = node
                .attrs
                .iter()
                .filter(|(n, _)| schema.attribute(n).is_some())
                .cloned()
                .collect();
            let trimmed = Element {
                attrs: known,
                ..node.clone()
            };
            self.element(&trimmed, schema, at, false);
        } else {
            self.element(node, schema, at, false);
        }
    }

    /// IIS merges a collection with the entries it inherits from the server level and from
    /// the locations above (by path); an entry whose key is already there is a duplicate.
    fn inherited_keys(&mut self) {
        let placements = std::mem::take(&mut self.placements);
        for (section, list) in &placements {
            let Some(schema) = self.schema.sections.get(section) else {
                continue;
            };
            let Some(collection) = schema.collection.as_deref() else {
                continue;
            };
            for placement in list.iter().filter(|p| !p.location.is_empty()) {
                let mut ancestors: Vec<&Placement> = list
                    .iter()
                    .filter(|p| is_ancestor(&p.location, &placement.location))
                    .collect();
                ancestors.sort_by_key(|p| p.location.split('/').filter(|s| !s.is_empty()).count());
                let mut inherited: Vec<String> = Vec::new();
                for ancestor in ancestors {
                    apply_collection(ancestor.node, collection, &mut inherited);
                }
                let at = where_(&placement.location, section);
                for child in &placement.node.children {
                    if Some(&child.name) == collection.clear.as_ref() {
                        inherited.clear();
                    } else if Some(&child.name) == collection.remove.as_ref() {
                        let key = item_key(child, &collection.item);
                        inherited.retain(|k| k != &key);
                    } else if child.name == collection.add {
                        let key = item_key(child, &collection.item);
                        if !collection.allow_duplicates && inherited.contains(&key) {
                            self.error(
                                &format!("{at} > {}{}", child.name, literal(child)),
                                format!("duplicate of an inherited collection entry (unique key {key})"),
                            );
                        }
                    }
                }
            }
        }
        self.placements = placements;
    }
}

fn apply_collection(node: &Element, collection: &Collection, keys: &mut Vec<String>) {
    for child in &node.children {
        if Some(&child.name) == collection.clear.as_ref() {
            keys.clear();
        } else if Some(&child.name) == collection.remove.as_ref() {
            let key = item_key(child, &collection.item);
            keys.retain(|k| k != &key);
        } else if child.name == collection.add {
            keys.push(item_key(child, &collection.item));
        }
    }
}

/// Whether location `parent` is above `child` (the server level is above everything).
fn is_ancestor(parent: &str, child: &str) -> bool {
    let (parent, child) = (parent.to_lowercase(), child.to_lowercase());
    parent != child && (parent.is_empty() || child.starts_with(&format!("{parent}/")))
}

/// The key of a collection entry as IIS compares it: the unique key, or every combined-key
/// attribute, case-folded unless the attribute is case-sensitive.
fn item_key(node: &Element, schema: &Node) -> String {
    let mut parts = Vec::new();
    for attribute in schema.attributes.iter().filter(|a| a.key || a.combined_key) {
        let value = node.attr(&attribute.name).unwrap_or_default();
        let value = if attribute.case_sensitive {
            value.to_string()
        } else {
            value.to_lowercase()
        };
        parts.push(format!("{}='{value}'", attribute.name));
    }
    parts.join(",")
}

fn literal(node: &Element) -> String {
    if node.attrs.is_empty() {
        return String::new();
    }
    let mut out = String::from("[");
    for (i, (name, value)) in node.attrs.iter().enumerate() {
        let _ = write!(out, "{}{name}='{value}'", if i > 0 { "," } else { "" });
    }
    out.push(']');
    out
}

fn where_(location: &str, path: &str) -> String {
    if location.is_empty() {
        path.to_string()
    } else {
        format!("<location path=\"{location}\"> {path}")
    }
}

fn is_bool(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
}

fn parse_uint(value: &str) -> Option<u64> {
    match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// Seconds of a timeSpan written `[-][d.]hh:mm:ss[.fraction]`.
fn parse_time_span(value: &str) -> Option<f64> {
    let (sign, value) = match value.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, value),
    };
    let parts: Vec<&str> = value.split(':').collect();
    let [head, minutes, seconds] = parts[..] else {
        return None;
    };
    let (days, hours) = match head.split_once('.') {
        Some((d, h)) => (d.parse::<u64>().ok()?, h),
        None => (0, head),
    };
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    if hours > 23 && days > 0 || minutes > 59 || seconds >= 60.0 {
        return None;
    }
    Some(sign * ((days * 86400 + hours * 3600 + minutes * 60) as f64 + seconds))
}

fn named(attribute: &Attribute, name: &str) -> bool {
    attribute
        .values
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
}

/// Whether `value` is valid for `attribute` (its type, enum or flag values, validation).
fn check_value(attribute: &Attribute, value: &str) -> Result<(), String> {
    let names = || {
        attribute
            .values
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let number: Option<f64> = match attribute.kind {
        Kind::Bool => {
            return if is_bool(value) {
                Ok(())
            } else {
                Err("not a bool (true or false)".into())
            }
        }
        Kind::Uint => Some(
            parse_uint(value)
                .filter(|n| *n <= u32::MAX as u64)
                .ok_or("not a uint")? as f64,
        ),
        Kind::Int => Some(value.parse::<i32>().map_err(|_| "not an int")? as f64),
        Kind::Int64 => Some(value.parse::<i64>().map_err(|_| "not an int64")? as f64),
        Kind::Enum => {
            return if named(attribute, value) {
                Ok(())
            } else {
                Err(format!("not one of the enum values ({})", names()))
            }
        }
        Kind::Flags => {
            return match value.split(',').find(|flag| !named(attribute, flag)) {
                None => Ok(()),
                Some(flag) => Err(format!("{:?} is not one of the flags ({})", flag.trim(), names())),
            }
        }
        Kind::TimeSpan => {
            if attribute.infinite && value == "Infinite" {
                return Ok(());
            }
            let seconds = match attribute.time_span_format.as_deref() {
                Some("seconds") => value.parse::<f64>().ok(),
                Some("minutes") => value.parse::<f64>().ok().map(|m| m * 60.0),
                _ => parse_time_span(value),
            };
            Some(seconds.ok_or("not a timeSpan ([d.]hh:mm:ss)")?)
        }
        Kind::String => None,
    };
    let parameter: Vec<&str> = attribute.parameter.as_deref().unwrap_or("").split(',').collect();
    match attribute.validation.as_deref() {
        Some("nonEmptyString") if value.is_empty() => Err("must not be empty".into()),
        Some("requireTrimmedString") if value.trim() != value => Err("must not start or end with white space".into()),
        Some("applicationPoolName") => match value.chars().find(|c| "|<>&\"/[]+=;:,?*@".contains(*c)) {
            Some(c) => Err(format!("an application pool name cannot contain {c:?}")),
            None => Ok(()),
        },
        Some("siteName") => match value.chars().find(|c| "/?".contains(*c)) {
            Some(c) => Err(format!("a site name cannot contain {c:?}")),
            None => Ok(()),
        },
        Some("applicationPath" | "virtualDirectoryPath") => {
            let segments_ok = value.split('/').skip(1).all(|s| s != "." && s != "..");
            if value.starts_with('/') && (value == "/" || !value.ends_with('/')) && segments_ok {
                Ok(())
            } else {
                Err("a virtual path starts with '/', does not end with one, and has no '.' or '..' segment".into())
            }
        }
        Some("integerRange" | "timeSpanRange") => {
            let number = number.ok_or("a range on a value that is not a number")?;
            let min: f64 = parameter[0].parse().unwrap();
            let max: f64 = parameter[1].parse().unwrap();
            let (exclude, granularity) = if attribute.validation.as_deref() == Some("timeSpanRange") {
                (
                    parameter.get(3) == Some(&"exclude"),
                    parameter.get(2).map(|g| g.parse::<f64>().unwrap()),
                )
            } else {
                (parameter.get(2) == Some(&"exclude"), None)
            };
            let inside = min <= number && number <= max;
            if inside == exclude {
                let how = if exclude { "outside" } else { "within" };
                return Err(format!("must be {how} {min}..{max}"));
            }
            match granularity {
                Some(g) if g > 0.0 && number % g != 0.0 => Err(format!("must be a multiple of {g} seconds")),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

// appcmd ----------------------------------------------------------------------------------

/// Splits a command line as Windows programs do (CommandLineToArgvW's rules).
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut arg = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let start = i;
            while i < chars.len() && chars[i] == '\\' {
                i += 1;
            }
            let count = i - start;
            if i < chars.len() && chars[i] == '"' {
                arg.extend(std::iter::repeat_n('\\', count / 2));
                if count % 2 == 1 {
                    arg.push('"');
                    i += 1;
                }
            } else {
                arg.extend(std::iter::repeat_n('\\', count));
            }
            in_arg = true;
            continue;
        }
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            ' ' | '\t' if !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut arg));
                    in_arg = false;
                }
            }
            c => {
                arg.push(c);
                in_arg = true;
            }
        }
        i += 1;
    }
    if in_arg {
        args.push(arg);
    }
    args
}

/// `[name='value',other='x']` as appcmd reads a collection entry.
fn parse_entry(text: &str) -> Result<Vec<(String, String)>, String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("{text:?} is not a [name='value',...] entry"))?;
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("='").ok_or_else(|| format!("bad entry {text:?}"))?;
        let end = after
            .find('\'')
            .ok_or_else(|| format!("unterminated value in {text:?}"))?;
        out.push((name.to_string(), after[..end].to_string()));
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    Ok(out)
}

/// `/name:value` options after the command's fixed words.
fn options(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| {
            let body = a
                .strip_prefix('/')
                .or_else(|| a.strip_prefix('-'))
                .ok_or_else(|| format!("{a:?} is not an option"))?;
            Ok(match body.split_once(':') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (body.to_string(), String::new()),
            })
        })
        .collect()
}

/// Sets `a.b.c` as appcmd does: `c` on the element `a/b` (made when missing).
fn set_dotted(node: &mut Element, name: &str, value: &str) {
    let mut parts: Vec<&str> = name.split('.').collect();
    let attribute = parts.pop().unwrap();
    let mut target = node;
    for part in parts {
        target = target.child_mut(part);
    }
    target.set(attribute, value);
}

/// Resolves `/section:NAME` (a full path or its last part, as appcmd accepts).
fn section_path(root: &Element, name: &str) -> Result<String, String> {
    let declared = declared_sections(root);
    if declared.contains_key(name) {
        return Ok(name.to_string());
    }
    let matches: Vec<&String> = declared.keys().filter(|p| p.ends_with(&format!("/{name}"))).collect();
    match matches[..] {
        [one] => Ok(one.clone()),
        _ => Err(format!("unknown section {name:?}")),
    }
}

/// The element of `section` at `location` in the configuration, made when missing.
fn section_node<'a>(root: &'a mut Element, location: Option<&str>, section: &str) -> &'a mut Element {
    let mut node = match location {
        None => root,
        Some(path) => {
            let at = match root
                .children
                .iter()
                .position(|c| c.name == "location" && c.attr("path") == Some(path))
            {
                Some(at) => at,
                None => {
                    let mut location = Element::new("location");
                    location.set("path", path);
                    root.children.push(location);
                    root.children.len() - 1
                }
            };
            &mut root.children[at]
        }
    };
    for part in section.split('/') {
        node = node.child_mut(part);
    }
    node
}

/// Applies one appcmd command line (`appcmd VERB OBJECT ...`, as `install --print-appcmd`
/// prints them) to `root`, with appcmd's own refusals as errors.
pub fn apply_appcmd(root: &mut Element, line: &str) -> Result<(), String> {
    let args = split_command_line(line);
    let [program, verb, object, rest @ ..] = &args[..] else {
        return Err(format!("{line:?} is not an appcmd command"));
    };
    if !program.eq_ignore_ascii_case("appcmd") && !program.to_lowercase().ends_with("appcmd.exe") {
        return Err(format!("{line:?} does not run appcmd"));
    }
    match (verb.as_str(), object.as_str()) {
        ("add" | "restore", "backup") => Ok(()),
        ("add", "apppool") => {
            let options = options(rest)?;
            let name = options
                .iter()
                .find(|(n, _)| n == "name")
                .map(|(_, v)| v.clone())
                .ok_or("add apppool needs /name:")?;
            let pools = section_node(root, None, "system.applicationHost/applicationPools");
            if pools
                .children
                .iter()
                .any(|p| p.name == "add" && p.attr("name") == Some(name.as_str()))
            {
                return Err(format!("an application pool {name:?} already exists"));
            }
            let mut pool = Element::new("add");
            for (n, v) in &options {
                set_dotted(&mut pool, n, v);
            }
            pools.children.push(pool);
            Ok(())
        }
        ("set" | "delete", "apppool") => {
            let (name, rest) = rest.split_first().ok_or("which application pool?")?;
            let pools = section_node(root, None, "system.applicationHost/applicationPools");
            let at = pools
                .children
                .iter()
                .position(|p| p.name == "add" && p.attr("name") == Some(name.as_str()))
                .ok_or_else(|| format!("no application pool {name:?}"))?;
            if verb == "delete" {
                pools.children.remove(at);
            } else {
                for (n, v) in options(rest)? {
                    set_dotted(&mut pools.children[at], &n, &v);
                }
            }
            Ok(())
        }
        ("add", "app") => {
            let options = options(rest)?;
            let get = |key: &str| options.iter().find(|(n, _)| n == key).map(|(_, v)| v.clone());
            let site_name = get("site.name").ok_or("add app needs /site.name:")?;
            let path = get("path").ok_or("add app needs /path:")?;
            let site = site_mut(root, &site_name)?;
            if site
                .children
                .iter()
                .any(|a| a.name == "application" && a.attr("path") == Some(path.as_str()))
            {
                return Err(format!("site {site_name:?} already has an application {path}"));
            }
            let mut app = Element::new("application");
            app.set("path", &path);
            for (n, v) in &options {
                if !["site.name", "path", "physicalPath"].contains(&n.as_str()) {
                    set_dotted(&mut app, n, v);
                }
            }
            if let Some(physical) = get("physicalPath") {
                let mut vdir = Element::new("virtualDirectory");
                vdir.set("path", "/");
                vdir.set("physicalPath", &physical);
                app.children.push(vdir);
            }
            // After the site's other applications, where appcmd puts it.
            let at = site
                .children
                .iter()
                .rposition(|c| c.name == "application")
                .map_or(0, |i| i + 1);
            site.children.insert(at, app);
            Ok(())
        }
        ("delete", "app") => {
            let (site_name, path) = object_path(rest.first().ok_or("which application?")?)?;
            let site = site_mut(root, &site_name)?;
            let at = site
                .children
                .iter()
                .position(|a| a.name == "application" && a.attr("path") == Some(path.as_str()))
                .ok_or_else(|| format!("no application {site_name}{path}"))?;
            site.children.remove(at);
            Ok(())
        }
        ("set" | "clear", "config") => {
            let (location, rest) = match rest.first() {
                Some(first) if !first.starts_with('/') && !first.starts_with('-') => (Some(first.clone()), &rest[1..]),
                _ => (None, rest),
            };
            let mut section = None;
            let mut apphost = false;
            let mut changes = Vec::new();
            for arg in rest {
                if let Some(name) = arg.strip_prefix("/section:") {
                    section = Some(section_path(root, name)?);
                } else if arg == "/commit:apphost" || arg == "/commit:APPHOST" {
                    apphost = true;
                } else {
                    changes.push(arg.clone());
                }
            }
            let section = section.ok_or("set config needs /section:")?;
            let rule = declared_sections(root).get(&section).cloned().unwrap();
            if let (Some(location), false) = (&location, apphost) {
                let lock = if rule.override_mode_default == "Deny" {
                    " where the section is locked (overrideModeDefault=\"Deny\")"
                } else {
                    ""
                };
                return Err(format!(
                    "without /commit:apphost this writes {section} into the web.config of {location:?}{lock}"
                ));
            }
            let node = section_node(root, location.as_deref(), &section);
            if verb == "clear" {
                node.attrs.clear();
                node.children.clear();
                return Ok(());
            }
            for change in changes {
                if let Some(entry) = change.strip_prefix("/+") {
                    let (path, entry) = split_collection_path(entry);
                    let mut item = Element::new(&add_element_name(&section, &path)?);
                    item.attrs = parse_entry(entry)?;
                    walk_mut(node, &path).children.push(item);
                } else if let Some(entry) = change.strip_prefix("/-") {
                    let (path, entry) = split_collection_path(entry);
                    let target = walk_mut(node, &path);
                    let key = parse_entry(entry)?;
                    let at = target
                        .children
                        .iter()
                        .position(|c| key.iter().all(|(n, v)| c.attr(n) == Some(v.as_str())))
                        .ok_or_else(|| format!("no collection entry {entry} to remove"))?;
                    target.children.remove(at);
                } else {
                    let (name, value) = options(std::slice::from_ref(&change))?.remove(0);
                    set_dotted(node, &name, &value);
                }
            }
            Ok(())
        }
        _ => Err(format!("appcmd {verb} {object} is not modelled here")),
    }
}

/// `requestLimits.headerLimits.[header='x']` -> (["requestLimits", "headerLimits"], "[...]").
fn split_collection_path(text: &str) -> (Vec<String>, &str) {
    match text.find('[') {
        Some(at) => {
            let path = text[..at].trim_end_matches('.');
            let parts = if path.is_empty() {
                Vec::new()
            } else {
                path.split('.').map(str::to_string).collect()
            };
            (parts, &text[at..])
        }
        None => (Vec::new(), text),
    }
}

fn walk_mut<'a>(node: &'a mut Element, path: &[String]) -> &'a mut Element {
    path.iter().fold(node, |n, part| n.child_mut(part))
}

/// What the entries of the collection at `path` in `section` are called (`add`,
/// `filter`, ...), as the newest schema says.
fn add_element_name(section: &str, path: &[String]) -> Result<String, String> {
    let mut node = newest()
        .sections
        .get(section)
        .ok_or_else(|| format!("no schema facts for {section}"))?;
    for part in path {
        node = node
            .element(part)
            .ok_or_else(|| format!("{section} has no element {part:?}"))?;
    }
    let collection = node
        .collection
        .as_deref()
        .ok_or_else(|| format!("{section} has no collection there"))?;
    Ok(collection.add.clone())
}

fn site_mut<'a>(root: &'a mut Element, name: &str) -> Result<&'a mut Element, String> {
    let sites = section_node(root, None, "system.applicationHost/sites");
    sites
        .children
        .iter_mut()
        .find(|s| s.name == "site" && s.attr("name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .ok_or_else(|| format!("no site {name:?}"))
}

/// `Default Web Site/app/x` -> ("Default Web Site", "/app/x").
fn object_path(text: &str) -> Result<(String, String), String> {
    let (site, path) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not SITE/PATH"))?;
    Ok((site.to_string(), format!("/{path}")))
}

// What the tests call ----------------------------------------------------------------------

/// Asserts that the configuration file at `path` is valid against every IIS version's
/// schema facts.
#[track_caller]
pub fn assert_valid_config(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let errors = check_config(&text);
    assert!(
        errors.is_empty(),
        "{} is not valid against IIS's schema:\n{}",
        path.display(),
        errors.join("\n")
    );
}

/// Applies `lines` (appcmd commands; other lines such as icacls are skipped) to the
/// configuration `text` as appcmd would, asserting each is accepted and the result is
/// valid against every IIS version's schema facts; returns the result.
#[track_caller]
pub fn assert_valid_appcmd(text: &str, lines: &[&str]) -> Element {
    let mut root = parse_config(text);
    for line in lines.iter().filter(|l| l.starts_with("appcmd ")) {
        if let Err(e) = apply_appcmd(&mut root, line) {
            panic!("appcmd would refuse {line}\n  {e}");
        }
    }
    let errors: Vec<String> = schemas().iter().flat_map(|s| check_tree(&root, s)).collect();
    assert!(
        errors.is_empty(),
        "the appcmd lines leave a configuration IIS's schema rejects:\n{}\nlines:\n{}",
        errors.join("\n"),
        lines.join("\n")
    );
    root
}
