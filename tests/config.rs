//! How the real binary reads `serve`'s settings: every option also from
//! `TICKFEED_<OPTION>` and from a `--config` TOML file, with the command
//! line over the environment over the file over the defaults;
//! `--print-config` names each value's source and hides tokens; invalid
//! input of any source exits 2 naming the key and its source. Also the
//! generated completions and man page.

mod common;
mod process;

use common::Scratch;
use process::{ChildServer, run};
use std::collections::BTreeMap;

/// The environment variable of `--long`, spelled out here independently of
/// the code that assigns them.
fn expected_env(long: &str) -> String {
    match long {
        // Older names, each holding a comma-separated list.
        "token" => "TICKFEED_TOKENS".into(),
        "allowed-origin" => "TICKFEED_ALLOWED_ORIGINS".into(),
        _ => format!("TICKFEED_{}", long.to_uppercase().replace('-', "_")),
    }
}

#[test]
fn every_serve_option_has_its_environment_variable() {
    let command = tickfeed::cli::layers::command();
    let serve = command.find_subcommand("serve").expect("serve");
    let mut checked = 0;
    for (name, options) in [("tickfeed", &command), ("tickfeed serve", serve)] {
        for arg in options.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(
                env.as_deref(),
                Some(expected_env(long).as_str()),
                "{name} --{long} needs its environment variable"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 60,
        "walked both forms of serve's options: {checked}"
    );
}

/// `--print-config`'s lines as key -> (value, origin).
fn printed(args: &[&str], envs: &[(&str, &str)]) -> BTreeMap<String, (String, String)> {
    let output = run(&[&["serve", "--print-config"], args].concat(), envs);
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        output.status.success(),
        "{args:?} {envs:?}: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (setting, origin) = line.split_once("  # ").expect("a source on every line");
            let (key, value) = setting.split_once(" = ").expect("key = value");
            (key.to_string(), (value.to_string(), origin.to_string()))
        })
        .collect()
}

#[test]
fn the_command_line_wins_over_the_environment_over_the_file_over_defaults() {
    let dir = Scratch::new("config-precedence");
    let file = dir.write(
        "tickfeed.toml",
        "rate = \"20k\"\nmax-lag = \"1s\"\nheartbeat = 5\nsymbols = 40\nloop = false\n",
    );
    let file = file.to_str().unwrap();
    let env = [("TICKFEED_MAX_LAG", "2s"), ("TICKFEED_SYMBOLS", "30")];
    let settings = printed(&["--config", file, "--symbols", "20"], &env);
    let of = |key: &str| settings.get(key).cloned().unwrap_or_default();
    assert_eq!(of("symbols"), ("20".into(), "command line".into()));
    assert_eq!(
        of("max-lag"),
        (
            "\"2s\"".into(),
            "environment variable TICKFEED_MAX_LAG".into()
        )
    );
    assert_eq!(of("rate"), ("\"20k\"".into(), format!("{file}:rate")));
    assert_eq!(of("heartbeat"), ("5".into(), format!("{file}:heartbeat")));
    assert!(
        !settings.contains_key("listen"),
        "defaults stay commented out: {settings:?}"
    );
    let defaults = run(&["serve", "--print-config"], &[]);
    let defaults = String::from_utf8_lossy(&defaults.stdout);
    assert!(
        defaults.contains("# listen = \"127.0.0.1:8080\"  # default"),
        "{defaults}"
    );
    // The output is itself a config file that gives the same settings.
    let again = dir.write(
        "again.toml",
        run(&["serve", "--print-config", "--config", file], &env).stdout,
    );
    let reread = printed(&["--config", again.to_str().unwrap()], &[]);
    assert_eq!(reread["symbols"].0, "30");
    assert_eq!(reread["max-lag"].0, "\"2s\"");
    assert_eq!(reread["rate"].0, "\"20k\"");
}

#[test]
fn print_config_never_shows_a_token() {
    let dir = Scratch::new("config-tokens");
    let file = dir.write("tokens.toml", "token = [\"from-file-secret\"]\n");
    for (args, envs) in [
        (vec!["--token", "flag-secret"], vec![]),
        (vec![], vec![("TICKFEED_TOKENS", "env-secret,other-secret")]),
        (vec!["--config", file.to_str().unwrap()], vec![]),
    ] {
        let output = run(&[&["serve", "--print-config"], &args[..]].concat(), &envs);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        assert!(
            !text.contains("secret"),
            "{args:?} {envs:?} leaked:\n{text}"
        );
        assert!(text.contains("token = [\"(redacted)\""), "{text}");
    }
}

