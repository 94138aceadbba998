//! The configuration file: parsing, flags over the file, `roundhouse check` through the
//! real binary, and every file in examples/.

mod config_support;

use std::path::Path;

use clap::CommandFactory;
use roundhouse::cli::Cli;
use roundhouse::config::{self, Explicit};

use config_support::{run, write_config};

/// `roundhouse ARGS` parsed as `main` parses it, then loaded.
fn load(args: &[&str]) -> Result<config::Effective, config::Problems> {
    let matches = Cli::command()
        .try_get_matches_from(std::iter::once("roundhouse").chain(args.iter().copied()))
        .expect("valid flags");
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    config::load(&cli.serve, &Explicit::of(Some(&matches)))
}

#[test]
fn flags_typed_on_the_command_line_override_the_file_and_defaults_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "site.toml",
        "workers = 6\nqueue = 100\n[timeouts]\nresponse = \"3s\"\n[simulated]\nlatency = \"5..10\"\n",
    );
    let path = path.to_str().unwrap();
    let effective = load(&["--config", path, "--queue", "9"]).unwrap();
    assert_eq!(
        effective.args.workers, 6,
        "the default of --workers (4) does not override the file"
    );
    assert_eq!(effective.args.queue, 9, "a typed flag overrides the file");
    assert_eq!(effective.args.timeout, std::time::Duration::from_secs(3));
    assert_eq!(effective.args.sim_latency, 5..=10);
    // Typing the default value explicitly still counts as typed.
    let effective = load(&["--config", path, "--workers", "4"]).unwrap();
    assert_eq!(effective.args.workers, 4);
    // Flags given after `serve` are found too.
    let matches = Cli::command()
        .try_get_matches_from(["roundhouse", "serve", "--config", path, "--workers", "2"])
        .unwrap();
    let explicit = Explicit::of(matches.subcommand_matches("serve"));
    assert!(explicit.contains("workers") && !explicit.contains("queue"));
}

#[test]
fn an_unknown_key_is_an_error_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "typo.toml",
        "workers = 2\n\n[health]\nrise = 2\nintervall = \"1s\"\n",
    );
    let problems = load(&["--config", path.to_str().unwrap()]).unwrap_err();
    let lines = problems.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{}:5: ", path.display())),
        "names the file and line 5: {}",
        lines[0]
    );
    assert!(lines[0].contains("unknown field `intervall`"), "{}", lines[0]);
}

#[test]
fn check_lists_every_problem_one_per_line_with_key_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "bad.toml",
        r#"workers = 0
strategy = "fastest"
backends = ["ftp://127.0.0.1:9001"]

[[pools]]
name = "api"
backends = ["http://127.0.0.1:9101"]

[[pools]]
name = "api"
backends = ["http://127.0.0.1:9102"]

[[routes]]
prefix = "/api"
pool = "apii"

[[routes]]
prefix = "static"
pool = "api"
host = "bad\nhost"
"#,
    );
    let file = path.to_str().unwrap();
    let (code, stdout, stderr) = run(&["check", "--config", file]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stdout.is_empty(),
        "nothing printed as the configuration: {stdout}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        format!("{file}:1: workers: must be at least 1 (got 0)"),
        format!("{file}:2: strategy: unknown strategy \"fastest\""),
        format!("{file}:3: backends[0]: backend \"ftp://127.0.0.1:9001\": only http:// and https:// URLs"),
        format!("{file}:10: pools[1].name: pool \"api\" is already defined"),
        format!("{file}:15: routes[0].pool: no pool is named \"apii\""),
        format!("{file}:18: routes[1].prefix: \"static\" must start with /"),
        format!("{file}:20: routes[1].host: "),
    ];
    assert_eq!(lines.len(), expected.len(), "one line per problem:\n{stderr}");
    for (line, start) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(start.as_str()),
            "expected {start:?}, got {line:?}"
        );
    }
}

#[test]
fn check_prints_the_effective_configuration_which_is_itself_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "good.toml",
        r#"workers = 6
backends = [{ url = "http://127.0.0.1:9001", weight = 3 }]

[[pools]]
name = "api"
backends = ["http://127.0.0.1:9101"]

[[routes]]
prefix = "/api/"
pool = "api"
strip_prefix = true
host = "api.internal"
"#,
    );
    let (code, stdout, stderr) = run(&["check", "--config", path.to_str().unwrap(), "--queue", "7"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("workers = 6\n"), "{stdout}");
    assert!(stdout.contains("queue = 7\n"), "the flag is applied: {stdout}");
    assert!(stdout.contains("\"http://127.0.0.1:9001,weight=3\""), "{stdout}");
    assert!(
        stdout.contains("[timeouts]\nresponse = \"10s\""),
        "defaults are shown: {stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("configuration ok (1 named pools, 1 routes)"),
        "{stdout}"
    );
    // The output is a configuration file that checks the same.
    let again = write_config(dir.path(), "again.toml", &stdout);
    let (code, second, stderr) = run(&["check", "--config", again.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let body = |text: &str| {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&second), body(&stdout));
}

#[test]
fn check_refuses_a_missing_file_and_serve_refuses_an_invalid_one_before_listening() {
    let (code, _, stderr) = run(&["check", "--config", "/nonexistent/roundhouse.toml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read the configuration"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "bad.toml", "listen = \"127.0.0.1:0\"\nqueue = -1\n");
    let (code, stdout, stderr) = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(
        stderr.contains(":2: queue: must be at least 1 (got -1)"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid configuration (1 problem)"), "{stderr}");
}

#[test]
fn every_example_configuration_is_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the five set-ups of issue 8: {files:?}");
    for file in &files {
        let path = file.to_str().unwrap();
        if let Err(problems) = load(&["--config", path]) {
            panic!("{path}:\n{problems}");
        }
        let (code, stdout, stderr) = run(&["check", "--config", path]);
        assert_eq!(code, Some(0), "{path}: {stderr}");
        assert!(stdout.contains("configuration ok"), "{stdout}");
    }
}

#[test]
fn trusted_proxies_and_the_admin_list_come_from_the_file_and_bad_networks_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(
        dir.path(),
        "network.toml",
        "trust_proxy = [\"10.0.0.0/8\"]\n\n[admin]\nallow = [\"192.168.1.7\"]\nlisten = \"127.0.0.1:9900\"\n",
    );
    let effective = load(&["--config", good.to_str().unwrap()]).unwrap();
    let rules = effective.args.client_rules();
    assert!(rules.trust_proxy.contains("10.1.2.3".parse().unwrap()));
    assert!(rules.is_admin("192.168.1.7".parse().unwrap()));
    assert!(rules.is_admin("127.0.0.1".parse().unwrap()), "loopback always");
    assert!(!rules.is_admin("192.168.1.8".parse().unwrap()));
    assert_eq!(
        effective.args.admin_listen,
        Some("127.0.0.1:9900".parse().unwrap())
    );
    let bad = write_config(
        dir.path(),
        "bad.toml",
        "[admin]\nallow = [\"10.0.0.0/8\", \"nonsense\"]\n",
    );
    let lines = load(&["--config", bad.to_str().unwrap()]).unwrap_err().lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(":2: admin.allow[1]:"), "{}", lines[0]);
}
