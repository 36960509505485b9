//! The layered settings: command line > `UDPIX_*` environment > config file > built-in
//! defaults, for every key, resolved with an injected environment (the process's own is never
//! changed); and, through the real binary, that `udpix config`, `udpix recv` and `udpix send`
//! read the file `UDPIX_CONFIG` names.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use udpix::config::{
    CliConfig, Colors, ConfigError, ImageProtocol, Resolved, Setting, Source, resolve_with,
    send_targets,
};

const BIN: &str = env!("CARGO_BIN_EXE_udpix");

/// An environment of exactly these variables.
fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn resolve(cli: &CliConfig, env: &HashMap<String, String>) -> Result<Resolved, ConfigError> {
    resolve_with(cli, &|k| env.get(k).cloned())
}

/// A config file setting every key, in a fresh temp folder.
fn full_file(dir: &Path) -> PathBuf {
    let path = dir.join("udpix.toml");
    std::fs::write(
        &path,
        "listen = \"10.0.0.1:1000\"\nconnect = \"file.example:1000\"\nout = \"/from/file\"\n\
         image_protocol = \"sixel\"\ncolors = \"never\"\nmouse = false\n",
    )
    .expect("write config");
    path
}

/// Every `UDPIX_*` variable set to a value of its own.
fn full_env(config: &Path) -> HashMap<String, String> {
    env_of(&[
        ("UDPIX_CONFIG", config.to_str().expect("utf8")),
        ("UDPIX_LISTEN", "10.0.0.2:2000"),
        ("UDPIX_CONNECT", "env.example:2000"),
        ("UDPIX_OUT", "/from/env"),
        ("UDPIX_IMAGE_PROTOCOL", "kitty"),
        ("UDPIX_COLORS", "auto"),
        ("UDPIX_MOUSE", "true"),
    ])
}

fn full_cli() -> CliConfig {
    CliConfig {
        config: None,
        listen: Some("10.0.0.3:3000".into()),
        connect: Some("cli.example:3000".into()),
        out: Some("/from/cli".into()),
        image_protocol: Some(ImageProtocol::Iterm),
        colors: Some(Colors::Never),
        mouse: Some(false),
    }
}

fn default<T>(value: T) -> Setting<T> {
    Setting {
        value,
        source: Source::Default,
    }
}

#[test]
fn nothing_set_gives_the_built_in_defaults() {
    let home = tempfile::tempdir().expect("tempdir");
    let env = env_of(&[("HOME", home.path().to_str().expect("utf8"))]);
    let r = resolve(&CliConfig::default(), &env).expect("resolves");
    assert_eq!(r.listen, default("0.0.0.0:7878".to_owned()));
    assert_eq!(r.connect, None);
    assert_eq!(r.out, default(PathBuf::from(".")));
    assert_eq!(r.image_protocol, default(ImageProtocol::Auto));
    assert_eq!(r.colors, default(Colors::Auto));
    assert_eq!(r.mouse, default(true));
    // The default location was looked at, and may be missing.
    let file = r.file.expect("a location");
    assert_eq!(file.path, home.path().join(".config/udpix/config.toml"));
    assert!(!file.found);
}

#[test]
fn the_file_beats_the_defaults_for_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = full_file(dir.path());
    let env = env_of(&[("UDPIX_CONFIG", path.to_str().expect("utf8"))]);
    let r = resolve(&CliConfig::default(), &env).expect("resolves");
    let from_file = Source::File(path.clone());
    assert_eq!(r.listen.value, "10.0.0.1:1000");
    assert_eq!(
        r.connect.as_ref().map(|c| c.value.as_str()),
        Some("file.example:1000")
    );
    assert_eq!(r.out.value, PathBuf::from("/from/file"));
    assert_eq!(r.image_protocol.value, ImageProtocol::Sixel);
    assert_eq!(r.colors.value, Colors::Never);
    assert!(!r.mouse.value);
    for source in [
        &r.listen.source,
        &r.connect.as_ref().expect("connect").source,
        &r.out.source,
        &r.image_protocol.source,
        &r.colors.source,
        &r.mouse.source,
    ] {
        assert_eq!(source, &from_file);
    }
    let file = r.file.expect("file");
    assert!(file.found);
    assert_eq!(file.source, Source::Env("UDPIX_CONFIG"));
}