/// Runs `tickfeed ARGS` expecting exit 2 and a message naming `expected`.
fn assert_invalid(args: &[&str], envs: &[(&str, &str)], expected: &[&str]) {
    let output = run(args, envs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?} {envs:?}: {stderr}");
    for part in expected {
        assert!(
            stderr.contains(part),
            "{args:?} {envs:?} should say {part:?}: {stderr}"
        );
    }
}

#[test]
fn invalid_settings_exit_2_naming_the_key_and_where_it_came_from() {
    let dir = Scratch::new("config-invalid");
    // Parse errors (clap) and validation errors alike, from each source.
    assert_invalid(&["serve", "--rate", "fast"], &[], &["--rate", "fast"]);
    assert_invalid(&["--heartbeat", "0"], &[], &["--heartbeat: "]);
    assert_invalid(
        &["serve", "--max-pending-handshakes", "0"],
        &[],
        &["--max-pending-handshakes"],
    );
    for (name, value, flag) in [
        ("RATE", "fast", "--rate"),
        ("HEARTBEAT", "0", "--heartbeat"),
    ] {
        let env = format!("TICKFEED_{name}");
        let from = format!("environment variable {env}");
        assert_invalid(&["serve"], &[(&env, value)], &[flag, &from]);
    }
    // An option the environment set that needs one nobody set.
    assert_invalid(
        &["serve"],
        &[("TICKFEED_LOOP", "true")],
        &["--replay", "--loop from environment variable TICKFEED_LOOP"],
    );
    // Each file's error: the file, its key, and what is wrong.
    let files = [
        ("rate.toml", "rate = \"fast\"\n", ":rate", "--rate"),
        (
            "heartbeat.toml",
            "heartbeat = \"0s\"\n",
            ":heartbeat",
            "--heartbeat",
        ),
        ("unknown.toml", "rates = 5\n", ":rates: ", "not a setting"),
        (
            "broken.toml",
            "rate = 5\nrate =\n",
            ":2: ",
            "not valid TOML",
        ),
        (
            "list.toml",
            "listen = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n",
            ":listen: ",
            "--listen takes one value",
        ),
    ];
    for (name, text, place, what) in files {
        let file = dir.write(name, text).to_str().unwrap().to_string();
        assert_invalid(
            &["serve", "--config", &file],
            &[],
            &[&format!("{file}{place}"), what],
        );
    }
    assert_invalid(
        &["serve", "--config", "no/such.toml"],
        &[],
        &["config file no/such.toml: cannot read"],
    );
    assert_invalid(
        &["serve"],
        &[("TICKFEED_CONFIG", "no/such.toml")],
        &["no/such.toml"],
    );
    assert_invalid(&["bench", "--clients", "0"], &[], &["--clients"]);
    // An environment value under a command-line one is never read.
    let output = run(
        &["serve", "--print-config", "--rate", "7k"],
        &[("TICKFEED_RATE", "fast")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_server_takes_its_settings_from_each_layer() {
    let dir = Scratch::new("config-server");
    let file = dir.write("tickfeed.toml", "symbols = 7\n");
    let file = file.to_str().unwrap();
    let symbols = ("TICKFEED_SYMBOLS", "5");
    let from_env = ("TICKFEED_CONFIG", file);
    let cases = [
        (vec!["--config", file, "--symbols", "3"], vec![symbols], 3),
        (vec!["--config", file], vec![symbols], 5),
        (vec![], vec![from_env], 7),
    ];
    for (args, envs, expected) in cases {
        // An environment token guards the API; `stats` presents it.
        let mut envs = envs;
        envs.push(("TICKFEED_TOKENS", "env-token"));
        let mut server = ChildServer::start("config-server", &args, &envs).await;
        let unauthorised = reqwest::get(format!("http://{}/api/stats", server.addr))
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401, "{args:?}");
        let stats = server
            .wait_for_stats("the symbol table", |stats| stats["symbols"] == expected)
            .await;
        assert_eq!(stats["symbols"], expected, "{args:?} {envs:?}");
        assert!(server.terminate().await.success());
    }
}

#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run(&["completions", shell], &[]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("tickfeed"), "{shell}: {script}");
        assert!(
            script.contains("max-lag"),
            "{shell} completes serve's options"
        );
    }
    assert_invalid(&["completions", "cmd.exe"], &[], &["cmd.exe"]);
    let output = run(&["man"], &[]);
    assert!(output.status.success());
    let roff = String::from_utf8_lossy(&output.stdout);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH tickfeed"),
        "{roff}"
    );
    for option in [
        r"\-\-listen",
        r"\-\-max\-lag",
        r"\-\-config",
        "TICKFEED_LISTEN",
    ] {
        assert!(roff.contains(option), "the man page lists {option}");
    }
}
