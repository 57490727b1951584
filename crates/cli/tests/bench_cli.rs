//! `longctx bench` end to end through the binary, against a scripted OpenAI-compatible server
//! (whitespace tokenizer; it answers the pass key it finds in the prompt, optionally slowly),
//! so no model is needed: list, run, resume, bad inputs, report, compare, export, Ctrl-C.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn read_request(stream: &mut TcpStream) -> Option<(String, Value)> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((path, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// The pass key in a prompt ("The pass key is N. Remember it."), or "none".
fn pass_key(prompt: &str) -> String {
    prompt
        .split("The pass key is ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .filter(|k| k.chars().all(|c| c.is_ascii_digit()) && !k.is_empty())
        .unwrap_or("none")
        .to_string()
}

/// A scripted server; `delay` slows every generation. Returns the API base.
fn serve(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            std::thread::spawn(move || {
                let Some((path, body)) = read_request(&mut stream) else {
                    return;
                };
                let (status, v) = match path.as_str() {
                    "/v1/models" => (
                        200,
                        json!({"object": "list", "data": [{"id": "served-model", "object": "model"}]}),
                    ),
                    "/tokenize" => {
                        let n = body["content"]
                            .as_str()
                            .unwrap_or("")
                            .split_whitespace()
                            .count();
                        (200, json!({"tokens": vec![1; n]}))
                    }
                    "/v1/completions" => {
                        std::thread::sleep(delay);
                        let key = pass_key(body["prompt"].as_str().unwrap_or(""));
                        (
                            200,
                            json!({"choices": [{"text": format!(" {key}."), "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 7, "completion_tokens": 2}}),
                        )
                    }
                    "/v1/chat/completions" => {
                        std::thread::sleep(delay);
                        (
                            200,
                            json!({"choices": [{"message": {"content": "B"}, "finish_reason": "stop"}]}),
                        )
                    }
                    _ => (404, json!({})),
                };
                let body = v.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}/v1")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("longctx-bench-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn longctx(args: &[&str], cwd: &Path, data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .current_dir(cwd)
        .env("LONGCTX_DATA", data)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn list_names_every_family() {
    let d = dir("list");
    let o = longctx(&["bench", "list"], &d, &d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for t in [
        "passkey",
        "ruler/niah_single_1",
        "leval/coursera",
        "longbench/hotpotqa",
        "string_match_all",
    ] {
        assert!(out.contains(t), "{t} missing:\n{out}");
    }
}

#[test]
fn run_resume_bad_inputs_report_compare_export() {
    let d = dir("flow");
    let empty = dir("flow-empty-data");
    let base = serve(Duration::ZERO);
    let backend = format!("openai:{base}");
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "run", "--backend", &backend, "--db", "r.sqlite"];
        args.extend_from_slice(extra);
        longctx(&args, &d, &empty)
    };
    let passkey = [
        "--task",
        "passkey",
        "--lengths",
        "256",
        "--depths",
        "10,90",
        "--samples",
        "2",
    ];
    let o = run(&passkey);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("4 ran, 0 skipped, 0 error row(s)"), "{err}");
    assert!(out.contains("passkey") && out.contains("100.00"), "{out}");

    // Same config again: nothing runs.
    let o = run(&passkey);
    let (_, err) = text(&o);
    assert!(
        o.status.success() && err.contains("0 ran, 4 skipped"),
        "{err}"
    );

    // Unknown task, missing dataset, malformed line: clear errors, stored rows kept.
    let (_, err) = text(&run(&["--task", "nope"]));
    assert!(
        err.contains("unknown task 'nope'") && err.contains("ruler/vt"),
        "{err}"
    );
    let (_, err) = text(&run(&["--task", "leval/coursera"]));
    assert!(
        err.contains("leval/closed-ended")
            && err.contains("missing")
            && err.contains("LONGCTX_DATA"),
        "{err}"
    );
    let bad = dir("flow-bad-data");
    std::fs::create_dir_all(bad.join("leval/closed-ended")).unwrap();
    std::fs::write(bad.join("leval/closed-ended/coursera.jsonl"), "{oops\n").unwrap();
    let o = longctx(
        &[
            "bench",
            "run",
            "--backend",
            &backend,
            "--db",
            "r.sqlite",
            "--task",
            "leval/coursera",
        ],
        &d,
        &bad,
    );
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("coursera.jsonl, line 1"),
        "{err}"
    );

    // Corrupt and unwritable databases.
    std::fs::write(d.join("junk.sqlite"), vec![b'x'; 4096]).unwrap();
    let (_, err) = text(&longctx(
        &["bench", "run", "--task", "passkey", "--db", "junk.sqlite"],
        &d,
        &empty,
    ));
    assert!(err.contains("not a longctx results database"), "{err}");
    assert_eq!(
        std::fs::read(d.join("junk.sqlite")).unwrap(),
        vec![b'x'; 4096]
    );
    let (_, err) = text(&longctx(
        &[
            "bench",
            "run",
            "--task",
            "passkey",
            "--db",
            "/nonexistent/dir/r.sqlite",
        ],
        &d,
        &empty,
    ));
    assert!(err.contains("cannot open the results database"), "{err}");

    // A second configuration, then report, compare and export.
    let mut seed1 = passkey.to_vec();
    seed1.extend(["--seed", "1"]);
    assert!(run(&seed1).status.success());
    let o = longctx(
        &["bench", "report", "--db", "r.sqlite", "--html", "rep.html"],
        &d,
        &empty,
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("== comparison (") && out.contains("effective length (passkey): 256"),
        "{out}"
    );
    // Remote runs are named after the served model (from /v1/models) and the endpoint.
    assert!(
        out.contains("served-model") && out.contains(&format!("server {base}")),
        "{out}"
    );
    // The run names the commit the binary was built from (build.rs), not the tree it ran in.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let want = head.as_deref().unwrap_or("unknown");
    assert!(out.contains(&format!("git {want}")), "{want} in {out}");
    let html = std::fs::read_to_string(d.join("rep.html")).unwrap();
    assert!(html.contains("data-depth=\"90%\" data-length=\"256\" data-score=\"100.00\""));
    let (out, _) = text(&longctx(
        &["bench", "compare", "1", "2", "--db", "r.sqlite"],
        &d,
        &empty,
    ));
    assert!(
        out.contains("flipped samples (correct = score >= 0.5): 0"),
        "{out}"
    );
    let o = longctx(
        &[
            "bench", "export", "--run", "1", "--out", "exp", "--db", "r.sqlite",
        ],
        &d,
        &empty,
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let lines = std::fs::read_to_string(d.join("exp/other/served-model/passkey.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    let (_, err) = text(&longctx(
        &["bench", "report", "--db", "missing.sqlite"],
        &d,
        &empty,
    ));
    assert!(err.contains("cannot open"), "{err}");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_finishes() {
    let d = dir("ctrlc");
    let base = serve(Duration::from_millis(300));
    let backend = format!("openai:{base}");
    let args = [
        "bench",
        "run",
        "--backend",
        &backend,
        "--db",
        "r.sqlite",
        "--task",
        "passkey",
        "--lengths",
        "128",
        "--depths",
        "0,25,50,75,100",
        "--samples",
        "2",
        "--concurrency",
        "1",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .current_dir(&d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let ran: usize = err
        .split("interrupted: ")
        .nth(1)
        .and_then(|s| s.split(" ran").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(ran > 0 && ran < 10, "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .current_dir(&d)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(
        err.contains(&format!("{} ran, {ran} skipped", 10 - ran)),
        "{err}"
    );
}