#[test]
fn the_environment_beats_the_file_for_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = full_file(dir.path());
    let r = resolve(&CliConfig::default(), &full_env(&path)).expect("resolves");
    assert_eq!(
        r.listen,
        Setting {
            value: "10.0.0.2:2000".to_owned(),
            source: Source::Env("UDPIX_LISTEN")
        }
    );
    assert_eq!(
        r.connect,
        Some(Setting {
            value: "env.example:2000".to_owned(),
            source: Source::Env("UDPIX_CONNECT")
        })
    );
    assert_eq!(
        r.out,
        Setting {
            value: PathBuf::from("/from/env"),
            source: Source::Env("UDPIX_OUT")
        }
    );
    assert_eq!(
        r.image_protocol,
        Setting {
            value: ImageProtocol::Kitty,
            source: Source::Env("UDPIX_IMAGE_PROTOCOL")
        }
    );
    assert_eq!(
        r.colors,
        Setting {
            value: Colors::Auto,
            source: Source::Env("UDPIX_COLORS")
        }
    );
    assert_eq!(
        r.mouse,
        Setting {
            value: true,
            source: Source::Env("UDPIX_MOUSE")
        }
    );
}

#[test]
fn the_command_line_beats_the_environment_and_the_file_for_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = full_file(dir.path());
    let r = resolve(&full_cli(), &full_env(&path)).expect("resolves");
    assert_eq!(
        r.listen,
        Setting {
            value: "10.0.0.3:3000".to_owned(),
            source: Source::Cli("--listen")
        }
    );
    assert_eq!(
        r.connect.map(|c| (c.value, c.source)),
        Some(("cli.example:3000".to_owned(), Source::Cli("--connect")))
    );
    assert_eq!(
        (r.out.value, r.out.source),
        (PathBuf::from("/from/cli"), Source::Cli("--out"))
    );
    assert_eq!(
        (r.image_protocol.value, r.image_protocol.source),
        (ImageProtocol::Iterm, Source::Cli("--image-protocol"))
    );
    assert_eq!(r.colors.value, Colors::Never);
    assert!(matches!(r.colors.source, Source::Cli(_)));
    assert_eq!(
        (r.mouse.value, r.mouse.source),
        (false, Source::Cli("--no-mouse"))
    );
}

#[test]
fn each_key_takes_its_own_highest_layer() {
    // Layers mixed: listen only in the file, out only in the environment, image protocol
    // only on the command line; the rest default.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "listen = \"10.0.0.1:1000\"\n").expect("write");
    let env = env_of(&[
        ("UDPIX_CONFIG", path.to_str().expect("utf8")),
        ("UDPIX_OUT", "/from/env"),
        // Set but empty is unset: the file's value stands.
        ("UDPIX_LISTEN", ""),
    ]);
    let cli = CliConfig {
        image_protocol: Some(ImageProtocol::Blocks),
        ..CliConfig::default()
    };
    let r = resolve(&cli, &env).expect("resolves");
    assert_eq!(r.listen.value, "10.0.0.1:1000");
    assert_eq!(r.listen.source, Source::File(path));
    assert_eq!(r.out.source, Source::Env("UDPIX_OUT"));
    assert_eq!(r.image_protocol.source, Source::Cli("--image-protocol"));
    assert_eq!(r.mouse.source, Source::Default);
    assert_eq!(r.connect, None);
}

#[test]
fn which_file_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("udpix")).expect("mkdir");
    std::fs::write(xdg.join("udpix/config.toml"), "out = \"/xdg\"\n").expect("write");
    let named = dir.path().join("named.toml");
    std::fs::write(&named, "out = \"/named\"\n").expect("write");
    let flagged = dir.path().join("flagged.toml");
    std::fs::write(&flagged, "out = \"/flagged\"\n").expect("write");
    let xdg_env = ("XDG_CONFIG_HOME", xdg.to_str().expect("utf8"));
    let out = |cli: &CliConfig, env: &[(&str, &str)]| {
        resolve(cli, &env_of(env)).expect("resolves").out.value
    };
    // The default location under XDG_CONFIG_HOME.
    assert_eq!(
        out(&CliConfig::default(), &[xdg_env]),
        PathBuf::from("/xdg")
    );
    // $UDPIX_CONFIG replaces it; --config beats $UDPIX_CONFIG.
    let named_env = ("UDPIX_CONFIG", named.to_str().expect("utf8"));
    assert_eq!(
        out(&CliConfig::default(), &[xdg_env, named_env]),
        PathBuf::from("/named")
    );
    let cli = CliConfig {
        config: Some(flagged.clone()),
        ..CliConfig::default()
    };
    assert_eq!(out(&cli, &[xdg_env, named_env]), PathBuf::from("/flagged"));
    let r = resolve(&cli, &env_of(&[named_env])).expect("resolves");
    assert_eq!(r.file.expect("file").source, Source::Cli("--config"));
}

