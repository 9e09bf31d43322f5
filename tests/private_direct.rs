//! `direct` in the private upstream list: modgate runs the `go` command against a git
//! repository served on loopback by `git daemon`, serves the module to the real `go`
//! client, pins it, and refuses the version once its tag is moved.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

const MODULE: &str = "git.corp.test/team/lib.git";

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `git daemon` serving `base`; killed on drop with its whole process group
/// (`git daemon` runs `git-daemon` as a child: killing `git` alone would
/// leave the daemon running, orphaned, holding whatever it inherited).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test made for the daemon.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn daemon(base: &Path, port: u16) -> Daemon {
    let child = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            &format!("--base-path={}", base.display()),
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &base.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("git daemon starts");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "git daemon never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon(child)
}

#[test]
fn direct_from_git_is_served_pinned_and_a_moved_tag_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let base = tmp.path().join("repos");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(base.join("team")).unwrap();
    std::fs::write(work.join("go.mod"), format!("module {MODULE}\n\ngo 1.16\n")).unwrap();
    std::fs::write(work.join("lib.go"), "package lib\n\nconst V = 1\n").unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "v1"]);
    git(&work, &["tag", "v1.0.0"]);
    let bare = base.join("team/lib.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            &bare.display().to_string(),
        ],
    );
    let port = free_port();
    let _daemon = daemon(&base, port);

    // The git config modgate's go command uses: https://git.corp.test/ is the daemon.
    let gitconfig = tmp.path().join("gitconfig");
    std::fs::write(
        &gitconfig,
        format!("[url \"git://127.0.0.1:{port}/\"]\n\tinsteadOf = https://git.corp.test/\n"),
    )
    .unwrap();
    // This test binary holds this one test: the process environment is ours.
    unsafe { std::env::set_var("GIT_CONFIG_GLOBAL", &gitconfig) };
    unsafe { std::env::set_var("GIT_CONFIG_NOSYSTEM", "1") };

    let public = RefUpstream::start(&[]);
    let data = tmp.path().join("data");
    let mut cfg = test_config(&data, &public.url, &public.gosumdb());
    cfg.private = "git.corp.test".into();
    cfg.private_upstream = "direct".into();
    cfg.timeouts.request_secs = 120;
    let mg = Modgate::start(cfg);

    let (s, _, body) = mg.get(&format!("/{MODULE}/@v/list"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), "v1.0.0\n");
    let (s, _, body) = mg.get(&format!("/{MODULE}/@latest"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("v1.0.0"));

    let go = GoClient::new();
    let env = [
        ("GOPROXY", mg.url.as_str()),
        ("GOSUMDB", public.vkey.as_str()),
        ("GOPRIVATE", "git.corp.test"),
        ("GONOPROXY", "none"),
    ];
    let target = format!("{MODULE}@v1.0.0");
    let r = go.mod_download_json_env(&[&target], &env);
    assert!(r[0].error.is_empty(), "{}", r[0].error);
    let zip = format!("/{MODULE}/@v/v1.0.0.zip");
    let (s, _, first) = mg.get(&zip);
    assert_eq!(s, 200);

    // The tag is moved to other content.
    std::fs::write(work.join("lib.go"), "package lib\n\nconst V = 666\n").unwrap();
    git(&work, &["commit", "-q", "-am", "evil"]);
    git(&work, &["tag", "-f", "v1.0.0"]);
    git(
        &work,
        &["push", "-q", "-f", &bare.display().to_string(), "v1.0.0"],
    );

    // Cached: the pinned bytes are still served.
    let (s, _, cached) = mg.get(&zip);
    assert_eq!(s, 200);
    assert_eq!(cached, first);
    // `origin check` (default origin: direct) reports the moved tag and who fetched it.
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args([
            "origin",
            "check",
            "git.corp.test",
            "--data-dir",
            &data.display().to_string(),
        ])
        .env("MODGATE_LOG", "warn")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(&format!("TAG REWRITE: {target} zip")), "{out}");
    assert!(out.contains("fetched by: client=127.0.0.1"), "{out}");
    // Fetched again: refused against the pin.
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args([
            "cache",
            "rm",
            "--data-dir",
            &data.display().to_string(),
            &target,
        ])
        .env("MODGATE_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (s, _, body) = mg.get(&zip);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("content changed since first seen"), "{body}");

    // The public side never heard of it.
    assert!(
        !public
            .counters()
            .keys()
            .any(|k| k.contains("git.corp.test")),
        "{:?}",
        public.counters()
    );
}
