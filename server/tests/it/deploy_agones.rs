//! deploy/agones/ read as Kubernetes and Docker would, and held to the server: every
//! manifest is valid against Agones's CRD schemas (vendored in deploy/agones/schemas/,
//! strict about unknown fields as `kubectl apply` is); the Fleet's ports, variables,
//! flags, probes and health settings are ones this server takes and fit its Health
//! timer; the FleetAutoscaler scales that Fleet on the Counter the server keeps; and the
//! Dockerfile copies paths that exist and sets variables and flags the server accepts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde_json::{Value, json};
use server::Config;

/// The Counter and label the server keeps its player count in.
const PLAYERS_COUNTER: &str = "players";
/// The Fleet's port the server reads back as its public URL.
const GAME_PORT_NAME: &str = "game";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server is in the workspace")
        .to_owned()
}

fn deploy_dir() -> PathBuf {
    repo().join("deploy").join("agones")
}

/// Every document of every `deploy/agones/*.yaml`, as JSON, with its file's name.
fn manifests() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("list deploy/agones")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "deploy/agones has manifests");
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a manifest");
        let name = file.display().to_string();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|err| panic!("{name} is YAML: {err}"));
            documents.push((name.clone(), value));
        }
    }
    documents
}

fn of_kind(kind: &str) -> Value {
    let mut found: Vec<Value> = manifests()
        .into_iter()
        .map(|(_, value)| value)
        .filter(|value| value["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in deploy/agones");
    found.remove(0)
}

/// The vendored schema and apiVersion for a kind.
fn schema_for(kind: &str) -> (&'static str, Value) {
    let (api_version, file) = match kind {
        "Fleet" => ("agones.dev/v1", "fleets.v1.json"),
        "FleetAutoscaler" => ("autoscaling.agones.dev/v1", "fleetautoscalers.v1.json"),
        other => panic!("no vendored schema for kind {other}"),
    };
    let text = std::fs::read_to_string(deploy_dir().join("schemas").join(file))
        .expect("read a vendored schema");
    let mut schema: Value = serde_json::from_str(&text).expect("a vendored schema is JSON");
    // Every object has these; a CRD's schema may leave them out, since the API server
    // checks them itself.
    let root = schema["properties"]
        .as_object_mut()
        .expect("the schema names the object's properties");
    for (field, kind) in [
        ("apiVersion", "string"),
        ("kind", "string"),
        ("metadata", "object"),
    ] {
        root.entry(field).or_insert_with(|| json!({ "type": kind }));
    }
    strict(&mut schema);
    (api_version, schema)
}

/// The API server rejects fields a structural schema does not name (`kubectl apply`
/// validates strictly), which JSON Schema allows unless told: every object schema that
/// names its properties, and neither allows others nor preserves unknown fields, is
/// closed here.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let closes = object.contains_key("properties")
                && !object.contains_key("additionalProperties")
                && object.get("x-kubernetes-preserve-unknown-fields") != Some(&json!(true));
            if closes {
                object.insert("additionalProperties".into(), json!(false));
            }
            for value in object.values_mut() {
                strict(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// What the schema finds wrong with `manifest`, one line per error.
fn schema_errors(manifest: &Value) -> Vec<String> {
    let kind = manifest["kind"]
        .as_str()
        .expect("a manifest names its kind");
    let (api_version, schema) = schema_for(kind);
    let mut errors = Vec::new();
    if manifest["apiVersion"] != api_version {
        errors.push(format!(
            "apiVersion {} is not {api_version}",
            manifest["apiVersion"]
        ));
    }
    // OpenAPI v3.0's schema objects are draft 4's (a boolean exclusiveMinimum).
    let validator = jsonschema::draft4::new(&schema).expect("the vendored schema compiles");
    errors.extend(
        validator
            .iter_errors(manifest)
            .map(|error| format!("{}: {error}", error.instance_path())),
    );
    errors
}

#[test]
fn every_manifest_is_valid_against_agones_crd_schemas() {
    for (file, manifest) in manifests() {
        let errors = schema_errors(&manifest);
        assert!(
            errors.is_empty(),
            "{file} ({}): {errors:#?}",
            manifest["kind"]
        );
    }
}

#[test]
fn the_schema_check_catches_a_misspelt_field_and_a_wrong_type() {
    let mut fleet = of_kind("Fleet");
    fleet["spec"]["template"]["spec"]["healthh"] = json!({ "periodSeconds": 10 });
    assert!(
        !schema_errors(&fleet).is_empty(),
        "an unknown field is refused"
    );
    let mut autoscaler = of_kind("FleetAutoscaler");
    autoscaler["spec"]["policy"]["counter"]["maxCapacity"] = json!("lots");
    assert!(
        !schema_errors(&autoscaler).is_empty(),
        "a string where an integer goes is refused"
    );
    let mut container = of_kind("Fleet");
    container["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["envv"] = json!([]);
    assert!(
        !schema_errors(&container).is_empty(),
        "the pod template is checked too"
    );
}

/// Every environment variable the server reads, and the flag it stands for.
fn server_env() -> Vec<(String, String)> {
    Config::command()
        .get_arguments()
        .filter_map(|arg| {
            Some((
                arg.get_env()?.to_string_lossy().into_owned(),
                format!("--{}", arg.get_long()?),
            ))
        })
        .collect()
}

/// The flags `env` stands for, each with its value.
fn as_flags(env: &[(String, String)]) -> Vec<String> {
    let known = server_env();
    let mut flags = Vec::new();
    for (name, value) in env {
        let (_, flag) = known
            .iter()
            .find(|(known, _)| known == name)
            .unwrap_or_else(|| panic!("{name} is none of the server's variables: {known:?}"));
        flags.push(flag.clone());
        flags.push(value.clone());
    }
    flags
}

/// The server takes these flags (as its command line would).
fn parses(flags: &[String]) -> Config {
    let mut argv = vec!["server".to_owned()];
    argv.extend_from_slice(flags);
    let config = Config::try_parse_from(&argv).unwrap_or_else(|err| panic!("{argv:?}: {err}"));
    config
        .validate()
        .unwrap_or_else(|err| panic!("{argv:?}: {err:#}"));
    config
}

#[test]
fn the_fleet_runs_this_server_on_its_port_with_its_variables_and_health_timer() {
    let fleet = of_kind("Fleet");
    let spec = &fleet["spec"]["template"]["spec"];
    let containers = spec["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container: the game server");
    let container = &containers[0];

    // Plain values as the process sees them; secrets only by name.
    let mut env = Vec::new();
    let mut names = BTreeSet::new();
    for var in container["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("a variable's name").to_owned();
        names.insert(name.clone());
        match var["value"].as_str() {
            Some(value) => env.push((name, value.to_owned())),
            None => assert!(
                var["valueFrom"].is_object(),
                "{name} has a value or a source"
            ),
        }
    }
    let known: BTreeSet<String> = server_env().into_iter().map(|(name, _)| name).collect();
    let unknown: Vec<_> = names.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "variables the server does not read: {unknown:?}"
    );
    assert!(
        names.contains("SKIRMISH_REDIS_URL"),
        "the processes form a cluster through Redis"
    );
    assert!(
        !names.contains("AGONES_SDK_HTTP_PORT"),
        "Agones sets the SDK's port itself"
    );

    let mut flags: Vec<String> = container["args"]
        .as_array()
        .map(|args| {
            args.iter()
                .map(|arg| arg.as_str().expect("args are strings").to_owned())
                .collect()
        })
        .unwrap_or_default();
    flags.extend(as_flags(&env));
    // As Agones runs it: the SDK's port set, Redis given (a placeholder for the secret).
    flags.extend(
        [
            "--agones-sdk-http-port",
            "9358",
            "--redis",
            "redis://redis:6379",
        ]
        .map(String::from),
    );
    let config = parses(&flags);

    let game_port = spec["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|port| port["name"] == GAME_PORT_NAME)
        .unwrap_or_else(|| panic!("a port named {GAME_PORT_NAME:?}, which the server reads back"));
    assert_eq!(
        game_port["containerPort"].as_u64(),
        Some(u64::from(config.addr.port())),
        "the game port is the one the server listens on"
    );
    assert_eq!(game_port["protocol"], "TCP", "WebSockets are TCP");
    assert!(
        config.addr.ip().is_unspecified(),
        "the server listens beyond the pod's loopback"
    );
    let probe = &container["livenessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/healthz");
    assert_eq!(probe["port"].as_u64(), Some(u64::from(config.addr.port())));
    for port in container["ports"].as_array().into_iter().flatten() {
        assert_eq!(
            port["containerPort"].as_u64(),
            Some(u64::from(config.admin_addr.port())),
            "the container's other port is the admin listener's"
        );
    }

    let health = &spec["health"];
    assert_ne!(health["disabled"], true, "health checking is on");
    let period = health["periodSeconds"].as_f64().expect("periodSeconds");
    let threshold = health["failureThreshold"]
        .as_f64()
        .expect("failureThreshold");
    let pings = config.agones_health_secs;
    assert!(
        period >= 2.0 * pings,
        "two pings fit in each health period: every {pings} s against {period} s"
    );
    assert!(
        threshold >= 2.0,
        "one late ping does not make the GameServer Unhealthy"
    );

    let counter = &spec["counters"][PLAYERS_COUNTER];
    let capacity = counter["capacity"]
        .as_u64()
        .expect("the players Counter's capacity");
    assert!(
        capacity <= u64::from(config.max_rooms) * u64::from(config.room_capacity),
        "the Counter's capacity ({capacity}) is seats the process can give"
    );
    let grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace >= 15,
        "a SIGTERM's shutdown (6 s at most) and Shutdown's tries fit in the grace period"
    );
}

#[test]
fn the_autoscaler_scales_the_fleet_on_the_counter_the_server_keeps() {
    let fleet = of_kind("Fleet");
    let autoscaler = of_kind("FleetAutoscaler");
    assert_eq!(autoscaler["spec"]["fleetName"], fleet["metadata"]["name"]);
    let policy = &autoscaler["spec"]["policy"];
    assert_eq!(policy["type"], "Counter");
    assert_eq!(policy["counter"]["key"], PLAYERS_COUNTER);
    let capacity = fleet["spec"]["template"]["spec"]["counters"][PLAYERS_COUNTER]["capacity"]
        .as_u64()
        .expect("the Fleet declares the Counter");
    let buffer = policy["counter"]["bufferSize"]
        .as_u64()
        .expect("a buffer in seats");
    let (min, max) = (
        policy["counter"]["minCapacity"]
            .as_u64()
            .expect("minCapacity"),
        policy["counter"]["maxCapacity"]
            .as_u64()
            .expect("maxCapacity"),
    );
    assert!(buffer > 0 && buffer <= min && min <= max);
    assert!(
        min % capacity == 0 && max % capacity == 0,
        "the bounds are whole processes ({capacity} seats each)"
    );
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<String> {
    let text =
        std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("read the Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() && current.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

#[test]
fn the_dockerfile_copies_what_exists_and_sets_what_the_server_takes() {
    let instructions = dockerfile();
    let mut env = Vec::new();
    let mut copied_binary = None;
    let mut copied_web = None;
    let root = repo();
    for instruction in &instructions {
        let words: Vec<&str> = instruction.split_whitespace().collect();
        match words.first().copied() {
            Some("FROM") if words.get(3) == Some(&"build") => {
                let toolchain = std::fs::read_to_string(root.join("rust-toolchain.toml"))
                    .expect("read rust-toolchain.toml");
                let image = words[1];
                let version = image
                    .strip_prefix("rust:")
                    .and_then(|tag| tag.split('-').next())
                    .expect("the build stage is a rust image");
                assert!(
                    toolchain.contains(&format!("\"{version}")),
                    "the build image's Rust ({version}) is the pinned toolchain's"
                );
            }
            Some("COPY") if words[1].starts_with("--from=") => {
                let (source, target) = (words[2], words[3]);
                let inside = source.strip_prefix("/src/").expect("built under /src");
                match inside {
                    // What `cargo build --release -p server` makes: the binary of that name.
                    "target/release/server" => copied_binary = Some(target.to_owned()),
                    // Where `cargo xtask build` writes the bundle (xtask/src/build.rs).
                    "target/web" => copied_web = Some(target.to_owned()),
                    other => panic!("the image copies {other}, which the build does not make"),
                }
            }
            Some("COPY") => {
                let (sources, _target) = words[1..].split_at(words.len() - 2);
                for source in sources {
                    assert!(
                        root.join(source).exists(),
                        "the Dockerfile copies {source}, which is missing"
                    );
                }
            }
            Some("ENV") => {
                for pair in &words[1..] {
                    let (name, value) = pair.split_once('=').expect("ENV NAME=value");
                    env.push((name.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_server"));
    assert_eq!(
        binary.file_name().and_then(|name| name.to_str()),
        Some("server"),
        "the server's binary is named as the Dockerfile copies it"
    );
    let copied_binary = copied_binary.expect("the image holds the server");
    let copied_web = copied_web.expect("the image holds the bundle");
    let entrypoint = instructions
        .iter()
        .find_map(|instruction| instruction.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form");
    assert_eq!(
        entrypoint[0], copied_binary,
        "the entrypoint is the copied server"
    );
    let mut flags = entrypoint[1..].to_vec();
    flags.extend(as_flags(&env));
    let config = parses(&flags);
    assert_eq!(
        config.web_root.as_deref(),
        Some(Path::new(&copied_web)),
        "the server serves the copied bundle"
    );
    let exposed: Vec<u16> = instructions
        .iter()
        .filter_map(|instruction| instruction.strip_prefix("EXPOSE "))
        .flat_map(|ports| {
            ports
                .split_whitespace()
                .map(|port| port.parse().expect("a port"))
        })
        .collect();
    assert!(exposed.contains(&config.addr.port()) && exposed.contains(&config.admin_addr.port()));
    // The Fleet's container sets the same place for the bundle.
    let fleet = of_kind("Fleet");
    let fleet_web = fleet["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|var| var["name"] == "SKIRMISH_WEB_ROOT")
        .and_then(|var| var["value"].as_str())
        .map(str::to_owned);
    assert_eq!(fleet_web.as_deref(), Some(copied_web.as_str()));
}