#[test]
fn a_named_file_that_is_missing_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let shown = missing.display().to_string();
    let cli = CliConfig {
        config: Some(missing.clone()),
        ..CliConfig::default()
    };
    let e = resolve(&cli, &env_of(&[])).expect_err("--config missing");
    assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
    assert!(e.to_string().contains(&shown), "{e}");
    let e = resolve(&CliConfig::default(), &env_of(&[("UDPIX_CONFIG", &shown)]))
        .expect_err("$UDPIX_CONFIG missing");
    assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
    // The default file may be missing.
    let home = ("HOME", dir.path().to_str().expect("utf8"));
    assert!(resolve(&CliConfig::default(), &env_of(&[home])).is_ok());
}

#[test]
fn bad_values_name_where_they_came_from() {
    let e = resolve(
        &CliConfig::default(),
        &env_of(&[("UDPIX_IMAGE_PROTOCOL", "png")]),
    )
    .expect_err("bad protocol");
    let shown = e.to_string();
    assert!(
        shown.contains("$UDPIX_IMAGE_PROTOCOL") && shown.contains("sixel"),
        "{shown}"
    );
    let e =
        resolve(&CliConfig::default(), &env_of(&[("UDPIX_MOUSE", "maybe")])).expect_err("bad bool");
    assert!(e.to_string().contains("UDPIX_MOUSE"), "{e}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "mouse = \"yes\"\n").expect("write");
    let e = resolve(
        &CliConfig::default(),
        &env_of(&[("UDPIX_CONFIG", path.to_str().expect("utf8"))]),
    )
    .expect_err("bad file");
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("bad.toml"), "{e}");
}

#[test]
fn send_takes_its_receiver_from_the_argument_or_the_settings() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let files = |a: &[&str]| a.iter().map(PathBuf::from).collect::<Vec<_>>();
    let is_file = |p: &Path| p.extension().is_some_and(|e| e == "png");
    let configured = Setting {
        value: "camera.local:7878".to_owned(),
        source: Source::Env("UDPIX_CONNECT"),
    };
    // No setting: the first argument is the receiver, as always.
    let (to, f) = send_targets(&args(&["host", "a.png"]), None, is_file).expect("ok");
    assert_eq!((to.value.as_str(), f), ("host", files(&["a.png"])));
    assert_eq!(to.source, Source::Cli("HOST"));
    assert!(send_targets(&args(&["a.png"]), None, is_file).is_err());
    // A setting, and the first argument a file: every argument is a file.
    let (to, f) = send_targets(&args(&["a.png", "b.png"]), Some(&configured), is_file).expect("ok");
    assert_eq!(to, configured);
    assert_eq!(f, files(&["a.png", "b.png"]));
    let (to, f) = send_targets(&args(&["gone.jpg"]), Some(&configured), is_file).expect("ok");
    assert_eq!((to, f), (configured.clone(), files(&["gone.jpg"])));
    // A setting, and the first argument no file: the command line's receiver wins.
    let (to, f) =
        send_targets(&args(&["other:9", "a.png"]), Some(&configured), is_file).expect("ok");
    assert_eq!(to.value, "other:9");
    assert_eq!(f, files(&["a.png"]));
}

/// `udpix` with a clean environment: no `UDPIX_*` from the caller, HOME and the XDG folders
/// in `home` (so no real config file is read), plus `env`.
fn udpix(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("UDPIX_") || k == "RUST_LOG" || k.starts_with("XDG_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn udpix_config_shows_each_value_and_its_layer() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = home.path().join("my.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:4000\"\nout = \"/srv/in\"\n").expect("write");
    let p = path.to_str().expect("utf8");
    let out = udpix(
        home.path(),
        &["config"],
        &[("UDPIX_CONFIG", p), ("UDPIX_OUT", "/env/out")],
    )
    .output()
    .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert!(
        line("listen").contains("\"127.0.0.1:4000\"") && line("listen").contains(p),
        "{text}"
    );
    assert!(
        line("out").contains("\"/env/out\"") && line("out").contains("$UDPIX_OUT"),
        "{text}"
    );
    assert!(line("mouse").contains("built-in default"), "{text}");
    // What it prints is a config file again.
    let body: String = text.lines().map(|l| format!("{l}\n")).collect();
    let reparsed = udpix::config::parse(&body).expect("udpix config prints TOML");
    assert_eq!(reparsed.listen.as_deref(), Some("127.0.0.1:4000"));

    // A missing named file is an error, exit 1, naming it.
    let missing = home.path().join("missing.toml");
    let out = udpix(
        home.path(),
        &["config"],
        &[("UDPIX_CONFIG", missing.to_str().expect("utf8"))],
    )
    .output()
    .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missing.toml") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn recv_and_send_take_listen_out_and_connect_from_the_config_file() {
    let home = tempfile::tempdir().expect("tempdir");
    let inbox = home.path().join("inbox");
    std::fs::create_dir(&inbox).expect("mkdir");
    let recv_conf = home.path().join("recv.toml");
    std::fs::write(
        &recv_conf,
        format!("listen = \"127.0.0.1:0\"\nout = {}\n", toml_string(&inbox)),
    )
    .expect("write");
    let mut receiver = udpix(
        home.path(),
        &["recv", "--once", "--insecure"],
        &[("UDPIX_CONFIG", recv_conf.to_str().expect("utf8"))],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn recv");
    // Its status line says where it listens.
    let (line, rest) = stderr_line(&mut receiver, "udpix: listening on ");
    // Not the file's address: stop it before failing, or it would serve forever.
    let Some((port, folder)) = line
        .strip_prefix("udpix: listening on 127.0.0.1:")
        .and_then(|r| r.split_once(", writing images to "))
    else {
        let _ = receiver.kill();
        panic!("recv did not take listen from the file: {line}");
    };
    if Path::new(folder.trim()) != inbox {
        let _ = receiver.kill();
        panic!("recv did not take out from the file: {line}");
    }
    let port = port.to_owned();
    let image = home.path().join("dot.png");
    image::RgbImage::from_pixel(5, 4, image::Rgb([200, 10, 30]))
        .save(&image)
        .expect("write png");
    let send_conf = home.path().join("send.toml");
    std::fs::write(&send_conf, format!("connect = \"127.0.0.1:{port}\"\n")).expect("write");
    // No HOST argument: the receiver comes from the file.
    let sent = udpix(
        home.path(),
        &["send", "--insecure", image.to_str().expect("utf8")],
        &[("UDPIX_CONFIG", send_conf.to_str().expect("utf8"))],
    )
    .output()
    .expect("run send");
    if !sent.status.success() {
        let _ = receiver.kill();
    }
    let status = receiver.wait().expect("recv exits after --once");
    let rest: Vec<String> = rest.iter().collect();
    assert!(
        sent.status.success(),
        "send: {}\nrecv: {rest:?}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(status.success(), "recv: {rest:?}");
    assert_eq!(
        std::fs::read(inbox.join("dot.png")).expect("received into the file's out"),
        std::fs::read(&image).expect("read")
    );
}

/// Reads `child`'s stderr on a thread until a line containing `needle` arrives, and returns
/// that line and a receiver of the lines after it. Kills the child and fails the test if the
/// line does not come within a minute (generous, for a loaded machine; it returns as soon as
/// the line is there) or stderr ends first.
fn stderr_line(
    child: &mut std::process::Child,
    needle: &str,
) -> (String, std::sync::mpsc::Receiver<String>) {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return (line, rx),
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no stderr line with {needle:?} ({e}); got {seen:?}");
            }
        }
    }
}

fn toml_string(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf8"))
}
